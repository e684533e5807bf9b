package example.orders;

import com.zaxxer.hikari.HikariDataSource;
import example.orders.common.ConfigException;
import example.orders.common.Defects;
import example.orders.common.Env;
import example.orders.common.Logs;
import example.orders.common.Pg;
import example.orders.common.Shutdown;
import example.orders.sink.CustomerBalance;
import example.orders.sink.InboxEntry;
import example.orders.sink.Order;
import example.orders.v1.OrderPriced;
import jakarta.persistence.EntityManager;
import jakarta.persistence.EntityManagerFactory;
import jakarta.persistence.EntityTransaction;
import jakarta.persistence.OptimisticLockException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.hibernate.StaleStateException;
import org.hibernate.jpa.HibernatePersistenceConfiguration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * sink: applies OrderPriced records from TOPIC_PRICED to Postgres through Hibernate. Each poll batch is spread over
 * SINK_WORKERS threads, one record per unit of work, each unit one transaction: inbox row (dedup by order_id), order
 * row, customer balance (+total, +1 order; optimistic @Version check). A conflict retries the whole unit in a new
 * EntityManager. Offsets are committed after every unit of the batch committed; any other failure restarts the
 * consumer from the committed offsets (the inbox skips what was applied). Per-customer order is not preserved.
 */
public final class Sink {
    static final String SERVICE = "sink";
    private static Logger log;

    record Config(String bootstrap, String topic, String groupId, int workers, int sessionTimeoutMs, int maxAttempts,
                  Pg pg, Set<Defects> defects) {
        static Config from(Env env, Set<Defects> defects) {
            return new Config(env.bootstrap(), env.kafkaName("TOPIC_PRICED"), env.kafkaName("GROUP_ID"),
                    env.integer("SINK_WORKERS", 4, 1, 64), env.integer("SESSION_TIMEOUT_MS", 6_000, 1_000, 600_000),
                    env.integer("SINK_MAX_ATTEMPTS", 30, 1, 1_000), new Pg(env), defects);
        }

        boolean has(Defects d) {
            return defects.contains(d);
        }
    }

    public static void main(String[] args) {
        Env env = Env.system();
        Config cfg;
        Set<Defects> all;
        try {
            Logs.init(env);
            all = Defects.parse(env.raw("PIPELINE_DEFECTS"));
            cfg = Config.from(env, Defects.of(all, SERVICE));
        } catch (ConfigException e) {
            System.err.println(SERVICE + ": configuration error: " + e.getMessage());
            System.exit(2);
            return;
        }
        log = LoggerFactory.getLogger(Sink.class);
        Defects.banner(cfg.defects(), all, SERVICE, log);
        Shutdown shutdown = new Shutdown(20_000);
        shutdown.install(log);
        try {
            new Sink(cfg, shutdown).run();
        } catch (RuntimeException e) {
            log.error("{} failed", SERVICE, e);
            System.exit(1);
        }
        System.exit(0);
    }

