package example.orders.common;

import java.util.Map;
import java.util.regex.Pattern;

/** Typed reads of the environment; every bad or missing value is a {@link ConfigException}. */
public final class Env {
    private static final Pattern HOST_PORT = Pattern.compile("[A-Za-z0-9._\\-\\[\\]:]+:[0-9]{1,5}");
    private static final Pattern PG_SCHEMA = Pattern.compile("[a-z_][a-z0-9_]{0,62}");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._\\-]{1,249}");
    private final Map<String, String> env;

    public Env(Map<String, String> env) {
        this.env = env;
    }

    public static Env system() {
        return new Env(System.getenv());
    }

    /** The trimmed value, or null when unset or blank. */
    public String raw(String name) {
        String v = env.get(name);
        if (v == null) {
            return null;
        }
        v = v.trim();
        return v.isEmpty() ? null : v;
    }

    public String required(String name) {
        String v = raw(name);
        if (v == null) {
            throw new ConfigException(name + " is required but not set");
        }
        return v;
    }

    public String optional(String name, String def) {
        String v = raw(name);
        return v == null ? def : v;
    }

    /** A secret: required, not trimmed, never part of any message. */
    public String secret(String name) {
        String v = env.get(name);
        if (v == null || v.isEmpty()) {
            throw new ConfigException(name + " is required but not set");
        }
        return v;
    }

    public int integer(String name, int def, int min, int max) {
        String v = raw(name);
        if (v == null) {
            return def;
        }
        try {
            int i = Integer.parseInt(v);
            if (i < min || i > max) {
                throw new ConfigException(name + "=" + v + " is out of range [" + min + ", " + max + "]");
            }
            return i;
        } catch (NumberFormatException e) {
            throw new ConfigException(name + "=" + v + " is not an integer");
        }
    }

    /** KAFKA_BOOTSTRAP: a comma list of host:port. */
    public String bootstrap() {
        String v = required("KAFKA_BOOTSTRAP");
        StringBuilder out = new StringBuilder();
        for (String part : v.split(",")) {
            String p = part.trim();
            if (!HOST_PORT.matcher(p).matches()) {
                throw new ConfigException("KAFKA_BOOTSTRAP=" + v + " is not a comma list of host:port (bad entry '" + p + "')");
            }
            int port = Integer.parseInt(p.substring(p.lastIndexOf(':') + 1));
            if (port < 1 || port > 65535) {
                throw new ConfigException("KAFKA_BOOTSTRAP=" + v + " has a port out of range in '" + p + "'");
            }
            if (out.length() > 0) {
                out.append(',');
            }
            out.append(p);
        }
        return out.toString();
    }

    /** A Kafka topic, group or transactional id. */
    public String kafkaName(String name) {
        String v = required(name);
        if (!NAME.matcher(v).matches()) {
            throw new ConfigException(name + "=" + v + " may hold only letters, digits, '.', '_' and '-' (1..249)");
        }
        return v;
    }

    /** PG_SCHEMA: an unquoted, lower-case Postgres identifier (default public). */
    public String pgSchema() {
        String v = optional("PG_SCHEMA", "public");
        if (!PG_SCHEMA.matcher(v).matches()) {
            throw new ConfigException("PG_SCHEMA=" + v + " must be a lower-case identifier: [a-z_][a-z0-9_]{0,62}");
        }
        return v;
    }
}
