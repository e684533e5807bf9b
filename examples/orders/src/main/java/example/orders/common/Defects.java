package example.orders.common;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import org.slf4j.Logger;

/** The deliberate defects switched on by PIPELINE_DEFECTS (comma list). All off by default. */
public enum Defects {
    SWALLOW_OPTIMISTIC_LOCK("sink", "the balance update runs in a second transaction and an optimistic-lock conflict there is"
            + " logged and dropped: lost updates (balances miss orders)"),
    NO_INBOX("sink", "the inbox is neither checked nor written: a redelivered order is applied twice"),
    NON_TRANSACTIONAL_PRICER("pricer", "no Kafka transactions, auto-commit of offsets every 5 s, plain idempotent producer:"
            + " duplicates after a crash, and records lost when offsets were committed before they were produced"),
    READ_UNCOMMITTED("sink", "the consumer reads with isolation.level=read_uncommitted: records of aborted pricer"
            + " transactions are applied"),
    COMMIT_BEFORE_WRITE("sink", "the batch's offsets are committed before the database work: a database failure loses"
            + " the batch");

    public final String service;
    public final String effect;

    Defects(String service, String effect) {
        this.service = service;
        this.effect = effect;
    }

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** All names in PIPELINE_DEFECTS; an unknown one is a ConfigException listing the accepted names. */
    public static Set<Defects> parse(String value) {
        EnumSet<Defects> out = EnumSet.noneOf(Defects.class);
        if (value == null) {
            return out;
        }
        for (String part : value.split(",")) {
            String name = part.trim().toLowerCase(Locale.ROOT);
            if (name.isEmpty()) {
                continue;
            }
            Defects d = Arrays.stream(values()).filter(x -> x.id().equals(name)).findFirst().orElse(null);
            if (d == null) {
                throw new ConfigException("PIPELINE_DEFECTS: unknown defect '" + part.trim() + "'; accepted: "
                        + Arrays.stream(values()).map(Defects::id).collect(Collectors.joining(", ")));
            }
            out.add(d);
        }
        return out;
    }

    /** The defects of {@code all} that belong to {@code service}. */
    public static Set<Defects> of(Set<Defects> all, String service) {
        EnumSet<Defects> mine = EnumSet.noneOf(Defects.class);
        for (Defects d : all) {
            if (d.service.equals(service)) {
                mine.add(d);
            }
        }
        return mine;
    }

    /** A loud WARNING banner for each defect this service applies, a note for the others' defects. */
    public static void banner(Set<Defects> mine, Set<Defects> all, String service, Logger log) {
        for (Defects d : mine) {
            log.warn("WARNING ********** DELIBERATE DEFECT ENABLED in {}: {} -- {} **********", service, d.id(), d.effect);
        }
        for (Defects d : all) {
            if (!mine.contains(d)) {
                log.info("PIPELINE_DEFECTS: {} belongs to {}, not applied by {}", d.id(), d.service, service);
            }
        }
    }
}
