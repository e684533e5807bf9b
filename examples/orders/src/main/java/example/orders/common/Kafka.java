package example.orders.common;

import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.FencedInstanceIdException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.UnsupportedVersionException;

/** Kafka helpers shared by the services. */
public final class Kafka {
    private Kafka() {
    }

    /**
     * True when a producer that raised {@code t} (anywhere in its cause chain) must be closed and replaced, never
     * retried: fenced by a newer epoch, a sequence gap, an authorisation or version problem, an illegal state.
     */
    public static boolean fenced(Throwable t) {
        return fatal(t, false);
    }

    /** {@link #fenced}, or a plain idempotent producer "in an error state" (its fatal state). */
    public static boolean fatalForProducer(Throwable t) {
        return fatal(t, true);
    }

    private static boolean fatal(Throwable t, boolean errorState) {
        for (Throwable e = t; e != null; e = e.getCause() == e ? null : e.getCause()) {
            if (e instanceof ProducerFencedException || e instanceof InvalidProducerEpochException
                    || e instanceof OutOfOrderSequenceException || e instanceof AuthorizationException
                    || e instanceof AuthenticationException || e instanceof UnsupportedVersionException
                    || e instanceof FencedInstanceIdException || e instanceof IllegalStateException) {
                return true;
            }
            if (errorState && e instanceof KafkaException && e.getMessage() != null && e.getMessage().contains("in an error state")) {
                return true;
            }
        }
        return false;
    }
}
