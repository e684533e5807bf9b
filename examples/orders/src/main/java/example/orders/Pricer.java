package example.orders;

import example.orders.common.ConfigException;
import example.orders.common.Defects;
import example.orders.common.Env;
import example.orders.common.Kafka;
import example.orders.common.Logs;
import example.orders.common.Shutdown;
import example.orders.v1.Item;
import example.orders.v1.OrderPlaced;
import example.orders.v1.OrderPriced;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * pricer: consume-transform-produce from TOPIC_PLACED to TOPIC_PRICED with Kafka transactions (exactly once between
 * the two topics). Each poll batch is one transaction: the OrderPriced records and the consumer's offsets commit
 * together. A fenced or fatally failed producer is closed and recreated with the consumer; any other error aborts
 * the transaction and rewinds the consumer to the batch's first offsets.
 */
public final class Pricer {
    static final String SERVICE = "pricer";
    private static Logger log;

    record Config(String bootstrap, String topicPlaced, String topicPriced, String groupId, String transactionalId,
                  int sessionTimeoutMs, int transactionTimeoutMs, Set<Defects> defects) {
        static Config from(Env env, Set<Defects> defects) {
            boolean tx = !defects.contains(Defects.NON_TRANSACTIONAL_PRICER);
            return new Config(env.bootstrap(), env.kafkaName("TOPIC_PLACED"), env.kafkaName("TOPIC_PRICED"),
                    env.kafkaName("GROUP_ID"), tx ? env.kafkaName("TRANSACTIONAL_ID") : env.raw("TRANSACTIONAL_ID"),
                    env.integer("SESSION_TIMEOUT_MS", 6_000, 1_000, 600_000),
                    env.integer("TRANSACTION_TIMEOUT_MS", 10_000, 1_000, 900_000), defects);
        }

        boolean transactional() {
            return !defects.contains(Defects.NON_TRANSACTIONAL_PRICER);
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
        log = LoggerFactory.getLogger(Pricer.class);
        Defects.banner(cfg.defects(), all, SERVICE, log);
        Shutdown shutdown = new Shutdown(20_000);
        shutdown.install(log);
        Pricer p = new Pricer(cfg, shutdown);
        try {
            p.run();
        } catch (RuntimeException e) {
            log.error("{} failed", SERVICE, e);
            System.exit(1);
        }
        System.exit(0);
    }

    /** The clients are unusable: close both and start again from the committed offsets. */
    static final class Recreate extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Recreate(String what, Throwable cause) {
            super(what + ": " + Logs.brief(cause), cause);
        }
    }

    private final Config cfg;
    private final Shutdown shutdown;
    private final AtomicBoolean readyLogged = new AtomicBoolean();
    private final AtomicLong priced = new AtomicLong();
    private final AtomicLong undecodable = new AtomicLong();
    private final AtomicLong committed = new AtomicLong();
    private final AtomicLong aborted = new AtomicLong();
    private final AtomicLong recreated = new AtomicLong();
    private final AtomicLong sendErrors = new AtomicLong();
    private KafkaConsumer<String, byte[]> consumer;
    private KafkaProducer<String, byte[]> producer;
    private int generation;

    Pricer(Config cfg, Shutdown shutdown) {
        this.cfg = cfg;
        this.shutdown = shutdown;
    }

