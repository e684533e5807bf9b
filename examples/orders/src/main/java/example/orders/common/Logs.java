package example.orders.common;

import java.util.Locale;
import java.util.Set;

/**
 * slf4j-simple set up from LOG_LEVEL before the first logger exists: one line per event on stdout, this
 * example's own loggers at LOG_LEVEL (default INFO), the libraries (Kafka, Hibernate, HikariCP, gRPC) at WARN,
 * or at INFO when LOG_LEVEL is DEBUG or TRACE. Hibernate's own SQL error lines are off and Kafka's
 * NetworkClient logs errors only, unless DEBUG/TRACE.
 */
public final class Logs {
    private static final Set<String> LEVELS = Set.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR");

    private Logs() {
    }

    public static void init(Env env) {
        String level = env.optional("LOG_LEVEL", "INFO").toUpperCase(Locale.ROOT);
        if (!LEVELS.contains(level)) {
            throw new ConfigException("LOG_LEVEL=" + env.raw("LOG_LEVEL") + " is not one of " + String.join(", ", LEVELS.stream().sorted().toList()));
        }
        boolean verbose = level.equals("DEBUG") || level.equals("TRACE");
        String p = "org.slf4j.simpleLogger.";
        System.setProperty(p + "logFile", "System.out");
        System.setProperty(p + "cacheOutputStream", "false");
        System.setProperty(p + "showDateTime", "true");
        System.setProperty(p + "dateTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSX");
        System.setProperty(p + "showThreadName", "false");
        System.setProperty(p + "showShortLogName", "true");
        System.setProperty(p + "defaultLogLevel", verbose ? "info" : "warn");
        System.setProperty(p + "log.example.orders", level.toLowerCase(Locale.ROOT));
        if (!verbose) {
            // Hibernate logs every SQL error (several lines each); the sink classifies and counts them itself.
            System.setProperty(p + "log.org.hibernate.orm.jdbc.error", "off");
            System.setProperty(p + "log.org.hibernate.orm.jdbc.warn", "off");
            // Two WARN lines per reconnect attempt (about one a second per broker) while a broker is down.
            System.setProperty(p + "log.org.apache.kafka.clients.NetworkClient", "error");
        }
        System.setProperty("org.jboss.logging.provider", "slf4j");
    }

    /** How many individual lines a repeated per-record warning gets; after that it is only counted. */
    public static final long INDIVIDUAL_WARNINGS = 10;

    /** One line, no stack trace: the class and message of an exception and of its root cause. */
    public static String brief(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String s = t.getClass().getSimpleName() + ": " + t.getMessage();
        if (root != t) {
            s += " (cause " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
        }
        return s.replace('\n', ' ');
    }
}
