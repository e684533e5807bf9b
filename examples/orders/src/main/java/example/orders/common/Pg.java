package example.orders.common;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;

/**
 * The Postgres connection settings from PG_HOST, PG_PORT (5432), PG_DB, PG_USER, PG_PASSWORD, PG_SCHEMA (public),
 * and a small HikariCP pool over them. Connect timeout 5 s, socket timeout 15 s, statement_timeout 10 s,
 * search_path = PG_SCHEMA. The password is never part of the URL or of any log line.
 */
public final class Pg {
    public static final int CONNECT_TIMEOUT_S = 5;
    public static final int SOCKET_TIMEOUT_S = 15;
    public static final int STATEMENT_TIMEOUT_MS = 10_000;

    public final String host;
    public final int port;
    public final String db;
    public final String user;
    public final String schema;
    private final String password;

    public Pg(Env env) {
        host = env.required("PG_HOST");
        port = env.integer("PG_PORT", 5432, 1, 65535);
        db = env.required("PG_DB");
        user = env.required("PG_USER");
        password = env.secret("PG_PASSWORD");
        schema = env.pgSchema();
    }

    /** The JDBC URL, without user or password (safe to log). */
    public String url() {
        return "jdbc:postgresql://" + host + ":" + port + "/" + URLEncoder.encode(db, StandardCharsets.UTF_8)
                + "?connectTimeout=" + CONNECT_TIMEOUT_S + "&socketTimeout=" + SOCKET_TIMEOUT_S
                + "&currentSchema=" + schema;
    }

    public String describe() {
        return url() + " (user " + user + ", statement_timeout " + STATEMENT_TIMEOUT_MS + " ms)";
    }

    /**
     * A pool that starts without touching the database (it may be down): connections are made on demand,
     * a borrower waits at most {@code connectionTimeoutMs}.
     */
    public HikariDataSource pool(String name, int size, boolean autoCommit, long connectionTimeoutMs) {
        HikariConfig c = new HikariConfig();
        c.setPoolName(name);
        c.setJdbcUrl(url());
        c.setUsername(user);
        c.setPassword(password);
        c.addDataSourceProperty("options", "-c statement_timeout=" + STATEMENT_TIMEOUT_MS);
        c.addDataSourceProperty("ApplicationName", name);
        c.addDataSourceProperty("tcpKeepAlive", "true");
        c.setMaximumPoolSize(size);
        c.setMinimumIdle(0);
        c.setAutoCommit(autoCommit);
        c.setConnectionTimeout(connectionTimeoutMs);
        c.setValidationTimeout(Math.min(3000, connectionTimeoutMs));
        c.setInitializationFailTimeout(-1);
        return new HikariDataSource(c);
    }
}