    void run() {
        log.info("{} starting: {} -> {} group {} {} (session.timeout.ms={}, transaction.timeout.ms={})", SERVICE,
                cfg.topicPlaced(), cfg.topicPriced(), cfg.groupId(), cfg.transactional()
                        ? "transactional.id " + cfg.transactionalId() : "NON-TRANSACTIONAL", cfg.sessionTimeoutMs(),
                cfg.transactionTimeoutMs());
        long backoff = 500;
        long lastStats = System.nanoTime();
        String lastLine = "";
        while (!shutdown.requested()) {
            try {
                if (producer == null && !createClients()) {
                    continue;
                }
                ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(100));
                if (!records.isEmpty()) {
                    if (cfg.transactional()) {
                        processTransactionally(records);
                    } else {
                        processPlain(records);
                    }
                }
                backoff = 500;
            } catch (Recreate | WakeupException e) {
                recreated.incrementAndGet();
                log.warn("recreating producer and consumer: {}", Logs.brief(e));
                closeClients();
                shutdown.sleep(backoff);
                backoff = Math.min(backoff * 2, 5_000);
            } catch (KafkaException e) {
                recreated.incrementAndGet();
                log.warn("Kafka error outside a transaction, recreating the clients: {}", Logs.brief(e));
                closeClients();
                shutdown.sleep(backoff);
                backoff = Math.min(backoff * 2, 5_000);
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
        closeClients();
        log.info("{} stopped: {}", SERVICE, stats());
    }

    private String stats() {
        return "priced=" + priced.get() + " transactions_committed=" + committed.get() + " transactions_aborted="
                + aborted.get() + " undecodable_skipped=" + undecodable.get() + " clients_recreated=" + recreated.get()
                + (cfg.transactional() ? "" : " send_errors=" + sendErrors.get());
    }

    /** False when the producer could not be initialised yet (retried by the caller's loop). */
    private boolean createClients() {
        generation++;
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap());
        p.put(ProducerConfig.CLIENT_ID_CONFIG, SERVICE + "-producer-" + generation);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (cfg.transactional()) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, cfg.transactionalId());
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, cfg.transactionTimeoutMs());
        }
        KafkaProducer<String, byte[]> prod = new KafkaProducer<>(p);
        if (cfg.transactional()) {
            try {
                // Fences an older producer with this transactional.id and aborts (or completes) its open transaction.
                prod.initTransactions();
            } catch (KafkaException e) {
                log.warn("initTransactions failed (retrying): {}", Logs.brief(e));
                prod.close(Duration.ofSeconds(2));
                shutdown.sleep(e instanceof TimeoutException ? 200 : 1_000);
                return false;
            }
        }
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap());
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, SERVICE + "-consumer-" + generation);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, cfg.groupId());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 500);
        c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, cfg.sessionTimeoutMs());
        c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Math.max(100, cfg.sessionTimeoutMs() / 3));
        if (cfg.transactional()) {
            c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        } else {
            // The defect: Kafka's default auto-commit, whatever was produced or not.
            c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true");
            c.put(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 5_000);
        }
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        KafkaConsumer<String, byte[]> cons = new KafkaConsumer<>(c);
        cons.subscribe(List.of(cfg.topicPlaced()), new ConsumerRebalanceListener() {
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
        producer = prod;
        consumer = cons;
        return true;
    }

    private void closeClients() {
        if (producer != null) {
            try {
                producer.close(Duration.ofSeconds(5));
            } catch (RuntimeException e) {
                log.debug("producer close: {}", Logs.brief(e));
            }
            producer = null;
        }
        if (consumer != null) {
            try {
                consumer.close(CloseOptions.timeout(Duration.ofSeconds(5)));
            } catch (RuntimeException e) {
                log.debug("consumer close: {}", Logs.brief(e));
            }
            consumer = null;
        }
    }

    /** Null for a record that cannot be decoded (logged and counted; its offset is still committed). */
    private OrderPriced price(ConsumerRecord<String, byte[]> rec) {
        OrderPlaced placed;
        try {
            if (rec.value() == null) {
                throw new IllegalArgumentException("null value");
            }
            placed = OrderPlaced.parseFrom(rec.value());
            if (placed.getOrderId().isEmpty() || placed.getCustomer().isEmpty()) {
                throw new IllegalArgumentException("order_id or customer empty");
            }
        } catch (Exception e) {
            if (undecodable.incrementAndGet() <= Logs.INDIVIDUAL_WARNINGS) {
                log.warn("skipping undecodable record {}-{}@{} (the first {} are logged, all are counted): {}",
                        rec.topic(), rec.partition(), rec.offset(), Logs.INDIVIDUAL_WARNINGS, Logs.brief(e));
            }
            return null;
        }
        long total = 0;
        for (Item it : placed.getItemsList()) {
            total += (long) it.getQuantity() * it.getUnitPriceCents();
        }
        return OrderPriced.newBuilder().setOrderId(placed.getOrderId()).setCustomer(placed.getCustomer())
                .setTotalCents(total).setPricedAtMs(System.currentTimeMillis())
                .setMessageId(UUID.randomUUID().toString()).build();
    }

    private ProducerRecord<String, byte[]> output(OrderPriced out) {
        RecordHeaders headers = new RecordHeaders();
        headers.add("order_id", out.getOrderId().getBytes(StandardCharsets.UTF_8));
        return new ProducerRecord<>(cfg.topicPriced(), null, out.getCustomer(), out.toByteArray(), headers);
    }

    private void processTransactionally(ConsumerRecords<String, byte[]> records) {
        Map<TopicPartition, Long> first = new HashMap<>();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        long n = 0;
        try {
            producer.beginTransaction();
            for (ConsumerRecord<String, byte[]> rec : records) {
                TopicPartition tp = new TopicPartition(rec.topic(), rec.partition());
                first.putIfAbsent(tp, rec.offset());
                offsets.put(tp, new OffsetAndMetadata(rec.offset() + 1));
                OrderPriced out = price(rec);
                if (out != null) {
                    producer.send(output(out));
                    n++;
                }
            }
            producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
            producer.commitTransaction();
            committed.incrementAndGet();
            priced.addAndGet(n);
        } catch (KafkaException | IllegalStateException e) {
            if (Kafka.fenced(e)) {
                throw new Recreate("producer fenced or in a fatal state", e);
            }
            log.warn("transaction of {} records failed, aborting and rewinding: {}", records.count(), Logs.brief(e));
            try {
                producer.abortTransaction();
            } catch (KafkaException | IllegalStateException abortError) {
                throw new Recreate("abortTransaction failed", abortError);
            }
            aborted.incrementAndGet();
            try {
                for (Map.Entry<TopicPartition, Long> f : first.entrySet()) {
                    consumer.seek(f.getKey(), f.getValue());
                }
            } catch (IllegalStateException | KafkaException seekError) {
                throw new Recreate("rewinding the consumer failed", seekError);
            }
            shutdown.sleep(200);
        }
    }

    /** The non_transactional_pricer defect: fire-and-forget sends; offsets are auto-committed by poll(). */
    private void processPlain(ConsumerRecords<String, byte[]> records) {
        for (ConsumerRecord<String, byte[]> rec : records) {
            OrderPriced out = price(rec);
            if (out == null) {
                continue;
            }
            producer.send(output(out), (md, ex) -> {
                if (ex != null) {
                    sendErrors.incrementAndGet();
                    log.warn("send of order {} failed (not retried): {}", out.getOrderId(), Logs.brief(ex));
                }
            });
            priced.incrementAndGet();
        }
    }
}
