"""Unit tests for chaos.checkers: each checker on small hand-made histories, plus properties."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers import (
    MAX_EXAMPLES,
    AppliedRow,
    Budget,
    KafkaRecord,
    KeyState,
    PhaseStats,
    Verdict,
    assert_verdicts,
    check_all,
    check_availability,
    check_conservation,
    check_convergence,
    check_duplicates,
    check_kafka_duplicates,
    check_lost,
    check_order,
    check_phantoms,
    check_positions,
    check_unknowns,
    format_verdicts,
    phase_stats,
)
from chaos.history import History, Op, Outcome

OK, FAIL, UNKNOWN = Outcome.OK, Outcome.FAIL, Outcome.UNKNOWN


# --------------------------------------------------------------------------- helpers


def op(
    id_: str,
    start: int,
    end: int | None,
    outcome: Outcome = OK,
    *,
    key: str = "k",
    seq: int = 1,
    amount: int = 10,
    phase: str = "during",
    intended: int | None = None,
) -> Op:
    return Op(id_, key, seq, amount, start if intended is None else intended, start, end, outcome, phase)


def hist(*ops: Op) -> History:
    return History(meta={"run_id": "unit"}, ops=ops)


def rows_for(h: History, applied_ids: Iterable[str]) -> list[AppliedRow]:
    """Effects rows in application order (positions 10, 20, ...: a serial with gaps)."""
    by_id = {o.id: o for o in h.ops}
    out = []
    for n, eid in enumerate(applied_ids, 1):
        o = by_id[eid]
        out.append(AppliedRow(eid, o.key, o.seq, o.amount, 10 * n))
    return out


def kafka_for(h: History, ids: Iterable[str]) -> list[KafkaRecord]:
    by_id = {o.id: o for o in h.ops}
    return [KafkaRecord(eid, by_id[eid].key, 0, n) for n, eid in enumerate(ids)]


def states_for(rows: Sequence[AppliedRow]) -> list[KeyState]:
    """What a correct projector holds: one contribution per distinct event id."""
    agg: dict[str, list[int]] = {}
    seen: set[str] = set()
    for r in sorted(rows, key=lambda r: r.position):
        if r.event_id in seen:
            continue
        seen.add(r.event_id)
        a = agg.setdefault(r.key, [0, 0, 0])
        a[0] += r.amount
        a[1] += 1
        a[2] = r.seq or 0
    return [KeyState(k, t, n, n, last) for k, (t, n, last) in agg.items()]


def clean_case() -> tuple[History, list[AppliedRow], list[KafkaRecord], list[KeyState]]:
    """Two keys, overlapping ops, one failure, one unknown applied, one unknown not applied."""
    h = hist(
        op("a1", 0, 100, key="a", seq=1, amount=5),
        op("a2", 50, 150, key="a", seq=2, amount=7),  # concurrent with a1
        op("a3", 200, 300, key="a", seq=3, amount=-2),  # after both
        op("b1", 10, 60, key="b", seq=1, amount=100),
        op("b2", 70, 90, FAIL, key="b", seq=2, amount=1),
        op("b3", 95, 400, UNKNOWN, key="b", seq=3, amount=3),  # timed out, but applied
        op("b4", 500, None, UNKNOWN, key="b", seq=4, amount=4),  # never completed, not applied
    )
    rows = rows_for(h, ["b1", "a2", "a1", "b3", "a3"])
    return h, rows, kafka_for(h, [r.event_id for r in rows]), states_for(rows)


def names(verdicts: Iterable[Verdict]) -> list[str]:
    return [v.name for v in verdicts]


# --------------------------------------------------------------------------- clean run


def test_clean_history_passes_every_checker_with_counts() -> None:
    h, rows, kafka, states = clean_case()
    verdicts = check_all(h, rows, kafka, states)
    assert names(verdicts) == ["lost", "duplicates", "phantoms", "unknowns", "order", "conservation",
                               "kafka_duplicates"]
    assert_verdicts(verdicts)
    by = {v.name: v for v in verdicts}
    assert by["lost"].counts == {"acknowledged": 4, "lost": 0, "never_in_kafka": 0, "in_kafka_not_in_db": 0}
    assert by["duplicates"].counts["duplicated_events"] == 0
    assert by["duplicates"].counts["extra_applications"] == 0
    assert by["phantoms"].counts["phantom_events"] == 0
    assert by["phantoms"].counts["failed_but_applied"] == 0
    assert by["unknowns"].counts == {
        "unknown": 2,
        "unknown_applied": 1,
        "unknown_not_applied": 1,
        "unknown_applied_twice": 0,
    }
    assert by["order"].counts == {"keys": 2, "ops_checked": 5, "violations": 0, "violating_keys": 0}
    assert by["conservation"].counts["total_expected"] == 5 + 7 - 2 + 100 + 3
    assert by["conservation"].counts["mismatched_keys"] == 0
    for v in verdicts:
        assert v.ok and bool(v) and v.examples == [] and v.message
    # the individual checkers agree with check_all
    assert check_lost(h, rows, kafka) == by["lost"]
    assert check_duplicates(h, rows) == by["duplicates"]
    assert check_phantoms(h, rows, kafka) == by["phantoms"]
    assert check_unknowns(h, rows) == by["unknowns"]
    assert check_order(h, rows) == by["order"]
    assert check_conservation(h, rows, states) == by["conservation"]


def test_empty_everything_passes() -> None:
    assert_verdicts(check_all(History(), [], [], []))


# --------------------------------------------------------------------------- 1. lost


def test_lost_splits_never_in_kafka_from_in_kafka_not_in_db() -> None:
    h = hist(
        op("ok1", 0, 10, key="a"),
        op("gone", 1, 11, key="a", seq=2),  # acked, never reached Kafka
        op("stuck1", 2, 12, key="b"),  # acked, in Kafka, never projected
        op("stuck2", 3, 13, key="b", seq=2),
        op("maybe", 4, None, UNKNOWN, key="c"),  # unknown and absent: not a loss
    )
    rows = rows_for(h, ["ok1"])
    kafka = kafka_for(h, ["ok1", "stuck1", "stuck2"])
    v = check_lost(h, rows, kafka)
    assert not v.ok and not v
    assert v.counts == {"acknowledged": 4, "lost": 3, "never_in_kafka": 1, "in_kafka_not_in_db": 2}
    assert v.message == "3 acknowledged events lost: 1 never reached Kafka, 2 in Kafka but not in Postgres"
    kinds = {e["id"]: e["kind"] for e in v.examples}
    assert kinds == {"gone": "never_in_kafka", "stuck1": "in_kafka_not_in_db", "stuck2": "in_kafka_not_in_db"}
    stuck = next(e for e in v.examples if e["id"] == "stuck1")
    assert (stuck["key"], stuck["partition"], stuck["offset"]) == ("b", 0, 1)
    # check_all reaches the same verdict through its shared index
    assert next(x for x in check_all(h, rows, kafka, states_for(rows)) if x.name == "lost") == v


def test_lost_ignores_unknown_outcomes_whether_applied_or_not() -> None:
    h = hist(op("u1", 0, None, UNKNOWN), op("u2", 1, 5, UNKNOWN, seq=2), op("f", 2, 3, FAIL, seq=3))
    for applied in ([], ["u1"], ["u2"], ["u1", "u2"]):
        rows = rows_for(h, applied)
        v = check_lost(h, rows, kafka_for(h, applied))
        assert v.ok, v.format()
        assert v.counts["acknowledged"] == 0 and v.counts["lost"] == 0


def test_lost_examples_are_capped_and_cover_both_kinds() -> None:
    h = hist(*(op(f"e{i}", i, i + 1, seq=i) for i in range(20)))
    kafka = kafka_for(h, [f"e{i}" for i in range(0, 20, 2)])
    v = check_lost(h, [], kafka)
    assert v.counts["lost"] == 20 and v.counts["never_in_kafka"] == 10
    assert len(v.examples) == MAX_EXAMPLES
    assert {e["kind"] for e in v.examples} == {"never_in_kafka", "in_kafka_not_in_db"}


# --------------------------------------------------------------------------- 2. duplicates


def test_duplicates_reports_events_applied_more_than_once() -> None:
    h = hist(op("x", 0, 10, key="kx"), op("y", 20, 30, key="ky"), op("z", 40, 50, UNKNOWN, key="kz"))
    rows = rows_for(h, ["x", "y", "x", "z", "y", "y"])
    v = check_duplicates(h, rows)
    assert not v.ok
    assert v.counts == {
        "applications": 6,
        "distinct_events": 3,
        "duplicated_events": 2,
        "extra_applications": 3,
    }
    ex = {e["id"]: e for e in v.examples}
    assert ex["x"]["times"] == 2 and ex["x"]["positions"] == [10, 30] and ex["x"]["key"] == "kx"
    assert ex["y"]["times"] == 3 and ex["y"]["positions"] == [20, 50, 60]
    assert ex["x"]["outcome"] == "ok"
    assert v.message == "2 events applied more than once (3 extra applications)"


def test_duplicates_pass_when_unknown_applied_once() -> None:
    h = hist(op("u", 0, None, UNKNOWN), op("v", 1, 2, UNKNOWN, seq=2))
    v = check_duplicates(h, rows_for(h, ["u"]))
    assert v.ok and v.counts["duplicated_events"] == 0 and v.counts["applications"] == 1


# --------------------------------------------------------------------------- 3. phantoms


def test_phantoms_in_db_and_in_kafka() -> None:
    h = hist(op("real", 0, 10))
    rows = [*rows_for(h, ["real"]), AppliedRow("ghost", "kg", 1, 99, 30)]
    kafka = [*kafka_for(h, ["real"]), KafkaRecord("ghost", "kg", 3, 7), KafkaRecord("spook", "ks", 1, 4)]
    v = check_phantoms(h, rows, kafka)
    assert not v.ok
    assert v.counts["phantom_events"] == 2
    assert v.counts["phantom_applied"] == 1
    assert v.counts["phantom_in_kafka"] == 2
    assert v.counts["failed_but_applied"] == 0
    ex = {e["id"]: e for e in v.examples}
    assert ex["ghost"]["key"] == "kg" and ex["ghost"]["positions"] == [30] and ex["ghost"]["partition"] == 3
    assert ex["spook"]["key"] == "ks" and ex["spook"]["offset"] == 4 and "positions" not in ex["spook"]
    assert "2 phantom events" in v.message


def test_failed_but_applied_is_a_violation() -> None:
    h = hist(op("ok", 0, 10), op("nope", 1, 5, FAIL, key="kn", seq=2), op("nope2", 2, 6, FAIL, seq=3))
    rows = rows_for(h, ["ok", "nope"])
    kafka = kafka_for(h, ["ok", "nope", "nope2"])
    v = check_phantoms(h, rows, kafka)
    assert not v.ok
    assert v.counts["phantom_events"] == 0
    assert v.counts["failed"] == 2
    assert v.counts["failed_but_applied"] == 1
    assert v.counts["failed_in_kafka_not_applied"] == 1  # informational only
    (ex,) = v.examples
    assert (ex["kind"], ex["id"], ex["key"], ex["positions"]) == ("failed_but_applied", "nope", "kn", [20])
    assert "1 op reported as failed but applied anyway" in v.message


def test_phantoms_pass_with_failed_ops_in_kafka_and_unknowns_applied() -> None:
    h = hist(op("ok", 0, 10), op("f", 1, 5, FAIL, seq=2), op("u", 2, None, UNKNOWN, seq=3))
    rows = rows_for(h, ["ok", "u"])
    v = check_phantoms(h, rows, kafka_for(h, ["ok", "f", "u"]))
    assert v.ok, v.format()
    assert v.counts["failed_in_kafka_not_applied"] == 1


def test_an_id_issued_twice_is_flagged() -> None:
    h = hist(op("same", 0, 10), op("same", 20, 30, seq=2))
    rows = rows_for(h, ["same"])
    v = check_phantoms(h, rows, kafka_for(h, ["same"]))
    assert not v.ok and v.counts["issued_twice"] == 1
    assert v.examples == [{"kind": "issued_twice", "id": "same", "times": 2}]


# --------------------------------------------------------------------------- 4. unknowns


def test_unknowns_applied_once_or_not_pass() -> None:
    h = hist(op("u1", 0, None, UNKNOWN), op("u2", 1, 100, UNKNOWN, seq=2), op("u3", 2, 100, UNKNOWN, seq=3))
    v = check_unknowns(h, rows_for(h, ["u3", "u1"]))
    assert v.ok
    assert v.counts == {"unknown": 3, "unknown_applied": 2, "unknown_not_applied": 1, "unknown_applied_twice": 0}
    assert v.message == "3 unknown ops: 2 applied, 1 not applied"


def test_unknown_applied_twice_fails() -> None:
    h = hist(op("u1", 0, None, UNKNOWN, key="ku", seq=4), op("u2", 1, 100, UNKNOWN, seq=2))
    v = check_unknowns(h, rows_for(h, ["u1", "u2", "u1"]))
    assert not v.ok
    assert v.counts == {"unknown": 2, "unknown_applied": 2, "unknown_not_applied": 0, "unknown_applied_twice": 1}
    (ex,) = v.examples
    assert (ex["id"], ex["key"], ex["seq"], ex["times"], ex["positions"]) == ("u1", "ku", 4, 2, [10, 30])


# --------------------------------------------------------------------------- 5. order


def test_concurrent_ops_may_be_applied_in_either_order() -> None:
    # a: [0, 100], b: [50, 150] overlap; c starts exactly when a ends (not strictly after)
    h = hist(op("a", 0, 100, seq=1), op("b", 50, 150, seq=2), op("c", 100, 200, seq=3))
    for order in (["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"], ["b", "c", "a"]):
        v = check_order(h, rows_for(h, order))
        assert v.ok, (order, v.format())
        assert v.counts["violations"] == 0 and v.counts["ops_checked"] == 3


def test_acknowledged_before_invoked_applied_in_reverse_fails() -> None:
    h = hist(
        op("a", 0, 100, key="k1", seq=1),
        op("b", 101, 200, key="k1", seq=2),  # sent after a was acknowledged
        op("x", 0, 100, key="k2", seq=1),
        op("y", 101, 200, key="k2", seq=2),
    )
    v = check_order(h, rows_for(h, ["x", "y", "b", "a"]))
    assert not v.ok
    assert v.counts == {"keys": 2, "ops_checked": 4, "violations": 1, "violating_keys": 1}
    (ex,) = v.examples
    assert ex["key"] == "k1"
    assert ex["earlier"] == {"id": "a", "seq": 1, "position": 40, "end_us": 100}
    assert ex["later"] == {"id": "b", "seq": 2, "position": 30, "start_us": 101}
    assert "applied before an op on the same key that was acknowledged before it was sent" in v.message


def test_order_uses_real_time_not_sequence_numbers() -> None:
    # seq 2 was sent first and acknowledged before seq 1 was sent: applying 2 before 1 is right
    h = hist(op("s2", 0, 10, seq=2), op("s1", 20, 30, seq=1))
    assert check_order(h, rows_for(h, ["s2", "s1"])).ok
    assert not check_order(h, rows_for(h, ["s1", "s2"])).ok


def test_order_only_constrains_acknowledged_and_applied_ops() -> None:
    h = hist(
        op("u", 0, 10, UNKNOWN, seq=1),  # completed (timed out) before v was sent, but not acked
        op("v", 20, 30, seq=2),
        op("lost", 40, 50, seq=3),  # acked, never applied
        op("w", 60, 70, seq=4),
    )
    v = check_order(h, rows_for(h, ["w", "v", "u"]))
    # w after v: v acked at 30 < w sent at 60, but w applied first -> exactly one violation, not u's
    assert v.counts["violations"] == 1
    assert v.examples[0]["earlier"]["id"] == "v" and v.examples[0]["later"]["id"] == "w"
    assert check_order(h, rows_for(h, ["v", "w", "u"])).ok


def test_order_handles_rows_not_sorted_by_position_and_repeats() -> None:
    h = hist(op("a", 0, 10), op("b", 20, 30, seq=2))
    good = rows_for(h, ["a", "b", "a"])  # a applied again later: its first application counts
    assert check_order(h, list(reversed(good))).ok
    bad = rows_for(h, ["b", "a"])
    v = check_order(h, list(reversed(bad)))
    assert not v.ok and v.examples[0]["later"]["id"] == "b"


def test_order_counts_every_late_op_of_a_chain() -> None:
    # a1 < a2 < a3 in real time, applied a3, a2, a1: a2 and a3 are both applied too early
    h = hist(op("a1", 0, 10, seq=1), op("a2", 20, 30, seq=2), op("a3", 40, 50, seq=3))
    v = check_order(h, rows_for(h, ["a3", "a2", "a1"]))
    assert v.counts["violations"] == 2 and v.counts["violating_keys"] == 1
    assert {e["later"]["id"] for e in v.examples} == {"a2", "a3"}


# --------------------------------------------------------------------------- 6. conservation


def test_conservation_catches_a_lost_update() -> None:
    h, rows, _, states = clean_case()
    low = [KeyState(s.key, s.total - 7, s.event_count, s.version, s.last_seq) if s.key == "a" else s for s in states]
    v = check_conservation(h, rows, low)
    assert not v.ok
    assert v.counts["mismatched_keys"] == 1
    assert v.counts["total_observed"] == v.counts["total_expected"] - 7
    (ex,) = v.examples
    assert ex["key"] == "a" and ex["delta_total"] == -7 and ex["expected_total"] == 10


def test_conservation_counts_a_competing_writers_adjustments_and_catches_one_overwritten() -> None:
    h, rows, _, states = clean_case()
    adjusted = [KeyState(s.key, s.total + 500, s.event_count, s.version + 1, s.last_seq) if s.key == "a" else s
                for s in states]
    v = check_conservation(h, rows, adjusted, {"a": 500})
    assert v.ok and v.counts["adjustments_total"] == 500, v.format()
    # the sink wrote back a total computed before the adjustment: the adjustment is lost
    v = check_conservation(h, rows, states, {"a": 500})
    assert not v.ok and v.counts["mismatched_keys"] == 1
    assert v.examples[0]["key"] == "a" and v.examples[0]["delta_total"] == -500


def test_conservation_catches_a_double_apply() -> None:
    h, rows, _, _ = clean_case()
    twice = [*rows, AppliedRow("a1", "a", 1, 5, 1_000)]  # a1's effect applied a second time
    naive = [KeyState("a", 15, 4, 4, 3), KeyState("b", 103, 2, 2, 3)]  # an aggregate that counted it
    v = check_conservation(h, twice, naive)
    assert not v.ok
    (ex,) = v.examples
    assert (ex["key"], ex["expected_total"], ex["observed_total"], ex["expected_events"], ex["observed_events"]) == (
        "a",
        10,
        15,
        3,
        4,
    )
    # the aggregate deduplicated: conservation holds, but the effects table shows the duplicate
    assert check_conservation(h, twice, states_for(twice)).ok
    assert not check_duplicates(h, twice).ok


def test_conservation_missing_and_unexpected_key_state() -> None:
    h, rows, _, states = clean_case()
    only_b = [s for s in states if s.key != "a"]
    v = check_conservation(h, rows, only_b)
    assert not v.ok and v.counts["missing_key_state"] == 1
    assert v.examples[0]["key"] == "a" and v.examples[0]["problem"] == "no key state"

    extra = [*states, KeyState("zzz", 5, 1, 1, 1)]
    v = check_conservation(h, rows, extra)
    assert not v.ok and v.counts["unexpected_key_state"] == 1 and v.examples[0]["key"] == "zzz"

    zero = {s.key: s for s in [*states, KeyState("zzz", 0, 0, 0, 0)]}  # a mapping works too
    assert check_conservation(h, rows, zero).ok


def test_conservation_flags_payload_differing_from_the_history() -> None:
    h = hist(op("e", 0, 10, key="k", amount=10))
    rows = [AppliedRow("e", "k", 1, 11, 1)]
    v = check_conservation(h, rows, states_for(rows))
    assert not v.ok and v.counts["payload_mismatch"] == 1 and v.counts["mismatched_keys"] == 0
    assert v.examples[0]["sent"] == {"key": "k", "seq": 1, "amount": 10}


def test_conservation_with_unknowns_passes() -> None:
    h = hist(op("u", 0, None, UNKNOWN, amount=3), op("w", 1, 2, UNKNOWN, amount=4, seq=2))
    rows = rows_for(h, ["u"])
    v = check_conservation(h, rows, states_for(rows))
    assert v.ok and v.counts["total_expected"] == 3 and v.counts["events_expected"] == 1


# --------------------------------------------------------------------------- 7. convergence


def test_convergence() -> None:
    heal = 1_000_000_000
    v = check_convergence(heal, heal + 2_500_000, 3.0)
    assert v.ok and v.counts["convergence_s"] == 2.5
    assert check_convergence(heal, heal + 3_000_000, 3.0).ok  # the bound is inclusive
    late = check_convergence(heal, heal + 3_000_001, 3.0)
    assert not late.ok and late.counts["convergence_s"] == pytest.approx(3.000001)
    never = check_convergence(heal, None, 3.0)
    assert not never.ok and never.counts["convergence_s"] == -1
    assert "never converged" in never.message
    early = check_convergence(heal, heal - 5, 3.0)  # already consistent when healed
    assert early.ok and early.counts["convergence_s"] == 0.0


# --------------------------------------------------------------------------- 8. phase statistics


def stats_history() -> History:
    h = History()
    h.mark_phase("before", 0)
    h.add_op(op("b1", 100, 10_000, intended=0, phase="before"))  # 10 ms from intended
    h.add_op(op("b2", 500_000, 520_000, phase="before"))  # 20 ms
    h.add_op(op("b3", 600_000, 605_000, FAIL, phase="before"))
    h.mark_phase("during", 1_000_000)
    h.add_op(op("d1", 1_000_000, 1_050_000, phase="during"))  # 50 ms
    h.add_op(op("d2", 1_100_000, 2_100_000, UNKNOWN, phase="during"))
    h.add_op(op("d3", 1_200_000, None, UNKNOWN, phase="during"))
    h.add_op(op("d4", 2_000_000, 2_030_000, intended=1_999_000, phase="during"))  # 31 ms
    h.mark_phase("after", 3_000_000)
    h.add_op(op("a1", 3_000_000, 3_010_000, phase="after"))  # 10 ms
    h.add_op(op("a2", 3_500_000, 4_000_000, phase="after"))  # 500 ms, the last completion
    return h


def test_phase_stats_exact_numbers() -> None:
    st = phase_stats(stats_history())
    assert list(st) == ["before", "during", "after"]
    assert st["before"] == PhaseStats(
        name="before",
        ops=3,
        ok=2,
        fail=1,
        unknown=0,
        error_rate=1 / 3,
        duration_s=1.0,
        throughput_ok_per_s=2.0,
        p50_ms=10.0,
        p90_ms=20.0,
        p99_ms=20.0,
        p999_ms=20.0,
        max_ms=20.0,
    )
    assert st["during"] == PhaseStats("during", 4, 2, 0, 2, 0.5, 2.0, 1.0, 31.0, 50.0, 50.0, 50.0, 50.0)
    assert st["after"] == PhaseStats("after", 2, 2, 0, 0, 0.0, 1.0, 2.0, 10.0, 500.0, 500.0, 500.0, 500.0)
    d = st["during"].to_dict()
    assert d["unknown"] == 2 and d["p50_ms"] == 31.0 and d["name"] == "during"
    json.dumps(d)


def test_percentiles_are_exact_nearest_rank() -> None:
    h = History()
    h.mark_phase("p", 0)
    for i in range(1, 1001):  # latencies 1..1000 ms, shuffled
        j = (i * 7919) % 1000 + 1
        h.add_op(op(f"e{i}", 0, j * 1_000, phase="p", intended=0))
    s = phase_stats(h)["p"]
    assert (s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms) == (500.0, 900.0, 990.0, 999.0, 1000.0)
    assert s.duration_s == 1.0 and s.throughput_ok_per_s == 1000.0


def test_phase_stats_unmarked_phase_and_no_ok_ops() -> None:
    h = History(
        ops=[op("x", 5_000, 7_000, FAIL, phase="warmup", intended=4_000), op("y", 6_000, None, UNKNOWN, phase="warmup")]
    )
    s = phase_stats(h)["warmup"]
    assert (s.ops, s.ok, s.error_rate, s.duration_s, s.throughput_ok_per_s) == (2, 0, 1.0, 0.003, 0.0)
    assert s.p50_ms is None and s.max_ms is None
    h.mark_phase("empty", 10_000)
    e = phase_stats(h)["empty"]
    assert (e.ops, e.error_rate, e.duration_s, e.throughput_ok_per_s) == (0, 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- 9. availability


def test_availability_within_budget() -> None:
    budgets = {"before": Budget(max_error_rate=0.34, max_p99_ms=20.0), "during": Budget(max_error_rate=0.5)}
    v = check_availability(stats_history(), budgets)
    assert v.ok, v.format()
    assert v.counts["before.error_rate"] == pytest.approx(1 / 3)
    assert v.counts["before.p99_ms"] == 20.0
    assert v.counts["during.error_rate"] == 0.5
    assert v.counts["during.ops"] == 4


def test_availability_over_budget() -> None:
    budgets = {
        "during": Budget(max_error_rate=0.4),
        "after": Budget(max_p99_ms=100.0),
        "before": Budget(),  # no limits: always fine
        "cooldown": Budget(max_error_rate=1.0),  # no such phase
    }
    v = check_availability(stats_history(), budgets)
    assert not v.ok
    assert "during: error rate 50.00% > budget 40.00%" in v.message
    assert "after: p99 500 ms > budget 100 ms" in v.message
    assert "no operations in phase cooldown" in v.message
    assert "before" not in v.message
    assert {(e["phase"], e["metric"]) for e in v.examples} == {
        ("during", "error_rate"),
        ("after", "p99_ms"),
        ("cooldown", "ops"),
    }
    assert v.counts["after.p99_ms"] == 500.0 and v.counts["cooldown.ops"] == 0


def test_availability_p99_budget_without_ok_ops_fails() -> None:
    h = History(ops=[op("x", 0, 5, FAIL, phase="during")])
    v = check_availability(h, {"during": Budget(max_p99_ms=10.0)})
    assert not v.ok and v.counts["during.p99_ms"] == -1.0


# --------------------------------------------------------------------------- verdict reporting


def test_verdict_format_to_dict_and_assert() -> None:
    h = hist(op("gone", 0, 10, key="kk", seq=3))
    lost = check_lost(h, [], [])
    clean = check_duplicates(h, [])
    text = lost.format()
    assert (
        text.splitlines()[0]
        == "[FAIL] lost: 1 acknowledged event lost: 1 never reached Kafka, 0 in Kafka but not in Postgres"
    )
    assert "acknowledged=1" in text and "lost=1" in text
    assert "id=gone" in text and "key=kk" in text and "seq=3" in text
    assert clean.format().startswith("[PASS] duplicates:")
    d = lost.to_dict()
    assert d["name"] == "lost" and d["ok"] is False and d["examples"][0]["id"] == "gone"
    json.dumps(d)

    assert_verdicts([clean])
    with pytest.raises(AssertionError) as info:
        assert_verdicts([clean, lost])
    msg = str(info.value)
    assert msg.startswith("1 checks: 0 passed, 1 failed")
    assert "[FAIL] lost" in msg and "duplicates" not in msg
    assert format_verdicts([clean, lost]).startswith("2 checks: 1 passed, 1 failed")


def test_order_examples_format_nested_values() -> None:
    h = hist(op("a", 0, 10), op("b", 20, 30, seq=2))
    text = check_order(h, rows_for(h, ["b", "a"])).format()
    assert "earlier=(id=a seq=1 position=20 end_us=10)" in text
    assert "later=(id=b seq=2 position=10 start_us=20)" in text


# --------------------------------------------------------------------------- properties


@st.composite
def clean_runs(draw: st.DrawFn) -> tuple[History, list[AppliedRow], list[KafkaRecord], list[KeyState]]:
    """A random history with overlapping ops and a ground truth a correct pipeline could produce.

    Every op gets a linearisation point: inside [start, end] for acknowledged ops,
    at or after start for applied unknown ops; applications are ordered by it.
    """
    n_keys = draw(st.integers(1, 4))
    n_ops = draw(st.integers(0, 40))
    h = History(meta={"run_id": "prop"})
    lin: list[tuple[int, int]] = []
    seqs = [0] * n_keys
    shown: list[str] = []
    for i in range(n_ops):
        k = draw(st.integers(0, n_keys - 1))
        seqs[k] += 1
        intended = i * draw(st.integers(0, 30))
        start = intended + draw(st.integers(0, 20))
        end = start + draw(st.integers(0, 200))
        outcome = draw(st.sampled_from([OK, OK, OK, FAIL, UNKNOWN]))
        applied = outcome is OK or (outcome is UNKNOWN and draw(st.booleans()))
        if outcome is UNKNOWN and draw(st.booleans()):
            end_or_none: int | None = None
        else:
            end_or_none = end
        if applied:
            lo, hi = (start, end) if outcome is OK else (start, start + 500)
            lin.append((draw(st.integers(lo, hi)), i))
        elif draw(st.booleans()):
            shown.append(f"e{i}")  # reached Kafka but was not (yet) applied: fine for fail/unknown
        phase = ("before", "during", "after")[min(2, 3 * i // max(1, n_ops))]
        h.add_op(
            Op(f"e{i}", f"k{k}", seqs[k], draw(st.integers(-50, 50)), intended, start, end_or_none, outcome, phase)
        )
    lin.sort()
    pos = 0
    rows = []
    for _, i in lin:
        pos += draw(st.integers(1, 3))  # a serial column may have gaps
        o = h.ops[i]
        rows.append(AppliedRow(o.id, o.key, o.seq, o.amount, pos))
    kafka_ids = [r.event_id for r in rows] + shown
    by_id = {o.id: o for o in h.ops}
    kafka = [KafkaRecord(eid, by_id[eid].key, hash(eid) % 3, n) for n, eid in enumerate(kafka_ids)]
    rnd = draw(st.randoms(use_true_random=False))
    if draw(st.booleans()):
        rnd.shuffle(rows)  # the checkers must not rely on the rows being sorted
    rnd.shuffle(kafka)
    return h, rows, kafka, states_for(rows)


PROPERTY = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(clean_runs())
def test_property_clean_history_passes_check_all(
    run: tuple[History, list[AppliedRow], list[KafkaRecord], list[KeyState]],
) -> None:
    h, rows, kafka, states = run
    assert_verdicts(check_all(h, rows, kafka, states))


@PROPERTY
@given(clean_runs(), st.randoms(use_true_random=False))
def test_property_dropping_an_acknowledged_application_is_caught(
    run: tuple[History, list[AppliedRow], list[KafkaRecord], list[KeyState]],
    rnd: random.Random,
) -> None:
    h, rows, kafka, _ = run
    acked = {o.id for o in h.ops if o.outcome is OK}
    victims = [r for r in rows if r.event_id in acked]
    if not victims:
        return
    victim = rnd.choice(victims)
    rest = [r for r in rows if r is not victim]
    verdicts = {v.name: v for v in check_all(h, rest, kafka, states_for(rest))}
    assert not verdicts["lost"].ok
    assert verdicts["lost"].counts["lost"] == 1 and verdicts["lost"].counts["in_kafka_not_in_db"] == 1
    assert verdicts["lost"].examples[0]["id"] == victim.event_id
    assert all(v.ok for name, v in verdicts.items() if name != "lost")


# --------------------------------------------------------------------------- kafka duplicates


def test_kafka_duplicates_passes_once_per_id_and_fails_on_a_retried_write() -> None:
    h, _rows, kafka, _ = clean_case()
    clean = check_kafka_duplicates(h, kafka)
    assert clean.ok and clean.counts["duplicated_events"] == 0
    again = KafkaRecord(event_id=kafka[0].event_id, key=kafka[0].key, partition=kafka[0].partition,
                        offset=kafka[-1].offset + 100)
    v = check_kafka_duplicates(h, [*kafka, again])
    assert not v.ok
    assert v.counts["duplicated_events"] == 1 and v.counts["extra_records"] == 1
    assert v.examples[0]["id"] == kafka[0].event_id and v.examples[0]["times"] == 2


# --------------------------------------------------------------------------- positions


def placed(id_: str, partition: int | None, offset: int | None, outcome: Outcome = OK) -> Op:
    return Op(id_, "k", 1, 1, 0, 0, 1, outcome, "during", None, partition, offset)


def test_positions_hold_their_events() -> None:
    h = hist(placed("a", 0, 0), placed("b", 1, 0), placed("c", None, None, UNKNOWN))
    kafka = [KafkaRecord("a", "k", 0, 0), KafkaRecord("b", "k", 1, 0), KafkaRecord("c", "k", 0, 1)]
    v = check_positions(h, kafka)
    assert v.ok and v.counts["positions_checked"] == 2, v.format()


def test_a_position_that_holds_another_event_or_nothing_is_a_violation() -> None:
    # a reports b's place; b reports an offset past the end while it sits elsewhere; c is nowhere (lost's business)
    h = hist(placed("a", 1, 0), placed("b", 0, 9), placed("c", 2, 0))
    kafka = [KafkaRecord("a", "k", 0, 0), KafkaRecord("b", "k", 1, 0)]
    v = check_positions(h, kafka)
    assert not v.ok and v.counts["wrong_position"] == 2, v.format()
    kinds = {(e["id"], e["found_there"], e["actually_at"]) for e in v.examples}
    assert kinds == {("a", "b", "0@0"), ("b", None, "1@0")}


def test_an_acknowledgement_without_a_position_fails_only_where_the_contract_gives_one() -> None:
    h = hist(placed("a", None, None), placed("b", -1, -1001))
    kafka = [KafkaRecord("a", "k", 0, 0), KafkaRecord("b", "k", 0, 1)]
    assert not check_positions(h, kafka).ok
    assert check_positions(h, kafka).counts["without_position"] == 2
    assert check_positions(h, kafka, required=False).ok


def test_a_partition_without_an_offset_must_hold_the_event_somewhere_in_that_partition() -> None:
    # the producer learnt of the write as a duplicate of an earlier send: partition known, offset not
    kafka = [KafkaRecord("a", "k", 2, 7), KafkaRecord("b", "k", 0, 3)]
    v = check_positions(hist(placed("a", 2, -1), placed("b", 0, 3)), kafka)
    assert v.ok and v.counts["offset_unknown"] == 1 and v.counts["positions_checked"] == 1, v.format()
    assert "offset unknown to the producer" in v.message
    bad = check_positions(hist(placed("a", 1, -1)), kafka)
    assert not bad.ok and bad.counts["wrong_position"] == 1 and bad.examples[0]["actually_at"] == "2@7"
