"""Environment parsing and validation for the refpipe services.

Everything is configured through environment variables.  ``load_*_settings`` raise
:class:`ConfigError` with one human-readable message; :func:`load_or_exit` turns that
into a single line on stderr and exit status 2.

The Kafka client configurations are built here too (pure functions) so that the
effect of each defect switch is visible and unit-testable without a broker.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""


# name -> what real bug it models (kept short; README.md has the long version)
INGEST_DEFECTS: dict[str, str] = {
    "acks1": "producer uses acks=1 (leader-only ack; idempotence off): acked writes lost on leader failover",
    "acks0": "producer uses acks=0 (fire and forget; idempotence off): 'acked' before the broker has it",
    "no_idempotence": "producer without idempotence, retries high, 5 in-flight: duplicates/reorder on retry",
    "guessed_partition": "the ack reports the partition Java's murmur2 partitioner would pick, not the delivered one",
    "ack_on_send": "acknowledged once handed to the producer, before the broker's acknowledgement",
    "cached_reads": "GetState answers from an in-process cache filled on a key's first read, never invalidated",
}
PROJECTOR_DEFECTS: dict[str, str] = {
    "commit_before_write": "offsets committed BEFORE the DB transaction: a failed write loses the batch",
    "auto_commit": "enable.auto.commit=true (100 ms), no manual commits: offsets run ahead of the DB",
    "no_dedup": "dedup table not consulted: every redelivered event is applied again",
    "no_conflict_retry": "optimistic-lock conflicts ignored: the conflicting keys' updates are dropped",
    "stale_read": "state read outside the transaction, absolute write without version check: lost update",
    "unchecked_version": "key_state UPDATE without its version predicate: a concurrent writer's change is lost",
}
ALL_DEFECTS: dict[str, str] = {**INGEST_DEFECTS, **PROJECTOR_DEFECTS}

def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java clients pick for ``key`` (murmur2, positive, modulo): what a service that
    guesses the partition itself (``guessed_partition``) reports, though librdkafka picks with crc32."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(key)
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length // 4 * 4, 4):
        k = int.from_bytes(key[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = key[length - rest:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


# pairs that cannot be combined meaningfully
_EXCLUSIVE_DEFECTS: tuple[tuple[str, str], ...] = (
    ("acks0", "acks1"),
    ("auto_commit", "commit_before_write"),
)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOSTPORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:,\[\]]+):(\d{1,5})$")

MAX_INT32 = 2**31 - 1


def parse_defects(raw: str | None) -> frozenset[str]:
    """Parse ``PIPELINE_DEFECTS`` (comma list; blanks and duplicates ignored)."""
    if raw is None:
        return frozenset()
    names = [part.strip().lower() for part in raw.split(",")]
    names = [n for n in names if n]
    unknown = sorted({n for n in names if n not in ALL_DEFECTS})
    if unknown:
        raise ConfigError(
            f"PIPELINE_DEFECTS: unknown defect(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(ALL_DEFECTS))}"
        )
    chosen = frozenset(names)
    for a, b in _EXCLUSIVE_DEFECTS:
        if a in chosen and b in chosen:
            raise ConfigError(f"PIPELINE_DEFECTS: {a} and {b} cannot be combined")
    return chosen


# ---------------------------------------------------------------------------
# primitive parsers
# ---------------------------------------------------------------------------

_T = TypeVar("_T")


def _get(env: Mapping[str, str], name: str, default: str | None) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default
    return raw.strip()


def _parsed(env: Mapping[str, str], name: str, default: str, conv: Callable[[str], _T], what: str) -> _T:
    raw = _get(env, name, default)
    try:
        return conv(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int = MAX_INT32) -> int:
    value = _parsed(env, name, str(default), int, "an integer")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    value = _parsed(env, name, str(default), float, "a number")
    if not lo <= value <= hi:  # also rejects nan
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _bootstrap(env: Mapping[str, str]) -> str:
    raw = _get(env, "KAFKA_BOOTSTRAP", None)
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ConfigError("KAFKA_BOOTSTRAP is empty")
    for p in parts:
        m = _HOSTPORT_RE.match(p)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ConfigError(f"KAFKA_BOOTSTRAP: {p!r} is not host:port")
    return ",".join(parts)


def _listen(env: Mapping[str, str]) -> str:
    raw = _get(env, "INGEST_LISTEN", "0.0.0.0:50051")
    m = _HOSTPORT_RE.match(raw)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ConfigError(f"INGEST_LISTEN={raw!r} is not host:port")
    return raw


def _dsn(env: Mapping[str, str]) -> str:
    raw = _get(env, "PG_DSN", None)
    # keep the check loose (libpq accepts URLs and key=value strings), but catch obvious junk
    if not (raw.startswith(("postgresql://", "postgres://")) or "=" in raw):
        raise ConfigError(
            "PG_DSN must be a libpq URL (postgresql://user:pass@host:port/db) or key=value string"
        )
    return raw


# ---------------------------------------------------------------------------
# settings objects
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CommonSettings:
    kafka_bootstrap: str
    kafka_topic: str
    pg_dsn: str
    pg_schema: str
    pg_connect_timeout_s: int
    pg_statement_timeout_ms: int
    log_level: str
    metrics_port: int
    defects: frozenset[str]

    def has(self, defect: str) -> bool:
        if defect not in ALL_DEFECTS:  # programming error, not configuration
            raise KeyError(defect)
        return defect in self.defects


@dataclass(frozen=True)
class IngestSettings(CommonSettings):
    listen: str
    delivery_timeout_ms: int
    request_timeout_ms: int
    linger_ms: int

    @property
    def active_defects(self) -> list[str]:
        return sorted(self.defects & INGEST_DEFECTS.keys())


@dataclass(frozen=True)
class ProjectorSettings(CommonSettings):
    group: str
    batch_max: int
    poll_timeout_s: float
    session_timeout_ms: int
    heartbeat_ms: int
    max_poll_interval_ms: int
    conflict_retries: int
    restart_backoff_s: float
    projector_id: str

    @property
    def active_defects(self) -> list[str]:
        return sorted(self.defects & PROJECTOR_DEFECTS.keys())


def _common(env: Mapping[str, str]) -> dict[str, Any]:
    topic = _get(env, "KAFKA_TOPIC", "events")
    if not _TOPIC_RE.match(topic) or topic in (".", ".."):
        raise ConfigError(f"KAFKA_TOPIC={topic!r} is not a legal Kafka topic name")
    schema = _get(env, "PG_SCHEMA", "public")
    if not _SCHEMA_RE.match(schema):
        raise ConfigError(f"PG_SCHEMA={schema!r} must match {_SCHEMA_RE.pattern} (lower-case identifier)")
    level = _get(env, "LOG_LEVEL", "INFO").upper()
    if level == "WARN":
        level = "WARNING"
    if level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={level!r} is not one of {', '.join(_LOG_LEVELS)}")
    return {
        "kafka_bootstrap": _bootstrap(env),
        "kafka_topic": topic,
        "pg_dsn": _dsn(env),
        "pg_schema": schema,
        "pg_connect_timeout_s": _int(env, "PG_CONNECT_TIMEOUT_S", 5, 1, 300),
        "pg_statement_timeout_ms": _int(env, "PG_STATEMENT_TIMEOUT_MS", 10000, 100, 600_000),
        "log_level": level,
        "metrics_port": _int(env, "METRICS_PORT", 9100, 0, 65535),
        "defects": parse_defects(env.get("PIPELINE_DEFECTS")),
    }


def load_ingest_settings(env: Mapping[str, str]) -> IngestSettings:
    common = _common(env)
    delivery = _int(env, "PRODUCER_DELIVERY_TIMEOUT_MS", 15000, 100, 900_000)
    request = _int(env, "PRODUCER_REQUEST_TIMEOUT_MS", 5000, 1, 900_000)
    linger = _int(env, "PRODUCER_LINGER_MS", 5, 0, 900_000)
    if delivery <= linger:
        raise ConfigError(
            f"PRODUCER_DELIVERY_TIMEOUT_MS={delivery} must be greater than PRODUCER_LINGER_MS={linger}"
        )
    return IngestSettings(
        **common,
        listen=_listen(env),
        delivery_timeout_ms=delivery,
        request_timeout_ms=request,
        linger_ms=linger,
    )


def load_projector_settings(env: Mapping[str, str]) -> ProjectorSettings:
    common = _common(env)
    session = _int(env, "CONSUMER_SESSION_TIMEOUT_MS", 6000, 1, 3_600_000)
    heartbeat = _int(env, "CONSUMER_HEARTBEAT_MS", 1500, 1, 3_600_000)
    max_poll = _int(env, "CONSUMER_MAX_POLL_INTERVAL_MS", 30000, 1, 86_400_000)
    if heartbeat >= session:
        raise ConfigError(
            f"CONSUMER_HEARTBEAT_MS={heartbeat} must be lower than CONSUMER_SESSION_TIMEOUT_MS={session}"
        )
    if max_poll < session:
        raise ConfigError(
            f"CONSUMER_MAX_POLL_INTERVAL_MS={max_poll} must be >= CONSUMER_SESSION_TIMEOUT_MS={session}"
        )
    group = _get(env, "KAFKA_GROUP", "projector")
    projector_id = _get(env, "PROJECTOR_ID", socket.gethostname() or "projector")
    return ProjectorSettings(
        **common,
        group=group,
        batch_max=_int(env, "PROJECTOR_BATCH_MAX", 500, 1, 100_000),
        poll_timeout_s=_float(env, "PROJECTOR_POLL_TIMEOUT_S", 0.2, 0.001, 60.0),
        session_timeout_ms=session,
        heartbeat_ms=heartbeat,
        max_poll_interval_ms=max_poll,
        conflict_retries=_int(env, "PROJECTOR_CONFLICT_RETRIES", 20, 0, 10_000),
        restart_backoff_s=_float(env, "PROJECTOR_RESTART_BACKOFF_S", 0.5, 0.0, 600.0),
        projector_id=projector_id,
    )


def load_or_exit(loader: Callable[[Mapping[str, str]], _T], env: Mapping[str, str]) -> _T:
    """Run a loader; on a configuration error print one clear line and exit with status 2."""
    try:
        return loader(env)
    except ConfigError as exc:
        _die(f"refpipe: configuration error: {exc}")


def _die(message: str) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(2)


# ---------------------------------------------------------------------------
# Kafka client configuration (pure)
# ---------------------------------------------------------------------------


def producer_config(s: IngestSettings, client_id: str = "refpipe-ingest") -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap.servers": s.kafka_bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": s.linger_ms,
        "delivery.timeout.ms": s.delivery_timeout_ms,
        "request.timeout.ms": s.request_timeout_ms,
        "socket.keepalive.enable": True,
    }
    if s.has("no_idempotence"):
        cfg["enable.idempotence"] = False
        cfg["retries"] = MAX_INT32
        cfg["max.in.flight.requests.per.connection"] = 5
    # librdkafka refuses acks != all together with idempotence, so these imply it off
    if s.has("acks1"):
        cfg["acks"] = "1"
        cfg["enable.idempotence"] = False
    if s.has("acks0"):
        cfg["acks"] = "0"
        cfg["enable.idempotence"] = False
    return cfg


def consumer_config(s: ProjectorSettings) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap.servers": s.kafka_bootstrap,
        "group.id": s.group,
        "client.id": f"refpipe-projector-{s.projector_id}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": s.session_timeout_ms,
        "heartbeat.interval.ms": s.heartbeat_ms,
        "max.poll.interval.ms": s.max_poll_interval_ms,
        "enable.partition.eof": False,
        "socket.keepalive.enable": True,
    }
    if s.has("auto_commit"):
        cfg["enable.auto.commit"] = True
        cfg["auto.commit.interval.ms"] = 100
    return cfg


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # librdkafka/psycopg chatter stays at WARNING unless DEBUG was asked for
    if level != "DEBUG":
        logging.getLogger("psycopg").setLevel(logging.WARNING)


def log_defects(
    logger: logging.Logger, service: str, active: list[str], all_requested: frozenset[str]
) -> None:
    """Log loudly which defects this service applies (and which requested ones it ignores)."""
    if active:
        banner = "!" * 72
        logger.warning(banner)
        logger.warning(
            "%s: DEFECTS ACTIVE (this service is deliberately buggy): %s", service, ", ".join(active)
        )
        for name in active:
            logger.warning("  defect %s: %s", name, ALL_DEFECTS[name])
        logger.warning(banner)
    else:
        logger.info("%s: no defects active (correct behaviour)", service)
    ignored = sorted(all_requested - set(active))
    if ignored:
        logger.info("%s: ignoring defects that concern the other service: %s", service, ", ".join(ignored))


class ErrorLogThrottle:
    """Log a recurring client error (same code) at most once per ``interval_s``; counts the rest."""

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, code: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(code)
            if last is not None and now - last < self._interval_s:
                self._suppressed[code] = self._suppressed.get(code, 0) + 1
                return
            self._last[code] = now
            suppressed = self._suppressed.pop(code, 0)
        if suppressed:
            self._logger.warning(
                "%s (and %d similar in the last %.0fs)", message, suppressed, self._interval_s
            )
        else:
            self._logger.warning("%s", message)
