package example.orders;

import com.zaxxer.hikari.HikariDataSource;
import example.orders.common.ConfigException;
import example.orders.common.Defects;
import example.orders.common.Env;
import example.orders.common.Kafka;
import example.orders.common.Logs;
import example.orders.common.Pg;
import example.orders.common.Shutdown;
import example.orders.v1.GetOrderRequest;
import example.orders.v1.Item;
import example.orders.v1.Order;
import example.orders.v1.OrderPlaced;
import example.orders.v1.OrdersGrpc;
import example.orders.v1.PlaceOrderReply;
import example.orders.v1.PlaceOrderRequest;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * orders-api: the gRPC front door. PlaceOrder produces OrderPlaced to TOPIC_PLACED (acks=all, idempotent) and answers
 * after the broker acknowledged; GetOrder reads the sink's {@code orders} table.
 *
 * <p>Error contract of PlaceOrder: INVALID_ARGUMENT = rejected by validation; RESOURCE_EXHAUSTED "rejected: ..." = the
 * producer refused the record before taking it (never written); UNAVAILABLE "outcome uncertain: ..." = the producer
 * took the record and no acknowledgement came (may or may not be in Kafka).
 */
public final class Api {
    static final String SERVICE = "orders-api";
    static final String GRPC_SERVICE = "orders.v1.Orders";
    static final int MAX_TEXT = 200;
    static final int MAX_ITEMS = 50;

    private static Logger log;

    record Config(int port, String bootstrap, String topic, int deliveryTimeoutMs, int requestTimeoutMs,
                  int maxBlockMs, Pg pg) {
        static Config from(Env env) {
            int port = env.integer("LISTEN_PORT", 50051, 1, 65535);
            String bootstrap = env.bootstrap();
            String topic = env.kafkaName("TOPIC_PLACED");
            int delivery = env.integer("DELIVERY_TIMEOUT_MS", 15_000, 1_000, 600_000);
            int request = env.integer("REQUEST_TIMEOUT_MS", 5_000, 500, 300_000);
            int maxBlock = env.integer("MAX_BLOCK_MS", 5_000, 0, 300_000);
            if (delivery < request + 5) {
                throw new ConfigException("DELIVERY_TIMEOUT_MS=" + delivery + " must be at least REQUEST_TIMEOUT_MS + linger.ms ("
                        + (request + 5) + ")");
            }
            return new Config(port, bootstrap, topic, delivery, request, maxBlock, new Pg(env));
        }
    }

    public static void main(String[] args) throws Exception {
        Env env = Env.system();
        Config cfg;
        Set<Defects> all;
        try {
            Logs.init(env);
            all = Defects.parse(env.raw("PIPELINE_DEFECTS"));
            cfg = Config.from(env);
        } catch (ConfigException e) {
            System.err.println(SERVICE + ": configuration error: " + e.getMessage());
            System.exit(2);
            return;
        }
        log = LoggerFactory.getLogger(Api.class);
        Defects.banner(Defects.of(all, SERVICE), all, SERVICE, log);
        Shutdown shutdown = new Shutdown(15_000);
        shutdown.install(log);
        new Api(cfg).run(shutdown);
        System.exit(0);
    }

    private final Config cfg;
    private final Producers producers;
    private final HealthStatusManager health = new HealthStatusManager();
    private final ScheduledThreadPoolExecutor timers = ackTimers();
    private final HikariDataSource db;
    private final AtomicLong placed = new AtomicLong();
    private final AtomicLong invalid = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong uncertain = new AtomicLong();
    private final AtomicLong reads = new AtomicLong();
    private final AtomicLong readErrors = new AtomicLong();

