package example.orders.common;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import sun.misc.Signal;

/**
 * SIGTERM and SIGINT start a clean stop instead of the JVM's default exit (status 143): the service's own loop
 * notices {@link #requested()}, finishes its work, and the main thread exits with status 0. A watchdog halts the
 * JVM with status 1 when the clean stop takes longer than {@code graceMs}.
 */
public final class Shutdown {
    private final CountDownLatch requested = new CountDownLatch(1);
    private final long graceMs;
    private volatile Runnable onRequest = () -> { };

    public Shutdown(long graceMs) {
        this.graceMs = graceMs;
    }

    public void install(Logger log) {
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), sig -> {
                if (requested.getCount() == 0) {
                    return;
                }
                log.info("SIG{} received: stopping cleanly", name);
                requested.countDown();
                Thread watchdog = new Thread(() -> {
                    try {
                        Thread.sleep(graceMs);
                    } catch (InterruptedException e) {
                        return;
                    }
                    log.error("clean stop did not finish within {} ms: halting", graceMs);
                    Runtime.getRuntime().halt(1);
                }, "shutdown-watchdog");
                watchdog.setDaemon(true);
                watchdog.start();
                try {
                    onRequest.run();
                } catch (RuntimeException e) {
                    log.warn("stop action failed: {}", Logs.brief(e));
                }
            });
        }
    }

    /** Runs (once, on the signal's thread) when a stop is requested. */
    public void onRequest(Runnable r) {
        this.onRequest = r;
    }

    public boolean requested() {
        return requested.getCount() == 0;
    }

    /** Sleeps up to {@code ms}; returns early (true) when a stop is requested. */
    public boolean sleep(long ms) {
        try {
            return requested.await(ms, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true;
        }
    }

    public void await() throws InterruptedException {
        requested.await();
    }
}
