package example.orders.sink;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

/** The dedup record of an applied order (table {@code inbox}); message_key = the order_id. */
@Entity(name = "InboxEntry")
@Table(name = "inbox")
public class InboxEntry {
    @Id
    @Column(name = "message_key", columnDefinition = "text")
    private String messageKey;

    protected InboxEntry() {
    }

    public InboxEntry(String messageKey) {
        this.messageKey = messageKey;
    }
}