    /** The batch could not be applied completely: its offsets are not committed. */
    static final class BatchFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        BatchFailed(String message, Throwable cause) {
            super(message, cause);
        }
    }

    enum Outcome { APPLIED, DUPLICATE, SKIPPED }

    enum Conflict { NONE, OPTIMISTIC, UNIQUE, SERIALIZATION }

    private final Config cfg;
    private final Shutdown shutdown;
    private final ExecutorService workers;
    private final AtomicBoolean readyLogged = new AtomicBoolean();
    private final AtomicBoolean firstConflictLogged = new AtomicBoolean();
    private final AtomicLong applied = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final AtomicLong undecodable = new AtomicLong();
    private final AtomicLong optimisticRetries = new AtomicLong();
    private final AtomicLong uniqueRetries = new AtomicLong();
    private final AtomicLong serializationRetries = new AtomicLong();
    private final AtomicLong lostUpdates = new AtomicLong();
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong failedBatches = new AtomicLong();
    private final AtomicLong restarts = new AtomicLong();
    private HikariDataSource ds;
    private EntityManagerFactory emf;

    Sink(Config cfg, Shutdown shutdown) {
        this.cfg = cfg;
        this.shutdown = shutdown;
        AtomicInteger n = new AtomicInteger();
        this.workers = Executors.newFixedThreadPool(cfg.workers(), r -> {
            Thread t = new Thread(r, "sink-worker-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    void run() {
        log.info("{} starting: {} group {} workers {} isolation {} -> Postgres {}", SERVICE, cfg.topic(), cfg.groupId(),
                cfg.workers(), isolation(), cfg.pg().describe());
        ds = cfg.pg().pool(SERVICE, cfg.workers() + 2, false, 5_000);
        try {
            if (!openDatabase()) {
                return;
            }
            consumeUntilStopped();
        } finally {
            workers.shutdownNow();
            if (emf != null) {
                emf.close();
            }
            ds.close();
            log.info("{} stopped: {}", SERVICE, stats());
        }
    }

    private String isolation() {
        return cfg.has(Defects.READ_UNCOMMITTED) ? "read_uncommitted" : "read_committed";
    }

    /** Builds the EntityManagerFactory (validating the schema), retrying while the database is unreachable. */
    private boolean openDatabase() {
        long lastWarn = 0;
        while (!shutdown.requested()) {
            try {
                long t0 = System.nanoTime();
                emf = new HibernatePersistenceConfiguration("orders-sink")
                        .managedClasses(Order.class, CustomerBalance.class, InboxEntry.class)
                        .property("hibernate.connection.datasource", ds)
                        .property("hibernate.connection.provider_disables_autocommit", true)
                        .property("hibernate.hbm2ddl.auto", "validate")
                        .property("hibernate.default_schema", cfg.pg().schema)
                        .property("hibernate.jdbc.time_zone", "UTC")
                        .createEntityManagerFactory();
                log.info("Hibernate started, schema {} validated, in {} ms", cfg.pg().schema,
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
                return true;
            } catch (RuntimeException e) {
                if (System.nanoTime() - lastWarn > TimeUnit.SECONDS.toNanos(10)) {
                    lastWarn = System.nanoTime();
                    log.warn("database not usable yet (retrying every 2 s): {}", Logs.brief(e));
                }
                shutdown.sleep(2_000);
            }
        }
        return false;
    }

    private KafkaConsumer<String, byte[]> newConsumer(int generation) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap());
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, SERVICE + "-" + generation);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, cfg.groupId());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation());
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 500);
        c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, cfg.sessionTimeoutMs());
        c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Math.max(100, cfg.sessionTimeoutMs() / 3));
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(c);
        consumer.subscribe(List.of(cfg.topic()), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                log.info("partitions revoked: {}", partitions);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                log.info("partitions assigned: {}", partitions);
                if (readyLogged.compareAndSet(false, true)) {
                    log.info("{} ready: first partition assignment received ({} partitions)", SERVICE, partitions.size());
                }
            }
        });
        return consumer;
    }

    private void consumeUntilStopped() {
        int generation = 0;
        long backoff = 1_000;
        long lastStats = System.nanoTime();
        String lastLine = "";
        while (!shutdown.requested()) {
            KafkaConsumer<String, byte[]> consumer = newConsumer(++generation);
            try {
                while (!shutdown.requested()) {
                    ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(100));
                    if (!records.isEmpty()) {
                        Map<TopicPartition, OffsetAndMetadata> offsets = nextOffsets(records);
                        if (cfg.has(Defects.COMMIT_BEFORE_WRITE)) {
                            consumer.commitSync(offsets, Duration.ofSeconds(10));
                        }
                        applyBatch(records);
                        if (!cfg.has(Defects.COMMIT_BEFORE_WRITE)) {
                            consumer.commitSync(offsets, Duration.ofSeconds(10));
                        }
                        batches.incrementAndGet();
                        backoff = 1_000;
                    }
                    if (System.nanoTime() - lastStats > TimeUnit.SECONDS.toNanos(10)) {
                        lastStats = System.nanoTime();
                        String line = stats();
                        if (!line.equals(lastLine)) {
                            log.info("{} progress: {}", SERVICE, line);
                            lastLine = line;
                        }
                    }
                }
            } catch (BatchFailed | KafkaException e) {
                if (e instanceof BatchFailed) {
                    failedBatches.incrementAndGet();
                }
                restarts.incrementAndGet();
                log.warn("{}; {}, restarting the consumer from the committed offsets in {} ms", Logs.brief(e),
                        cfg.has(Defects.COMMIT_BEFORE_WRITE)
                                ? "DEFECT commit_before_write: its offsets were committed before the write,"
                                        + " the batch is lost"
                                : "offsets not committed", backoff);
            } finally {
                try {
                    consumer.close(CloseOptions.timeout(Duration.ofSeconds(5)));
                } catch (RuntimeException e) {
                    log.debug("consumer close: {}", Logs.brief(e));
                }
            }
            if (!shutdown.requested()) {
                shutdown.sleep(backoff);
                backoff = Math.min(backoff * 2, 10_000);
            }
        }
    }

    private String stats() {
        return "applied=" + applied.get() + " duplicates_skipped=" + duplicates.get() + " undecodable_skipped="
                + undecodable.get() + " optimistic_lock_retries=" + optimisticRetries.get() + " unique_violation_retries="
                + uniqueRetries.get() + " serialization_retries=" + serializationRetries.get()
                + (cfg.has(Defects.SWALLOW_OPTIMISTIC_LOCK) ? " lost_updates=" + lostUpdates.get() : "")
                + " batches=" + batches.get() + " failed_batches=" + failedBatches.get() + " consumer_restarts="
                + restarts.get();
    }

    private static Map<TopicPartition, OffsetAndMetadata> nextOffsets(ConsumerRecords<String, byte[]> records) {
        Map<TopicPartition, OffsetAndMetadata> out = new HashMap<>();
        for (TopicPartition tp : records.partitions()) {
            List<ConsumerRecord<String, byte[]>> rs = records.records(tp);
            out.put(tp, new OffsetAndMetadata(rs.get(rs.size() - 1).offset() + 1));
        }
        return out;
    }

    /** Applies every record of the batch on the worker pool; BatchFailed when any unit failed. */
    private void applyBatch(ConsumerRecords<String, byte[]> records) {
        AtomicBoolean failed = new AtomicBoolean();
        List<Future<Outcome>> futures = new ArrayList<>(records.count());
        for (ConsumerRecord<String, byte[]> rec : records) {
            futures.add(workers.submit(() -> {
                if (failed.get()) {
                    return Outcome.SKIPPED;  // the batch is lost anyway: it will be redelivered
                }
                try {
                    return applyRecord(rec);
                } catch (RuntimeException e) {
                    failed.set(true);
                    throw e;
                }
            }));
        }
        Throwable first = null;
        for (Future<Outcome> f : futures) {
            try {
                Outcome o = f.get();
                if (o == Outcome.APPLIED) {
                    applied.incrementAndGet();
                } else if (o == Outcome.DUPLICATE) {
                    duplicates.incrementAndGet();
                }
            } catch (ExecutionException e) {
                if (first == null) {
                    first = e.getCause();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                first = e;
            }
        }
        if (first != null) {
            throw new BatchFailed("batch of " + records.count() + " records failed: " + Logs.brief(first), first);
        }
    }

    private Outcome applyRecord(ConsumerRecord<String, byte[]> rec) {
        OrderPriced p;
        try {
            if (rec.value() == null) {
                throw new IllegalArgumentException("null value");
            }
            p = OrderPriced.parseFrom(rec.value());
            if (p.getOrderId().isEmpty() || p.getCustomer().isEmpty()) {
                throw new IllegalArgumentException("order_id or customer empty");
            }
        } catch (Exception e) {
            if (undecodable.incrementAndGet() <= Logs.INDIVIDUAL_WARNINGS) {
                log.warn("skipping undecodable record {}-{}@{} (the first {} are logged, all are counted): {}",
                        rec.topic(), rec.partition(), rec.offset(), Logs.INDIVIDUAL_WARNINGS, Logs.brief(e));
            }
            return Outcome.SKIPPED;
        }
        boolean inbox = !cfg.has(Defects.NO_INBOX);
        if (!cfg.has(Defects.SWALLOW_OPTIMISTIC_LOCK)) {
            return withRetries(p, em -> {
                if (inbox && !claimInbox(em, p.getOrderId())) {
                    return Outcome.DUPLICATE;
                }
                em.persist(orderRow(p, rec));
                addToBalance(em, p);
                return Outcome.APPLIED;
            });
        }
        // The swallow_optimistic_lock defect: order + inbox in one transaction, the balance in a second one whose
        // conflict is logged and dropped.
        Outcome o = withRetries(p, em -> {
            if (inbox && !claimInbox(em, p.getOrderId())) {
                return Outcome.DUPLICATE;
            }
            em.persist(orderRow(p, rec));
            return Outcome.APPLIED;
        });
        if (o != Outcome.APPLIED) {
            return o;
        }
        try {
            inTransaction(em -> {
                addToBalance(em, p);
                return Outcome.APPLIED;
            });
        } catch (RuntimeException e) {
            if (conflict(e) == Conflict.NONE) {
                throw e;
            }
            if (lostUpdates.incrementAndGet() > Logs.INDIVIDUAL_WARNINGS) {
                return o;
            }
            log.warn("DEFECT swallow_optimistic_lock: balance update of order {} (customer {}) conflicted and was dropped"
                    + " (the first {} are logged, all are counted as lost_updates): {}",
                    p.getOrderId(), p.getCustomer(), Logs.INDIVIDUAL_WARNINGS, Logs.brief(e));
        }
        return o;
    }

    /** A new entity per attempt: a retried unit of work must not reuse one that a failed transaction persisted. */
    private static Order orderRow(OrderPriced p, ConsumerRecord<String, byte[]> rec) {
        return new Order(p.getOrderId(), p.getCustomer(), p.getTotalCents(), rec.partition(), rec.offset(),
                p.getMessageId());
    }

    /** False when the order is in the inbox (a redelivery); else adds it. */
    private static boolean claimInbox(EntityManager em, String orderId) {
        if (em.find(InboxEntry.class, orderId) != null) {
            return false;
        }
        em.persist(new InboxEntry(orderId));
        return true;
    }

    private static void addToBalance(EntityManager em, OrderPriced p) {
        CustomerBalance b = em.find(CustomerBalance.class, p.getCustomer());
        if (b == null) {
            b = new CustomerBalance(p.getCustomer());
            b.add(p.getTotalCents());
            em.persist(b);
        } else {
            b.add(p.getTotalCents());
        }
    }

    interface Work {
        Outcome apply(EntityManager em);
    }

    /** One transaction in a fresh EntityManager; rolled back on any error, which is rethrown. */
    private Outcome inTransaction(Work work) {
        EntityManager em = emf.createEntityManager();
        EntityTransaction tx = em.getTransaction();
        try {
            tx.begin();
            Outcome o = work.apply(em);
            if (o == Outcome.APPLIED) {
                tx.commit();
            } else {
                tx.rollback();
            }
            return o;
        } catch (RuntimeException e) {
            try {
                if (tx.isActive()) {
                    tx.rollback();
                }
            } catch (RuntimeException rollbackError) {
                e.addSuppressed(rollbackError);
            }
            throw e;
        } finally {
            em.close();
        }
    }

    /** The whole unit of work, retried in a new transaction after a conflict (bounded, jittered backoff). */
    private Outcome withRetries(OrderPriced p, Work work) {
        for (int attempt = 1; ; attempt++) {
            try {
                return inTransaction(work);
            } catch (RuntimeException e) {
                Conflict c = conflict(e);
                if (c == Conflict.NONE) {
                    throw e;
                }
                switch (c) {
                    case OPTIMISTIC -> optimisticRetries.incrementAndGet();
                    case UNIQUE -> uniqueRetries.incrementAndGet();
                    default -> serializationRetries.incrementAndGet();
                }
                if (attempt >= cfg.maxAttempts()) {
                    log.warn("order {} (customer {}): still conflicting after {} attempts, failing the batch: {}",
                            p.getOrderId(), p.getCustomer(), attempt, Logs.brief(e));
                    throw e;
                }
                if (firstConflictLogged.compareAndSet(false, true)) {
                    log.info("first write conflict ({}) on order {} of customer {}: retrying the unit of work in a new"
                            + " transaction (later retries are counted in the progress lines)", c, p.getOrderId(),
                            p.getCustomer());
                } else {
                    log.debug("conflict {} on order {} attempt {}: {}", c, p.getOrderId(), attempt, Logs.brief(e));
                }
                long cap = Math.min(200, 5L << Math.min(attempt, 6));
                try {
                    Thread.sleep(ThreadLocalRandom.current().nextLong(cap + 1));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    /** Which kind of write conflict {@code t} is (anywhere in its cause chain), or NONE. */
    static Conflict conflict(Throwable t) {
        for (Throwable e = t; e != null; e = e.getCause() == e ? null : e.getCause()) {
            if (e instanceof OptimisticLockException || e instanceof StaleStateException) {
                return Conflict.OPTIMISTIC;
            }
            if (e instanceof SQLException sql && sql.getSQLState() != null) {
                switch (sql.getSQLState()) {
                    case "23505":
                        return Conflict.UNIQUE;
                    case "40001":
                    case "40P01":
                        return Conflict.SERIALIZATION;
                    default:
                        break;
                }
            }
        }
        return Conflict.NONE;
    }
}