    /** One thread for the acknowledgement deadlines; a cancelled deadline leaves the queue at once. */
    private static ScheduledThreadPoolExecutor ackTimers() {
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, r -> {
            Thread th = new Thread(r, "ack-timeouts");
            th.setDaemon(true);
            return th;
        });
        t.setRemoveOnCancelPolicy(true);
        return t;
    }

    Api(Config cfg) {
        this.cfg = cfg;
        this.producers = new Producers(cfg);
        this.db = cfg.pg().pool(SERVICE, 4, true, 3_000);
    }

    void run(Shutdown shutdown) throws Exception {
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(GRPC_SERVICE, ServingStatus.NOT_SERVING);
        Server server = Grpc.newServerBuilderForPort(cfg.port(), InsecureServerCredentials.create())
                .addService(new Service())
                .addService(health.getHealthService())
                .build()
                .start();
        log.info("{} listening on :{} (Kafka {} topic {}, delivery.timeout.ms={}, request.timeout.ms={}, max.block.ms={};"
                        + " Postgres {})", SERVICE, cfg.port(), cfg.bootstrap(), cfg.topic(), cfg.deliveryTimeoutMs(),
                cfg.requestTimeoutMs(), cfg.maxBlockMs(), cfg.pg().describe());
        Thread metadata = new Thread(() -> awaitMetadata(shutdown), "metadata");
        metadata.setDaemon(true);
        metadata.start();
        long lastStats = System.nanoTime();
        String lastLine = "";
        while (!shutdown.sleep(1_000)) {
            if (System.nanoTime() - lastStats > TimeUnit.SECONDS.toNanos(30)) {
                lastStats = System.nanoTime();
                String line = stats();
                if (!line.equals(lastLine)) {
                    log.info("{} stats: {}", SERVICE, line);
                    lastLine = line;
                }
            }
        }
        health.enterTerminalState();
        server.shutdown();
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
            log.warn("calls still open after the 5 s grace: cancelling them");
            server.shutdownNow();
            server.awaitTermination(2, TimeUnit.SECONDS);
        }
        producers.close();
        db.close();
        log.info("{} stopped: {}", SERVICE, stats());
    }

    private String stats() {
        return "placed=" + placed.get() + " invalid=" + invalid.get() + " rejected=" + rejected.get() + " uncertain="
                + uncertain.get() + " reads=" + reads.get() + " read_errors=" + readErrors.get() + " producers_replaced="
                + producers.replaced.get();
    }

    /** NOT_SERVING until the producer fetched the topic's metadata once, then SERVING. */
    private void awaitMetadata(Shutdown shutdown) {
        long lastWarn = 0;
        while (!shutdown.requested()) {
            try {
                List<PartitionInfo> parts = producers.current().producer.partitionsFor(cfg.topic());
                if (parts != null && !parts.isEmpty()) {
                    health.setStatus(GRPC_SERVICE, ServingStatus.SERVING);
                    health.setStatus("", ServingStatus.SERVING);
                    log.info("{} ready: SERVING on :{} (topic {} has {} partitions)", SERVICE, cfg.port(), cfg.topic(),
                            parts.size());
                    return;
                }
            } catch (KafkaException e) {
                if (System.nanoTime() - lastWarn > TimeUnit.SECONDS.toNanos(10)) {
                    lastWarn = System.nanoTime();
                    log.warn("waiting for metadata of topic {}: {}", cfg.topic(), Logs.brief(e));
                }
            }
            shutdown.sleep(500);
        }
    }

    /** Null when valid, else the reason. */
    static String validate(PlaceOrderRequest r) {
        if (r.getIdempotencyKey().isEmpty() || r.getIdempotencyKey().length() > MAX_TEXT) {
            return "idempotency_key must have 1.." + MAX_TEXT + " characters";
        }
        if (r.getCustomer().isEmpty() || r.getCustomer().length() > MAX_TEXT) {
            return "customer must have 1.." + MAX_TEXT + " characters";
        }
        if (r.getItemsCount() < 1 || r.getItemsCount() > MAX_ITEMS) {
            return "an order has 1.." + MAX_ITEMS + " items (got " + r.getItemsCount() + ")";
        }
        for (int i = 0; i < r.getItemsCount(); i++) {
            Item it = r.getItems(i);
            if (it.getQuantity() < 1) {
                return "items[" + i + "].quantity must be >= 1";
            }
            if (it.getUnitPriceCents() < 0) {
                return "items[" + i + "].unit_price_cents must be >= 0";
            }
        }
        return null;
    }

    final class Service extends OrdersGrpc.OrdersImplBase {
        @Override
        public void placeOrder(PlaceOrderRequest req, StreamObserver<PlaceOrderReply> obs) {
            String bad = validate(req);
            if (bad != null) {
                invalid.incrementAndGet();
                obs.onError(Status.INVALID_ARGUMENT.withDescription(bad).asRuntimeException());
                return;
            }
            String orderId = req.getIdempotencyKey();
            byte[] value = OrderPlaced.newBuilder().setOrderId(orderId).setCustomer(req.getCustomer())
                    .addAllItems(req.getItemsList()).setPlacedAtMs(System.currentTimeMillis()).build().toByteArray();
            RecordHeaders headers = new RecordHeaders();
            headers.add("order_id", orderId.getBytes(StandardCharsets.UTF_8));
            ProducerRecord<String, byte[]> rec = new ProducerRecord<>(cfg.topic(), null, req.getCustomer(), value, headers);
            Responder answer = new Responder(obs, orderId);
            Producers.Holder holder = producers.current();
            Thread caller = Thread.currentThread();
            AtomicBoolean inSend = new AtomicBoolean(true);
            try {
                holder.producer.send(rec, (md, ex) -> {
                    if (ex == null) {
                        answer.ok(md);
                        return;
                    }
                    // Invoked on the calling thread before send() returned: the producer refused the record before
                    // appending it (metadata or buffer wait exceeded max.block.ms, record too large, ...).
                    // Invoked later, on the producer's I/O thread: the record was handed over and then failed.
                    if (inSend.get() && Thread.currentThread() == caller) {
                        answer.rejected(ex);
                    } else {
                        answer.uncertain("delivery failed: " + Logs.brief(ex));
                    }
                    if (Kafka.fatalForProducer(ex)) {
                        producers.replace(holder, ex);
                    }
                });
            } catch (KafkaException | IllegalStateException e) {
                // Thrown by send() itself: serialisation, interrupted while blocking, closed or fatal producer.
                answer.rejected(e);
                if (Kafka.fatalForProducer(e)) {
                    producers.replace(holder, e);
                }
                return;
            } catch (RuntimeException e) {
                answer.uncertain("unexpected error in send: " + Logs.brief(e));
                return;
            } finally {
                inSend.set(false);
            }
            answer.armTimeout(cfg.deliveryTimeoutMs() + 5_000L);
        }

        @Override
        public void getOrder(GetOrderRequest req, StreamObserver<Order> obs) {
            if (req.getOrderId().isEmpty()) {
                obs.onError(Status.INVALID_ARGUMENT.withDescription("order_id is required").asRuntimeException());
                return;
            }
            reads.incrementAndGet();
            Order.Builder out = Order.newBuilder().setOrderId(req.getOrderId());
            try (Connection c = db.getConnection();
                 PreparedStatement st = c.prepareStatement(
                         "select customer, total_cents from orders where order_id = ? order by id limit 1")) {
                st.setString(1, req.getOrderId());
                try (ResultSet rs = st.executeQuery()) {
                    if (rs.next()) {
                        out.setCustomer(rs.getString(1)).setTotalCents(rs.getLong(2)).setFound(true);
                    }
                }
            } catch (SQLException e) {
                readErrors.incrementAndGet();
                log.debug("GetOrder {} failed: {}", req.getOrderId(), Logs.brief(e));
                obs.onError(Status.UNAVAILABLE.withDescription("database: " + Logs.brief(e)).asRuntimeException());
                return;
            }
            obs.onNext(out.build());
            obs.onCompleted();
        }
    }

    /** Answers one PlaceOrder exactly once: acknowledged, rejected, or uncertain (error or no ack in time). */
    final class Responder {
        private final StreamObserver<PlaceOrderReply> obs;
        private final String orderId;
        private final AtomicBoolean done = new AtomicBoolean();
        private final AtomicReference<ScheduledFuture<?>> timer = new AtomicReference<>();

        Responder(StreamObserver<PlaceOrderReply> obs, String orderId) {
            this.obs = obs;
            this.orderId = orderId;
        }

        private boolean claim() {
            if (!done.compareAndSet(false, true)) {
                return false;
            }
            ScheduledFuture<?> t = timer.get();
            if (t != null) {
                t.cancel(false);
            }
            return true;
        }

        void ok(RecordMetadata md) {
            if (claim()) {
                placed.incrementAndGet();
                safely(() -> {
                    obs.onNext(PlaceOrderReply.newBuilder().setOrderId(orderId).setPartition(md.partition())
                            .setOffset(md.offset()).build());
                    obs.onCompleted();
                });
            }
        }

        void rejected(Exception e) {
            if (claim()) {
                rejected.incrementAndGet();
                log.debug("order {} rejected: {}", orderId, Logs.brief(e));
                safely(() -> obs.onError(Status.RESOURCE_EXHAUSTED.withDescription("rejected: " + Logs.brief(e))
                        .asRuntimeException()));
            }
        }

        void uncertain(String why) {
            if (claim()) {
                uncertain.incrementAndGet();
                log.debug("order {} outcome uncertain: {}", orderId, why);
                safely(() -> obs.onError(Status.UNAVAILABLE.withDescription("outcome uncertain: " + why)
                        .asRuntimeException()));
            }
        }

        void armTimeout(long ms) {
            if (done.get()) {
                return;
            }
            timer.set(timers.schedule(() -> uncertain("no acknowledgement within " + ms + " ms"), ms,
                    TimeUnit.MILLISECONDS));
            if (done.get()) {
                timer.get().cancel(false);
            }
        }

        private void safely(Runnable r) {
            try {
                r.run();
            } catch (RuntimeException e) {
                log.debug("answer for order {} not delivered: {}", orderId, Logs.brief(e));
            }
        }
    }

    /** The current producer; replaced (and the old one closed) after a fatal error. */
    static final class Producers {
        record Holder(KafkaProducer<String, byte[]> producer, int generation) { }

        private final Config cfg;
        private final AtomicReference<Holder> current;
        final AtomicLong replaced = new AtomicLong();

        Producers(Config cfg) {
            this.cfg = cfg;
            this.current = new AtomicReference<>(new Holder(create(0), 0));
        }

        private KafkaProducer<String, byte[]> create(int generation) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap());
            p.put(ProducerConfig.CLIENT_ID_CONFIG, SERVICE + "-" + generation);
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, cfg.deliveryTimeoutMs());
            p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, cfg.requestTimeoutMs());
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, cfg.maxBlockMs());
            p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            return new KafkaProducer<>(p);
        }

        Holder current() {
            return current.get();
        }

        /** Replaces {@code broken} (once, whoever calls first) and closes it on another thread. */
        void replace(Holder broken, Throwable why) {
            synchronized (this) {
                if (current.get() != broken) {
                    return;
                }
                Holder fresh = new Holder(create(broken.generation() + 1), broken.generation() + 1);
                current.set(fresh);
                replaced.incrementAndGet();
            }
            log.warn("producer {} hit a fatal error and was replaced: {}", broken.generation(), Logs.brief(why));
            Thread closer = new Thread(() -> broken.producer().close(Duration.ofSeconds(5)), "producer-close");
            closer.setDaemon(true);
            closer.start();
        }

        void close() {
            current.get().producer().close(Duration.ofSeconds(5));
        }
    }
}
