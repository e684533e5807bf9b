"""Unit tests for chaos.history: the operation log and its JSONL format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.history import FORMAT_VERSION, FaultWindow, History, Op, Outcome, PhaseMark, Read

T0 = 1_700_000_000_000_000


def make_op(
    i: int,
    outcome: Outcome = Outcome.OK,
    phase: str = "during",
    *,
    end: int | None = 0,
    error: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> Op:
    intended = T0 + i * 1_000
    return Op(
        id=f"e-{i}",
        key=f"k-{i % 3}",
        seq=i // 3 + 1,
        amount=i * 7 - 20,
        intended_us=intended,
        start_us=intended + 50,
        end_us=None if end is None else intended + 50 + end + 2_000,
        outcome=outcome,
        phase=phase,
        error=error,
        partition=partition,
        offset=offset,
    )


def sample_history() -> History:
    h = History(meta={"run_id": "r-1", "experiment": "unit", "seed": 42, "started_at_us": T0})
    h.mark_phase("before", T0)
    h.add_op(make_op(0, phase="before", partition=2, offset=10))
    h.add_op(make_op(1, Outcome.FAIL, phase="before", error='rejected: "bad" \\ key\nline 2'))
    h.mark_phase("during", T0 + 5_000)
    h.add_fault("partition-kafka", T0 + 5_000, None, {"target": "kafka-1", "ports": [9092, 9093]})
    h.add_op(make_op(5, Outcome.UNKNOWN, error="deadline exceeded", end=None))
    h.add_op(make_op(6, Outcome.UNKNOWN, error="connection reset"))
    h.add_op(Op("é-ünïcode-✓", "ключ", 1, 0, T0 + 7_000, T0 + 7_001, T0 + 8_000, Outcome.OK, "during"))
    h.end_fault("partition-kafka", T0 + 9_000)
    h.add_fault("pause-projector", T0 + 9_500)  # never healed
    h.mark_phase("after", T0 + 10_000)
    h.add_op(make_op(10, phase="after", partition=0, offset=0))
    h.add_read(Read("k-1", T0 + 10_100, T0 + 10_150, T0 + 11_000, Outcome.OK, "after", found=True, value=7,
                    count=2, version=2))
    h.add_read(Read("k-9", T0 + 10_200, T0 + 10_250, None, Outcome.UNKNOWN, "after", error="deadline"))
    return h


def test_round_trip_preserves_everything(tmp_path: Path) -> None:
    h = sample_history()
    path = tmp_path / "history.jsonl"
    h.write_jsonl(path)
    back = History.read_jsonl(path)
    assert back == h
    assert back.meta == {"run_id": "r-1", "experiment": "unit", "seed": 42, "started_at_us": T0}
    assert back.ops == h.ops
    assert all(type(op.outcome) is Outcome for op in back.ops)
    assert back.phases == [PhaseMark("before", T0), PhaseMark("during", T0 + 5_000), PhaseMark("after", T0 + 10_000)]
    assert back.faults == [
        FaultWindow("partition-kafka", T0 + 5_000, T0 + 9_000, {"target": "kafka-1", "ports": [9092, 9093]}),
        FaultWindow("pause-projector", T0 + 9_500, None, {}),
    ]
    # writing what was read gives the same bytes
    again = tmp_path / "again.jsonl"
    back.write_jsonl(again)
    assert again.read_bytes() == path.read_bytes()


def test_file_layout_is_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    sample_history().write_jsonl(path)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert records[0] == {"type": "meta", "format": FORMAT_VERSION, "run_id": "r-1", "experiment": "unit",
                          "seed": 42, "started_at_us": T0}  # fmt: skip
    assert FORMAT_VERSION == 2
    assert {r["type"] for r in records[1:]} == {"op", "phase", "fault", "read"}
    assert records[-2] == {"type": "read", "key": "k-1", "intended": T0 + 10_100, "start": T0 + 10_150,
                           "end": T0 + 11_000, "outcome": "ok", "phase": "after", "error": None, "found": True,
                           "value": 7, "count": 2, "version": 2}  # fmt: skip
    op = next(r for r in records if r["type"] == "op")
    assert op == {
        "type": "op", "id": "e-0", "key": "k-0", "seq": 1, "amount": -20, "intended": T0,
        "start": T0 + 50, "end": T0 + 2_050, "outcome": "ok", "phase": "before", "error": None,
        "partition": 2, "offset": 10,
    }  # fmt: skip
    unknown = next(r for r in records if r.get("id") == "e-5")
    assert unknown["end"] is None and unknown["outcome"] == "unknown"
    assert {"type": "phase", "name": "during", "at": T0 + 5_000} in records


def test_reader_accepts_blank_lines_omitted_optionals_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    lines = [
        {"type": "meta", "format": 1},
        {"type": "op", "id": "a", "key": "k", "seq": 1, "amount": 3, "intended": 1, "start": 2, "end": 9,
         "outcome": "ok", "phase": "p", "new_optional_key": [1, 2]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n  \n", encoding="utf-8")
    h = History.read_jsonl(path)
    assert h.meta == {}
    assert h.ops == [Op("a", "k", 1, 3, 1, 2, 9, Outcome.OK, "p")]


def _write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


META = '{"type":"meta","format":1,"run_id":"x"}'
GOOD_OP = (
    '{"type":"op","id":"a","key":"k","seq":1,"amount":3,"intended":1,"start":2,"end":9,'
    '"outcome":"ok","phase":"p","error":null,"partition":null,"offset":null}'
)


@pytest.mark.parametrize(
    ("bad_line", "fragment"),
    [
        # truncated JSON, e.g. a crash mid-write
        ('{"type":"op","id":"b", "key":', "invalid JSON (Expecting value at column 30)"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type":"op"} trailing', "unexpected data"),
        ("not json at all", "invalid JSON (Expecting value at column 1)"),
        (GOOD_OP.replace('"seq":1', '"seq":"1"'), "'seq' must be an integer"),
        (GOOD_OP.replace('"end":9', '"end":9.5'), "'end' must be an integer or null"),
        (GOOD_OP.replace('"outcome":"ok"', '"outcome":"maybe"'), "'outcome' must be one of"),
        (GOOD_OP.replace('"id":"a",', ""), "missing field 'id'"),
        ('{"type":"snapshot","at":1}', "unknown record type 'snapshot'"),
        ('{"type":"phase","name":"x"}', "missing field 'at'"),
        ('{"type":"fault","name":"x","start":"soon"}', "fault record needs"),
        ('{"type":"meta","format":1}', "a second meta record"),
    ],
)
def test_malformed_line_is_rejected_naming_its_line(tmp_path: Path, bad_line: str, fragment: str) -> None:
    path = _write_lines(tmp_path / "h.jsonl", META, GOOD_OP, bad_line, GOOD_OP)
    with pytest.raises(ValueError, match=r"line 3\b") as info:
        History.read_jsonl(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_format_1_reads_as_a_history_without_reads(tmp_path: Path) -> None:
    h = History.read_jsonl(_write_lines(tmp_path / "h.jsonl", META, GOOD_OP))
    assert len(h.ops) == 1 and h.reads == []


def test_a_malformed_read_record_is_rejected_naming_its_line(tmp_path: Path) -> None:
    bad = '{"type":"read","key":"k","intended":1,"start":2,"end":3,"outcome":"ok","phase":"p","count":"9"}'
    with pytest.raises(ValueError, match=r"line 3: read record needs"):
        History.read_jsonl(_write_lines(tmp_path / "h.jsonl", META, GOOD_OP, bad))


@pytest.mark.parametrize("fmt", ["3", "0", '"1"', "null", "1.0"])
def test_unknown_format_version_is_rejected(tmp_path: Path, fmt: str) -> None:
    path = _write_lines(tmp_path / "h.jsonl", f'{{"type":"meta","format":{fmt}}}', GOOD_OP)
    with pytest.raises(ValueError, match=r"line 1: unsupported history format"):
        History.read_jsonl(path)


def test_missing_format_and_meta_not_first_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"line 1: unsupported history format None"):
        History.read_jsonl(_write_lines(tmp_path / "a.jsonl", '{"type":"meta"}'))
    with pytest.raises(ValueError, match=r"line 1: the first record must be the meta record"):
        History.read_jsonl(_write_lines(tmp_path / "b.jsonl", GOOD_OP, META))
    with pytest.raises(ValueError, match=r"line 2: the first record must be the meta record"):
        History.read_jsonl(_write_lines(tmp_path / "c.jsonl", "", '{"type":"phase","name":"x","at":1}'))
    with pytest.raises(ValueError, match=r"line 1: empty history file"):
        History.read_jsonl(_write_lines(tmp_path / "d.jsonl"))


def test_writer_rejects_values_the_format_cannot_hold(tmp_path: Path) -> None:
    bad_seq = Op("a", "k", 1.5, 3, 1, 2, 9, Outcome.OK, "p")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"op #0"):
        History(ops=[bad_seq]).write_jsonl(tmp_path / "a.jsonl")
    bad_outcome = Op("a", "k", 1, 3, 1, 2, 9, "maybe", "p")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"op #1"):
        History(ops=[make_op(0), bad_outcome]).write_jsonl(tmp_path / "b.jsonl")
    with pytest.raises(ValueError, match=r"reserved"):
        History(meta={"format": 3}).write_jsonl(tmp_path / "c.jsonl")


def test_plain_string_outcomes_are_written_as_outcomes(tmp_path: Path) -> None:
    op = Op("a", "k", 1, 3, 1, 2, 9, "unknown", "p")  # type: ignore[arg-type]
    History(ops=[op]).write_jsonl(tmp_path / "h.jsonl")
    assert History.read_jsonl(tmp_path / "h.jsonl").ops[0].outcome is Outcome.UNKNOWN


def test_op_latency_is_measured_from_the_intended_start() -> None:
    op = Op("a", "k", 1, 3, intended_us=1_000, start_us=4_000, end_us=9_000, outcome=Outcome.OK, phase="p")
    assert op.latency_us == 8_000
    assert make_op(1, Outcome.UNKNOWN, end=None).latency_us is None


def test_queries() -> None:
    h = sample_history()
    h.add_op(make_op(20, phase="cooldown"))  # a phase that was never marked
    assert [op.id for op in h.acknowledged()] == ["e-0", "é-ünïcode-✓", "e-10", "e-20"]
    assert [op.id for op in h.ops_by_outcome(Outcome.FAIL)] == ["e-1"]
    assert [op.id for op in h.ops_by_outcome("unknown")] == ["e-5", "e-6"]
    assert h.phase_names() == ["before", "during", "after", "cooldown"]
    assert [op.id for op in h.ops_in_phase("during")] == ["e-5", "e-6", "é-ünïcode-✓"]
    assert h.ops_in_phase("nope") == []
    assert h.current_phase == "after"
    assert h.phase_at(T0 - 1) is None
    assert h.phase_at(T0) == "before"
    assert h.phase_at(T0 + 5_000) == "during"
    assert h.phase_at(T0 + 10**9) == "after"
    assert len(h.ops) == 7
    assert "7 ops" in repr(h)


def test_phase_marks_tolerate_a_clock_step_and_faults_must_be_open_to_end() -> None:
    h = History()
    assert h.current_phase is None
    h.mark_phase("before", 10)
    h.mark_phase("during", 5)  # the wall clock stepped back: kept, not fatal
    assert h.current_phase == "during"
    assert h.phase_at(7) == "during" and h.phase_at(12) == "before"
    with pytest.raises(ValueError, match="no open fault window"):
        h.end_fault("kill-broker", 20)
    h.add_fault("kill-broker", 10, detail={"broker": 2})
    assert h.end_fault("kill-broker", 20) == FaultWindow("kill-broker", 10, 20, {"broker": 2})
    with pytest.raises(ValueError, match="no open fault window"):
        h.end_fault("kill-broker", 30)


def test_large_round_trip_is_reasonably_fast(tmp_path: Path) -> None:
    h = History(meta={"run_id": "big"})
    h.ops.extend(make_op(i, (Outcome.OK, Outcome.FAIL, Outcome.UNKNOWN)[i % 3]) for i in range(20_000))
    h.write_jsonl(tmp_path / "big.jsonl")
    assert History.read_jsonl(tmp_path / "big.jsonl") == h
