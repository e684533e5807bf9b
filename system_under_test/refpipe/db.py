"""Kafka record format, Postgres schema and SQL, and the pure batch-planning logic.

Nothing in here talks to a database or a broker: the projector feeds it what it read
and executes the statements it returns, so all of it is unit-testable.

A batch is applied in one transaction with a handful of set-based statements:

1. ``DEDUP_SQL``        insert the batch's event ids into ``processed_events``
                        (``ON CONFLICT DO NOTHING RETURNING event_id``) -> the new events
2. ``READ_STATE_SQL``   current ``key_state`` rows of the touched keys (no FOR UPDATE)
3. ``UPDATE_STATE_SQL`` existing keys, guarded by ``version = expected_version``;
   ``INSERT_STATE_SQL`` new keys, ``ON CONFLICT DO NOTHING``; a planned key missing from
                        the union of both RETURNING sets is a version conflict
4. ``APPLIED_LOG_SQL``  one journal row per applied event
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg import sql

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_ID_LEN = 1024

# ---------------------------------------------------------------------------
# Kafka record format
# ---------------------------------------------------------------------------
# key     = event key, utf-8
# value   = compact JSON {"event_id":..,"key":..,"seq":..,"amount":..}
# headers = [("event_id", event_id utf-8)]

EVENT_ID_HEADER = "event_id"


class MalformedRecord(ValueError):
    """A Kafka record that is not a valid event (skipped by the projector)."""


@dataclass(frozen=True)
class EventRecord:
    event_id: str
    key: str
    seq: int
    amount: int
    partition: int
    offset: int


def validate_event_fields(event_id: str, key: str, seq: int, amount: int) -> str | None:
    """Return why an event is invalid, or None when it is fine (used by ingest and projector)."""
    if not event_id:
        return "event_id is empty"
    if not key:
        return "key is empty"
    if len(event_id) > MAX_ID_LEN:
        return f"event_id longer than {MAX_ID_LEN} characters"
    if len(key) > MAX_ID_LEN:
        return f"key longer than {MAX_ID_LEN} characters"
    if "\x00" in event_id or "\x00" in key:
        return "event_id/key contain a NUL character"
    for name, value in (("seq", seq), ("amount", amount)):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"{name} out of int64 range"
    return None


def encode_value(event_id: str, key: str, seq: int, amount: int) -> bytes:
    """The Kafka record value: compact JSON, fixed field order."""
    return json.dumps(
        {"event_id": event_id, "key": key, "seq": seq, "amount": amount},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def decode_record(value: bytes | None, partition: int, offset: int) -> EventRecord:
    """Parse a record value; raise MalformedRecord if it is not a valid event."""
    if value is None:
        raise MalformedRecord("record has no value")
    try:
        obj = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRecord(f"value is not utf-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedRecord("value is not a JSON object")
    event_id, key, seq, amount = obj.get("event_id"), obj.get("key"), obj.get("seq"), obj.get("amount")
    if not isinstance(event_id, str) or not isinstance(key, str):
        raise MalformedRecord("event_id/key missing or not strings")
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or not isinstance(amount, int)
        or isinstance(amount, bool)
    ):
        raise MalformedRecord("seq/amount missing or not integers")
    problem = validate_event_fields(event_id, key, seq, amount)
    if problem:
        raise MalformedRecord(problem)
    return EventRecord(event_id=event_id, key=key, seq=seq, amount=amount, partition=partition, offset=offset)


# ---------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------

TABLES_DDL: tuple[LiteralString, ...] = (
    """CREATE TABLE IF NOT EXISTS {schema}.processed_events (
        event_id     text        PRIMARY KEY,
        key          text        NOT NULL,
        seq          bigint      NOT NULL,
        partition    int         NOT NULL,
        kafka_offset bigint      NOT NULL,
        applied_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.key_state (
        key         text        PRIMARY KEY,
        version     bigint      NOT NULL,
        total       bigint      NOT NULL,
        event_count bigint      NOT NULL,
        last_seq    bigint      NOT NULL,
        updated_at  timestamptz NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.applied_log (
        id           bigserial   PRIMARY KEY,
        event_id     text        NOT NULL,
        key          text        NOT NULL,
        seq          bigint      NOT NULL,
        amount       bigint      NOT NULL,
        partition    int         NOT NULL,
        kafka_offset bigint      NOT NULL,
        projector    text        NOT NULL,
        applied_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX IF NOT EXISTS applied_log_event_id_idx ON {schema}.applied_log (event_id)",
)

SCHEMA_EXISTS_SQL: LiteralString = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s"
CREATE_SCHEMA_SQL: LiteralString = "CREATE SCHEMA IF NOT EXISTS {schema}"
# transaction-scoped advisory lock: two replicas creating the schema at once serialize here
SCHEMA_LOCK_SQL: LiteralString = "SELECT pg_advisory_xact_lock(hashtext(%s))"


def schema_lock_name(schema: str) -> str:
    return f"refpipe.schema.{schema}"


def schema_statements(schema: str) -> list[sql.Composed]:
    """DDL for the tables, schema-qualified (search_path cannot point at a schema not yet created)."""
    ident = sql.Identifier(schema)
    return [sql.SQL(stmt).format(schema=ident) for stmt in TABLES_DDL]


def create_schema_statement(schema: str) -> sql.Composed:
    return sql.SQL(CREATE_SCHEMA_SQL).format(schema=sql.Identifier(schema))


def connection_options(schema: str, statement_timeout_ms: int) -> str:
    """libpq ``options``: every statement runs with search_path=<schema> and a statement_timeout.

    ``schema`` is validated by settings as a lower-case identifier, so it needs no quoting."""
    return f"-c search_path={schema} -c statement_timeout={statement_timeout_ms}"


# ---------------------------------------------------------------------------
# batch SQL (unqualified: runs with search_path = PG_SCHEMA)
# ---------------------------------------------------------------------------

DEDUP_SQL: LiteralString = """
INSERT INTO processed_events (event_id, key, seq, partition, kafka_offset)
SELECT * FROM unnest(%(event_id)s::text[], %(key)s::text[], %(seq)s::bigint[],
                     %(partition)s::int[], %(kafka_offset)s::bigint[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

READ_STATE_SQL: LiteralString = """
SELECT key, version, total, event_count, last_seq
FROM key_state
WHERE key = ANY(%(keys)s::text[])
"""

UPDATE_STATE_SQL: LiteralString = """
UPDATE key_state AS s
SET version = v.new_version,
    total = v.total,
    event_count = v.event_count,
    last_seq = v.last_seq,
    updated_at = clock_timestamp()
FROM unnest(%(key)s::text[], %(expected_version)s::bigint[], %(new_version)s::bigint[],
            %(total)s::bigint[], %(event_count)s::bigint[], %(last_seq)s::bigint[])
     AS v(key, expected_version, new_version, total, event_count, last_seq)
WHERE s.key = v.key AND s.version = v.expected_version
RETURNING s.key
"""

# defect unchecked_version: the same absolute write without its version predicate ("a key has one writer")
UNCHECKED_UPDATE_STATE_SQL: LiteralString = UPDATE_STATE_SQL.replace(" AND s.version = v.expected_version", "")
assert UNCHECKED_UPDATE_STATE_SQL != UPDATE_STATE_SQL

INSERT_STATE_SQL: LiteralString = """
INSERT INTO key_state (key, version, total, event_count, last_seq, updated_at)
SELECT v.key, v.new_version, v.total, v.event_count, v.last_seq, clock_timestamp()
FROM unnest(%(key)s::text[], %(new_version)s::bigint[], %(total)s::bigint[],
            %(event_count)s::bigint[], %(last_seq)s::bigint[])
     AS v(key, new_version, total, event_count, last_seq)
ON CONFLICT (key) DO NOTHING
RETURNING key
"""

# defect stale_read: blind absolute upsert, no version check (lost update)
STALE_UPSERT_STATE_SQL: LiteralString = """
INSERT INTO key_state (key, version, total, event_count, last_seq, updated_at)
SELECT v.key, v.new_version, v.total, v.event_count, v.last_seq, clock_timestamp()
FROM unnest(%(key)s::text[], %(new_version)s::bigint[], %(total)s::bigint[],
            %(event_count)s::bigint[], %(last_seq)s::bigint[])
     AS v(key, new_version, total, event_count, last_seq)
ON CONFLICT (key) DO UPDATE
SET version = EXCLUDED.version,
    total = EXCLUDED.total,
    event_count = EXCLUDED.event_count,
    last_seq = EXCLUDED.last_seq,
    updated_at = EXCLUDED.updated_at
RETURNING key
"""

APPLIED_LOG_SQL: LiteralString = """
INSERT INTO applied_log (event_id, key, seq, amount, partition, kafka_offset, projector)
SELECT v.event_id, v.key, v.seq, v.amount, v.partition, v.kafka_offset, %(projector)s::text
FROM unnest(%(event_id)s::text[], %(key)s::text[], %(seq)s::bigint[], %(amount)s::bigint[],
            %(partition)s::int[], %(kafka_offset)s::bigint[])
     AS v(event_id, key, seq, amount, partition, kafka_offset)
"""

GET_STATE_SQL: LiteralString = """
SELECT key, version, total, event_count, last_seq
FROM key_state
WHERE key = %(key)s
"""


# ---------------------------------------------------------------------------
# pure planning
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    """A key_state row as read."""

    version: int
    total: int
    event_count: int
    last_seq: int


@dataclass(frozen=True)
class KeyPlan:
    """The write planned for one key: the absolute new values and the version it must still have."""

    key: str
    expected_version: int | None  # None: key did not exist -> INSERT
    new_version: int
    total: int
    event_count: int
    last_seq: int
    delta_total: int
    delta_count: int


def by_offset(events: Iterable[EventRecord]) -> list[EventRecord]:
    """Events in log order (partition, offset); stable for equal positions."""
    return sorted(events, key=lambda e: (e.partition, e.offset))


def dedup_within_batch(events: Iterable[EventRecord]) -> list[EventRecord]:
    """Drop repeated event ids inside one batch, keeping the first occurrence (in delivery order)."""
    seen: set[str] = set()
    out: list[EventRecord] = []
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        out.append(ev)
    return out


def select_new(candidates: Sequence[EventRecord], inserted_ids: Iterable[str]) -> list[EventRecord]:
    """The candidates whose event_id the dedup INSERT returned (i.e. first time seen)."""
    inserted = set(inserted_ids)
    return [ev for ev in candidates if ev.event_id in inserted]


def touched_keys(events: Iterable[EventRecord]) -> list[str]:
    return sorted({ev.key for ev in events})


def plan_key_updates(events: Sequence[EventRecord], current: Mapping[str, KeyRow]) -> list[KeyPlan]:
    """Aggregate the new events per key, in offset order, on top of the current rows.

    total += sum(amount), event_count += n, last_seq = seq of the last event by offset,
    version += 1 (once per batch and key).  Plans are sorted by key (stable lock order)."""
    per_key: dict[str, list[EventRecord]] = {}
    for ev in by_offset(events):
        per_key.setdefault(ev.key, []).append(ev)
    plans: list[KeyPlan] = []
    for key in sorted(per_key):
        evs = per_key[key]
        delta_total = sum(e.amount for e in evs)
        delta_count = len(evs)
        row = current.get(key)
        if row is None:
            base = KeyRow(version=0, total=0, event_count=0, last_seq=0)
            expected: int | None = None
        else:
            base = row
            expected = row.version
        plans.append(
            KeyPlan(
                key=key,
                expected_version=expected,
                new_version=base.version + 1,
                total=base.total + delta_total,
                event_count=base.event_count + delta_count,
                last_seq=evs[-1].seq,
                delta_total=delta_total,
                delta_count=delta_count,
            )
        )
    return plans


def split_plans(plans: Iterable[KeyPlan]) -> tuple[list[KeyPlan], list[KeyPlan]]:
    """(updates of existing keys, inserts of new keys)."""
    updates: list[KeyPlan] = []
    inserts: list[KeyPlan] = []
    for p in plans:
        (inserts if p.expected_version is None else updates).append(p)
    return updates, inserts


def find_conflicts(plans: Iterable[KeyPlan], returned_keys: Iterable[str]) -> list[str]:
    """Planned keys that no RETURNING clause confirmed: someone else changed (or created) them."""
    got = set(returned_keys)
    return sorted({p.key for p in plans if p.key not in got})


def commit_positions(positions: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """From (topic, partition, offset) of consumed records to the offsets to commit: max+1 per partition."""
    best: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        tp = (topic, partition)
        if offset > best.get(tp, -1):
            best[tp] = offset
    return [(t, p, o + 1) for (t, p), o in sorted(best.items())]


# ---------------------------------------------------------------------------
# parameters for the statements above
# ---------------------------------------------------------------------------


def dedup_params(events: Sequence[EventRecord]) -> dict[str, Any]:
    return {
        "event_id": [e.event_id for e in events],
        "key": [e.key for e in events],
        "seq": [e.seq for e in events],
        "partition": [e.partition for e in events],
        "kafka_offset": [e.offset for e in events],
    }


def read_state_params(keys: Sequence[str]) -> dict[str, Any]:
    return {"keys": list(keys)}


def update_params(plans: Sequence[KeyPlan]) -> dict[str, Any]:
    if any(p.expected_version is None for p in plans):
        raise ValueError("update_params: plan for a new key")
    return {
        "key": [p.key for p in plans],
        "expected_version": [p.expected_version for p in plans],
        "new_version": [p.new_version for p in plans],
        "total": [p.total for p in plans],
        "event_count": [p.event_count for p in plans],
        "last_seq": [p.last_seq for p in plans],
    }


def insert_params(plans: Sequence[KeyPlan]) -> dict[str, Any]:
    return {
        "key": [p.key for p in plans],
        "new_version": [p.new_version for p in plans],
        "total": [p.total for p in plans],
        "event_count": [p.event_count for p in plans],
        "last_seq": [p.last_seq for p in plans],
    }


def applied_log_params(events: Sequence[EventRecord], projector: str) -> dict[str, Any]:
    ordered = by_offset(events)
    return {
        "projector": projector,
        "event_id": [e.event_id for e in ordered],
        "key": [e.key for e in ordered],
        "seq": [e.seq for e in ordered],
        "amount": [e.amount for e in ordered],
        "partition": [e.partition for e in ordered],
        "kafka_offset": [e.offset for e in ordered],
    }


def rows_to_state(rows: Iterable[Sequence[Any]]) -> dict[str, KeyRow]:
    """READ_STATE_SQL rows -> {key: KeyRow}."""
    return {
        str(r[0]): KeyRow(version=int(r[1]), total=int(r[2]), event_count=int(r[3]), last_seq=int(r[4]))
        for r in rows
    }
