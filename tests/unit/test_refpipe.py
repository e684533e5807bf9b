"""Unit tests for the reference pipeline's pure parts (settings, defects, record format, batch planning)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system_under_test.refpipe import db
from system_under_test.refpipe.settings import (
    ALL_DEFECTS,
    INGEST_DEFECTS,
    PROJECTOR_DEFECTS,
    ConfigError,
    consumer_config,
    load_ingest_settings,
    load_or_exit,
    load_projector_settings,
    parse_defects,
    producer_config,
)

BASE_ENV = {"KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092", "PG_DSN": "postgresql://u:p@pg:5432/db"}


def ev(event_id: str, key: str, seq: int, amount: int, partition: int = 0, offset: int = 0) -> db.EventRecord:
    return db.EventRecord(
        event_id=event_id, key=key, seq=seq, amount=amount, partition=partition, offset=offset
    )


# ---------------------------------------------------------------------------
# defects
# ---------------------------------------------------------------------------


def test_defect_catalogue() -> None:
    assert set(INGEST_DEFECTS) == {"acks1", "acks0", "no_idempotence", "guessed_partition", "ack_on_send",
                                   "cached_reads"}
    assert set(PROJECTOR_DEFECTS) == {
        "commit_before_write",
        "auto_commit",
        "no_dedup",
        "no_conflict_retry",
        "stale_read",
        "unchecked_version",
    }
    assert set(ALL_DEFECTS) == set(INGEST_DEFECTS) | set(PROJECTOR_DEFECTS)


@pytest.mark.parametrize("raw", [None, "", " ", ",", " , ,"])
def test_parse_defects_empty(raw: str | None) -> None:
    assert parse_defects(raw) == frozenset()


def test_parse_defects_list() -> None:
    assert parse_defects(" no_dedup , ACKS1,no_dedup,") == {"no_dedup", "acks1"}


def test_unknown_defect_lists_accepted_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse_defects("no_dedup,turbo_mode")
    msg = str(info.value)
    assert "turbo_mode" in msg
    for name in ALL_DEFECTS:
        assert name in msg


@pytest.mark.parametrize("raw", ["acks0,acks1", "auto_commit,commit_before_write"])
def test_exclusive_defects(raw: str) -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        parse_defects(raw)


def test_unknown_defect_is_startup_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_or_exit(load_projector_settings, {**BASE_ENV, "PIPELINE_DEFECTS": "bogus"})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "bogus" in err and "stale_read" in err and "acks0" in err


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------


def test_ingest_defaults() -> None:
    s = load_ingest_settings(BASE_ENV)
    assert s.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert s.kafka_topic == "events"
    assert s.pg_schema == "public"
    assert s.metrics_port == 9100
    assert s.log_level == "INFO"
    assert s.listen == "0.0.0.0:50051"
    assert (s.delivery_timeout_ms, s.request_timeout_ms, s.linger_ms) == (15000, 5000, 5)
    assert s.defects == frozenset()


def test_projector_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "host-7")
    s = load_projector_settings(BASE_ENV)
    assert s.group == "projector"
    assert s.batch_max == 500
    assert s.poll_timeout_s == pytest.approx(0.2)
    assert (s.session_timeout_ms, s.heartbeat_ms, s.max_poll_interval_ms) == (6000, 1500, 30000)
    assert s.conflict_retries == 20
    assert s.restart_backoff_s == pytest.approx(0.5)
    assert s.projector_id == "host-7"


def test_settings_overrides() -> None:
    env = {
        **BASE_ENV,
        "KAFKA_TOPIC": "ev.t-1",
        "PG_SCHEMA": "run_42",
        "LOG_LEVEL": "debug",
        "METRICS_PORT": "0",
        "PIPELINE_DEFECTS": "no_dedup,acks1",
        "KAFKA_GROUP": "g2",
        "PROJECTOR_BATCH_MAX": "50",
        "PROJECTOR_POLL_TIMEOUT_S": "1.5",
        "PROJECTOR_ID": "p-1",
    }
    s = load_projector_settings(env)
    assert (s.kafka_topic, s.pg_schema, s.log_level, s.metrics_port) == ("ev.t-1", "run_42", "DEBUG", 0)
    assert (s.group, s.batch_max, s.poll_timeout_s, s.projector_id) == ("g2", 50, 1.5, "p-1")
    assert s.active_defects == ["no_dedup"]
    assert load_ingest_settings(env).active_defects == ["acks1"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"KAFKA_BOOTSTRAP": ""}, "KAFKA_BOOTSTRAP is required"),
        ({"KAFKA_BOOTSTRAP": "kafka"}, "not host:port"),
        ({"PG_DSN": ""}, "PG_DSN is required"),
        ({"PG_DSN": "nonsense"}, "PG_DSN"),
        ({"PG_SCHEMA": "Bad-Schema"}, "PG_SCHEMA"),
        ({"KAFKA_TOPIC": "a topic"}, "KAFKA_TOPIC"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({"METRICS_PORT": "x"}, "not an integer"),
        ({"PROJECTOR_BATCH_MAX": "0"}, "PROJECTOR_BATCH_MAX"),
        ({"PROJECTOR_POLL_TIMEOUT_S": "nan"}, "PROJECTOR_POLL_TIMEOUT_S"),
        ({"PROJECTOR_CONFLICT_RETRIES": "-1"}, "PROJECTOR_CONFLICT_RETRIES"),
        ({"CONSUMER_HEARTBEAT_MS": "6000"}, "CONSUMER_HEARTBEAT_MS"),
        ({"CONSUMER_MAX_POLL_INTERVAL_MS": "1000"}, "CONSUMER_MAX_POLL_INTERVAL_MS"),
    ],
)
def test_projector_bad_values(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_projector_settings({**BASE_ENV, **overrides})


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"INGEST_LISTEN": "50051"}, "INGEST_LISTEN"),
        ({"PRODUCER_DELIVERY_TIMEOUT_MS": "10", "PRODUCER_LINGER_MS": "10"}, "PRODUCER_DELIVERY_TIMEOUT_MS"),
        ({"PRODUCER_REQUEST_TIMEOUT_MS": "soon"}, "PRODUCER_REQUEST_TIMEOUT_MS"),
    ],
)
def test_ingest_bad_values(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_ingest_settings({**BASE_ENV, **overrides})


def test_producer_config_correct() -> None:
    cfg = producer_config(load_ingest_settings({**BASE_ENV, "PRODUCER_LINGER_MS": "7"}))
    assert cfg["enable.idempotence"] is True
    assert cfg["acks"] == "all"
    assert cfg["linger.ms"] == 7
    assert cfg["delivery.timeout.ms"] == 15000
    assert cfg["request.timeout.ms"] == 5000
    assert cfg["socket.keepalive.enable"] is True
    assert "retries" not in cfg


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("acks1", {"acks": "1", "enable.idempotence": False}),
        ("acks0", {"acks": "0", "enable.idempotence": False}),
        (
            "no_idempotence",
            {"acks": "all", "enable.idempotence": False, "max.in.flight.requests.per.connection": 5},
        ),
        ("no_dedup", {"acks": "all", "enable.idempotence": True}),  # projector defect: no effect here
    ],
)
def test_producer_config_defects(defect: str, expected: dict[str, Any]) -> None:
    cfg = producer_config(load_ingest_settings({**BASE_ENV, "PIPELINE_DEFECTS": defect}))
    for k, v in expected.items():
        assert cfg[k] == v, k
    if defect == "no_idempotence":
        assert cfg["retries"] >= 1_000_000


def test_consumer_config() -> None:
    cfg = consumer_config(load_projector_settings(BASE_ENV))
    assert cfg["enable.auto.commit"] is False
    assert cfg["auto.offset.reset"] == "earliest"
    assert cfg["enable.partition.eof"] is False
    assert cfg["group.id"] == "projector"
    assert (cfg["session.timeout.ms"], cfg["heartbeat.interval.ms"], cfg["max.poll.interval.ms"]) == (
        6000,
        1500,
        30000,
    )
    auto = consumer_config(load_projector_settings({**BASE_ENV, "PIPELINE_DEFECTS": "auto_commit"}))
    assert auto["enable.auto.commit"] is True
    assert auto["auto.commit.interval.ms"] == 100


# ---------------------------------------------------------------------------
# record format
# ---------------------------------------------------------------------------


def test_encode_is_compact_json() -> None:
    raw = db.encode_value("e-1", "k", 3, -5)
    assert raw == b'{"event_id":"e-1","key":"k","seq":3,"amount":-5}'
    assert json.loads(raw) == {"event_id": "e-1", "key": "k", "seq": 3, "amount": -5}


def test_decode_roundtrip() -> None:
    rec = db.decode_record(db.encode_value("é-1", "ключ", 2**62, -(2**63)), partition=3, offset=99)
    assert rec == ev("é-1", "ключ", 2**62, -(2**63), partition=3, offset=99)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\xff\xfe",
        b"[1,2]",
        b'{"event_id":"e","key":"k","seq":1}',
        b'{"event_id":"e","key":"k","seq":"1","amount":1}',
        b'{"event_id":"e","key":"k","seq":true,"amount":1}',
        b'{"event_id":"","key":"k","seq":1,"amount":1}',
        b'{"event_id":"e","key":"","seq":1,"amount":1}',
        b'{"event_id":"e","key":"k","seq":1,"amount":9223372036854775808}',
        b'{"event_id":"e","key":"k","seq":1.5,"amount":1}',
    ],
)
def test_decode_malformed(value: bytes | None) -> None:
    with pytest.raises(db.MalformedRecord):
        db.decode_record(value, partition=0, offset=0)


def test_validate_event_fields() -> None:
    assert db.validate_event_fields("e", "k", 1, 1) is None
    assert db.validate_event_fields("", "k", 1, 1) is not None
    assert db.validate_event_fields("e", "", 1, 1) is not None
    assert db.validate_event_fields("e" * (db.MAX_ID_LEN + 1), "k", 1, 1) is not None
    assert db.validate_event_fields("e\x00", "k", 1, 1) is not None


# ---------------------------------------------------------------------------
# batch planning
# ---------------------------------------------------------------------------


def test_dedup_within_batch_keeps_first() -> None:
    a1 = ev("a", "k", 1, 10, offset=1)
    b = ev("b", "k", 2, 20, offset=2)
    a2 = ev("a", "k", 1, 10, offset=3)
    assert db.dedup_within_batch([a1, b, a2]) == [a1, b]


def test_select_new() -> None:
    evs = [ev("a", "k", 1, 1), ev("b", "k", 2, 1), ev("c", "j", 1, 1)]
    assert db.select_new(evs, iter(["c", "a"])) == [evs[0], evs[2]]
    assert db.select_new(evs, []) == []


def test_plan_new_and_existing_keys_in_offset_order() -> None:
    events = [
        ev("e3", "k1", seq=7, amount=3, partition=0, offset=12),
        ev("e1", "k1", seq=9, amount=1, partition=0, offset=10),
        ev("e2", "k2", seq=1, amount=100, partition=1, offset=5),
        ev("e4", "k1", seq=2, amount=-4, partition=0, offset=11),
    ]
    current = {"k1": db.KeyRow(version=4, total=50, event_count=5, last_seq=1)}
    plans = db.plan_key_updates(events, current)
    assert [p.key for p in plans] == ["k1", "k2"]
    k1, k2 = plans
    # offset order 10, 11, 12 -> last seq is that of offset 12 (7), not the max seq
    assert k1 == db.KeyPlan(
        key="k1",
        expected_version=4,
        new_version=5,
        total=50,
        event_count=8,
        last_seq=7,
        delta_total=0,
        delta_count=3,
    )
    assert k2 == db.KeyPlan(
        key="k2",
        expected_version=None,
        new_version=1,
        total=100,
        event_count=1,
        last_seq=1,
        delta_total=100,
        delta_count=1,
    )
    updates, inserts = db.split_plans(plans)
    assert updates == [k1] and inserts == [k2]


def test_find_conflicts() -> None:
    plans = db.plan_key_updates(
        [ev("a", "k1", 1, 1), ev("b", "k2", 1, 1, offset=1), ev("c", "k3", 1, 1, offset=2)], {}
    )
    assert db.find_conflicts(plans, ["k1", "k2", "k3"]) == []
    assert db.find_conflicts(plans, ["k2"]) == ["k1", "k3"]
    assert db.find_conflicts(plans, []) == ["k1", "k2", "k3"]
    assert db.find_conflicts([], []) == []


def test_commit_positions() -> None:
    pos = [("t", 0, 5), ("t", 1, 2), ("t", 0, 9), ("t", 0, 7), ("u", 0, 0)]
    assert db.commit_positions(pos) == [("t", 0, 10), ("t", 1, 3), ("u", 0, 1)]
    assert db.commit_positions([]) == []


def test_rows_to_state() -> None:
    assert db.rows_to_state([("k", 2, 30, 4, 9)]) == {
        "k": db.KeyRow(version=2, total=30, event_count=4, last_seq=9)
    }


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["e1", "e2", "e3", "e4", "e5", "e6"]),
        st.sampled_from(["k1", "k2", "k3"]),
        st.integers(-1000, 1000),
    ),
    max_size=30,
)


@given(events_strategy)
def test_plan_totals_property(raw: list[tuple[str, str, int]]) -> None:
    events = [ev(eid, key, seq=i, amount=amt, partition=0, offset=i) for i, (eid, key, amt) in enumerate(raw)]
    unique = db.dedup_within_batch(events)
    assert len({e.event_id for e in unique}) == len(unique)
    current = {"k1": db.KeyRow(version=3, total=10, event_count=2, last_seq=0)}
    plans = db.plan_key_updates(unique, current)
    for p in plans:
        mine = [e for e in unique if e.key == p.key]
        base = current.get(p.key, db.KeyRow(0, 0, 0, 0))
        assert p.total == base.total + sum(e.amount for e in mine)
        assert p.event_count == base.event_count + len(mine)
        assert p.new_version == base.version + 1
        assert p.last_seq == max(mine, key=lambda e: e.offset).seq
    assert sum(p.delta_count for p in plans) == len(unique)


# ---------------------------------------------------------------------------
# SQL and parameters agree
# ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _names(query: str) -> set[str]:
    return set(_PLACEHOLDER.findall(query))


def test_sql_placeholders_match_params() -> None:
    events = [ev("a", "k1", 1, 5, partition=1, offset=3), ev("b", "k2", 2, 6, partition=0, offset=4)]
    plans = db.plan_key_updates(events, {"k1": db.KeyRow(1, 1, 1, 1)})
    updates, inserts = db.split_plans(plans)
    cases: list[tuple[str, dict[str, Any]]] = [
        (db.DEDUP_SQL, db.dedup_params(events)),
        (db.READ_STATE_SQL, db.read_state_params(["k1", "k2"])),
        (db.UPDATE_STATE_SQL, db.update_params(updates)),
        (db.INSERT_STATE_SQL, db.insert_params(inserts)),
        (db.STALE_UPSERT_STATE_SQL, db.insert_params(plans)),
        (db.APPLIED_LOG_SQL, db.applied_log_params(events, "proj-1")),
        (db.GET_STATE_SQL, {"key": "k1"}),
    ]
    for query, params in cases:
        assert _names(query) == set(params), query
        arrays = [v for v in params.values() if isinstance(v, list)]
        assert len({len(a) for a in arrays}) <= 1, query


def test_sql_statement_shapes() -> None:
    assert "ON CONFLICT (event_id) DO NOTHING" in db.DEDUP_SQL and "RETURNING event_id" in db.DEDUP_SQL
    assert "FOR UPDATE" not in db.READ_STATE_SQL
    assert (
        "s.version = v.expected_version" in db.UPDATE_STATE_SQL and "RETURNING s.key" in db.UPDATE_STATE_SQL
    )
    assert "ON CONFLICT (key) DO NOTHING" in db.INSERT_STATE_SQL
    assert "WHERE" not in db.STALE_UPSERT_STATE_SQL  # no version check at all


def test_update_params_rejects_new_keys() -> None:
    plans = db.plan_key_updates([ev("a", "k", 1, 1)], {})
    with pytest.raises(ValueError):
        db.update_params(plans)


def test_applied_log_params_in_log_order() -> None:
    events = [ev("b", "k", 2, 1, partition=1, offset=0), ev("a", "k", 1, 1, partition=0, offset=5)]
    p = db.applied_log_params(events, "proj")
    assert p["event_id"] == ["a", "b"]
    assert p["projector"] == "proj"


def test_schema_ddl() -> None:
    stmts = [s.as_string(None) for s in db.schema_statements("run_1")]
    joined = "\n".join(stmts)
    for table in ("processed_events", "key_state", "applied_log"):
        assert f'"run_1".{table}' in joined
    assert db.create_schema_statement("run_1").as_string(None) == 'CREATE SCHEMA IF NOT EXISTS "run_1"'
    assert db.connection_options("run_1", 2500) == "-c search_path=run_1 -c statement_timeout=2500"


def test_the_adapter_names_exactly_the_pipelines_defects() -> None:
    from system_under_test.adapter import PIPELINE

    assert {d.name for d in PIPELINE.defects if d.in_services} == set(ALL_DEFECTS)


@pytest.mark.parametrize(("key", "java"), [("21", -973932308), ("foobar", -790332482),
                                           ("a-little-bit-long-string", -985981536), ("abc", 479470107)])
def test_guessed_partition_is_javas_murmur2(key: str, java: int) -> None:
    from system_under_test.refpipe.settings import murmur2_partition

    assert murmur2_partition(key.encode(), 6) == (java & 0x7FFFFFFF) % 6  # Kafka's own test vectors
