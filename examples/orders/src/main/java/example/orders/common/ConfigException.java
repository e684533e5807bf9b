package example.orders.common;

/** A bad or missing configuration value: the service prints one line on stderr and exits with status 2. */
public final class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }
}
