package example.orders.sink;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.Id;
import jakarta.persistence.Table;
import jakarta.persistence.Version;

/** A customer's running balance (table {@code customer_balance}), guarded by an optimistic version check. */
@Entity(name = "CustomerBalance")
@Table(name = "customer_balance")
public class CustomerBalance {
    @Id
    @Column(name = "customer", columnDefinition = "text")
    private String customer;

    @Column(name = "balance_cents", nullable = false)
    private long balanceCents;

    @Column(name = "order_count", nullable = false)
    private long orderCount;

    @Version
    @Column(name = "version", nullable = false)
    private long version;

    protected CustomerBalance() {
    }

    public CustomerBalance(String customer) {
        this.customer = customer;
    }

    public void add(long cents) {
        balanceCents += cents;
        orderCount += 1;
    }

    public long getVersion() {
        return version;
    }
}
