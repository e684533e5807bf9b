package example.orders.sink;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Table;

/**
 * One applied order (table {@code orders}). order_id is deliberately not unique: an order applied twice shows up as
 * two rows, which is what the suite's duplicate checker looks for. applied_at is filled by the database.
 */
@Entity(name = "AppliedOrder")
@Table(name = "orders")
public class Order {
    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    @Column(name = "id")
    private Long id;

    @Column(name = "order_id", nullable = false, columnDefinition = "text")
    private String orderId;

    @Column(name = "customer", nullable = false, columnDefinition = "text")
    private String customer;

    @Column(name = "total_cents", nullable = false)
    private long totalCents;

    @Column(name = "src_partition", nullable = false)
    private int srcPartition;

    @Column(name = "src_offset", nullable = false)
    private long srcOffset;

    @Column(name = "message_id", nullable = false, columnDefinition = "text")
    private String messageId;

    protected Order() {
    }

    public Order(String orderId, String customer, long totalCents, int srcPartition, long srcOffset, String messageId) {
        this.orderId = orderId;
        this.customer = customer;
        this.totalCents = totalCents;
        this.srcPartition = srcPartition;
        this.srcOffset = srcOffset;
        this.messageId = messageId;
    }

    public Long getId() {
        return id;
    }
}
