"""results.json against hand-made histories: every number worked out by hand in the comments.

The history (times relative to T0, one op every 10 ms):

* warmup  0.0 - 1.0 s: 100 ok ops, 5 ms each
* before  1.0 - 3.0 s: 200 ok ops, op k takes (k % 100 + 1) ms: 1, 2, ..., 100, 1, 2, ..., 100
* during  3.0 - 5.0 s: ops 0-99 ok at 1000 ms, 100-189 ok at 10 ms, 190-194 fail (2 ms),
                       195-197 unknown (50 ms), 198-199 unknown and never completed
* after   5.0 - 7.0 s: ops 0-49 ok at 300 ms, 50-199 ok at 20 ms
* a fault window from 3.0 s to 5.0 s (kill kafka-2)

Ground truth: every ok op applied except three (lost), unknown op 195 applied once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from chaos import checkers, report, truth
from chaos.checkers import AppliedRow, KafkaRecord, KeyState
from chaos.experiment import ExperimentResult, summary_markdown
from chaos.history import FaultWindow, History, Op, Outcome, PhaseMark
from chaos.report.results import (
    SCHEMA_VERSION,
    build_results,
    load_results,
    pipeline_version,
    rebuild_results,
    results_of,
)
from chaos.report.schema import Results

T0 = 1_700_000_000_000_000
MS = 1000
S = 1_000_000
LOST = ("before-10", "during-150", "after-120")
IMAGES = {"kafka": "pipeline-chaos/kafka:4.1.1-c1-aaa", "pipeline": "pipeline-chaos/pipeline:c1-abc123"}


def make_history() -> History:
    h = History(meta={"experiment": "test_handmade", "run_id": "r1", "seed": 42, "defects": [],
                      "images": dict(IMAGES), "load": {"rate": 100, "keys": 4}, "started_at_us": T0 - 5 * S})
    for name, at in (("warmup", 0), ("before", 1 * S), ("during", 3 * S), ("after", 5 * S)):
        h.phases.append(PhaseMark(name, T0 + at))
    seq: dict[str, int] = defaultdict(int)
    n = 0

    def add(phase: str, i: int, start_s: float, lat_ms: float | None, outcome: Outcome = Outcome.OK) -> None:
        nonlocal n
        key = f"k{n % 4}"
        n += 1
        seq[key] += 1
        intended = T0 + int(start_s * S) + i * 10 * MS
        end = None if lat_ms is None else intended + int(lat_ms * MS)
        h.ops.append(Op(f"{phase}-{i}", key, seq[key], i + 1, intended, intended + 100, end, outcome, phase,
                        None if outcome == Outcome.OK else "boom"))

    for i in range(100):
        add("warmup", i, 0.0, 5)
    for k in range(200):
        add("before", k, 1.0, k % 100 + 1)
    for j in range(200):
        if j < 100:
            add("during", j, 3.0, 1000)
        elif j < 190:
            add("during", j, 3.0, 10)
        elif j < 195:
            add("during", j, 3.0, 2, Outcome.FAIL)
        elif j < 198:
            add("during", j, 3.0, 50, Outcome.UNKNOWN)
        else:
            add("during", j, 3.0, None, Outcome.UNKNOWN)
    for m in range(200):
        add("after", m, 5.0, 300 if m < 50 else 20)
    h.faults.append(FaultWindow("kill", T0 + 3 * S, T0 + 5 * S,
                                {"name": "kill", "target": "LeaderOf(partition=0)", "resolved": {"node": "kafka-2"}}))
    return h


def ground_truth(h: History) -> truth.GroundTruth:
    applied_ops = [op for op in h.ops if (op.outcome == Outcome.OK and op.id not in LOST) or op.id == "during-195"]
    rows = [AppliedRow(op.id, op.key, op.seq, op.amount, 10 * i) for i, op in enumerate(applied_ops, 1)]
    kafka = [KafkaRecord(op.id, op.key, 0, i) for i, op in enumerate(applied_ops)]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for op in applied_ops:
        t = totals[op.key]
        t[0] += op.amount
        t[1] += 1
        t[2] = op.seq
    states = {k: KeyState(k, v[0], v[1], v[1], v[2]) for k, v in totals.items()}
    return truth.GroundTruth(applied=rows, records={"events": kafka}, undecodable={}, state=states,
                             entry_topic="events")


SAMPLES = [{"t_us": T0 + 1 * S, "phase": "before", "sent": 100, "acked": 100, "errors": 0, "applied": 90,
            "consumer_lag": 7},
           {"t_us": T0 + 4 * S, "phase": "during", "sent": 400, "acked": 330, "errors": 0, "applied": 300,
            "consumer_lag": None}]


def make_result(tmp_path: Path | None = None) -> ExperimentResult:
    h = make_history()
    gt = ground_truth(h)
    verdicts = checkers.check_all(h, gt.applied, gt.kafka, gt.state)
    verdicts.append(checkers.check_convergence(T0 + 5 * S, T0 + 5 * S + 750 * MS, 60.0))
    return ExperimentResult(name="test_handmade", defects=(), history=h, truth=gt, verdicts=verdicts,
                            stats=checkers.phase_stats(h), convergence_s=0.75, wall_s=12.345,
                            artefacts=tmp_path or Path("unused"), samples=[dict(s) for s in SAMPLES])


@pytest.fixture(scope="module")
def results() -> Results:
    return results_of(make_result())


# --------------------------------------------------------------------------- identity, versions


def test_identity_seed_versions_and_schema(results: Results) -> None:
    assert results["schema"] == "pipeline-chaos/results"
    assert results["schema_version"] == SCHEMA_VERSION == 2
    assert results["experiment"] == "test_handmade"
    assert results["run_id"] == "r1"
    assert results["seed"] == 42
    assert results["defects"] == []
    assert results["wall_s"] == 12.35
    assert results["started_at_us"] == T0 - 5 * S
    assert results["started_at"] == "2023-11-14T22:13:15+00:00"
    assert results["t0_us"] == T0
    assert results["versions"]["pipeline"] == "c1-abc123"
    assert results["versions"]["images"] == IMAGES
    assert results["versions"]["suite"]
    assert results["load"] == {"rate": 100, "keys": 4}
    assert results["meta"]["seed"] == 42


@pytest.mark.parametrize(("ref", "tag"), [
    ("pipeline-chaos/pipeline:c1-f638cbe470", "c1-f638cbe470"),
    ("localhost:5000/team/pipeline:2.3.1", "2.3.1"),
    ("ghcr.io/acme/pipeline@sha256:abcd", "sha256:abcd"),
    ("acme/pipeline:1.0@sha256:abcd", "1.0@sha256:abcd"),
    ("acme/pipeline", "acme/pipeline"),
])
def test_pipeline_version_is_the_image_tag(ref: str, tag: str) -> None:
    assert pipeline_version({"pipeline": ref}) == tag
    assert pipeline_version({}) is None


# --------------------------------------------------------------------------- per phase


def test_percentiles_per_phase(results: Results) -> None:
    before = results["phases"]["before"]
    # 200 latencies 1..100 ms, each twice: nearest rank ceil(q * 200)
    assert (before["p50_ms"], before["p90_ms"], before["p99_ms"], before["max_ms"]) == (50.0, 90.0, 99.0, 100.0)
    during = results["phases"]["during"]
    # ok: 90 at 10 ms, 100 at 1000 ms -> the 95th of 190 is already 1000 ms
    assert (during["p50_ms"], during["p99_ms"], during["max_ms"]) == (1000.0, 1000.0, 1000.0)
    after = results["phases"]["after"]
    # 150 at 20 ms then 50 at 300 ms: p50 = 100th = 20 ms, p90 = 180th = 300 ms
    assert (after["p50_ms"], after["p90_ms"], after["p99_ms"]) == (20.0, 300.0, 300.0)
    assert results["phases"]["warmup"]["p99_ms"] == 5.0


def test_error_rates_and_counts_per_phase(results: Results) -> None:
    during = results["phases"]["during"]
    assert (during["ops"], during["ok"], during["fail"], during["unknown"]) == (200, 190, 5, 5)
    assert during["error_rate"] == pytest.approx(10 / 200)
    assert results["phases"]["before"]["error_rate"] == 0.0
    assert results["counts"] == {"ops": 700, "ok": 690, "fail": 5, "unknown": 5,
                                 "applied_rows": 688, "kafka_records": 688}


def test_throughput_and_windows_per_phase(results: Results) -> None:
    p = results["phases"]
    # durations from mark to mark; the last phase to its last completion (op 199 at 6.99 s + 20 ms)
    assert p["before"]["duration_s"] == pytest.approx(2.0)
    assert p["before"]["throughput_ok_per_s"] == pytest.approx(100.0)
    assert p["during"]["throughput_ok_per_s"] == pytest.approx(190 / 2.0)
    assert p["during"]["offered_per_s"] == pytest.approx(200 / 2.0)
    assert p["after"]["duration_s"] == pytest.approx(2.01)
    assert p["after"]["throughput_ok_per_s"] == pytest.approx(200 / 2.01)
    assert (p["during"]["start_s"], p["during"]["end_s"]) == (3.0, 5.0)
    assert (p["after"]["start_s"], p["after"]["end_s"]) == (5.0, 7.01)
    assert p["warmup"]["start_us"] == T0


def test_throughput_over_the_run(results: Results) -> None:
    t = results["throughput"]
    # acks per whole second by completion: [0,1) 100; [1,2) 91; [2,3) 100; [3,4) 9 (the tail of
    # "before": the 1000 ms ops of "during" complete in [4,5)); [4,5) 190; [5,6) 99
    assert t["min_ok_per_s"] == 9
    assert t["min_ok_at_s"] == 3.0
    assert t["max_ok_per_s"] == 190
    assert t["offered_per_s"] == pytest.approx(700 / 6.99)
    assert t["ok_per_s"] == pytest.approx(690 / 7.01)


# --------------------------------------------------------------------------- faults and recovery


def test_fault_windows(results: Results) -> None:
    (f,) = results["faults"]
    assert f["name"] == "kill"
    assert f["target"] == "LeaderOf(partition=0)"
    assert f["resolved"] == {"node": "kafka-2"}
    assert (f["start_us"], f["end_us"]) == (T0 + 3 * S, T0 + 5 * S)
    assert (f["start_s"], f["end_s"], f["duration_s"]) == (3.0, 5.0, 2.0)


def test_convergence_and_availability_recovery(results: Results) -> None:
    rec = results["recovery"]
    assert rec["heal_us"] == T0 + 5 * S
    assert rec["convergence_s"] == results["convergence_s"] == 0.75
    assert rec["convergence_bound_s"] == 60.0
    # normal: p99 <= max(2 x 99, 99 + 100) ms and no error. 1 s windows from the injection at 3 s:
    # [3,4) 1000 ms, [4,5) errors, [5,6) 300 ms, [6,7) 20 ms: normal again from 6 s, 1 s after the heal
    assert rec["normal_p99_ms"] == 199.0
    assert rec["availability_recovered_s"] == 1.0
    assert rec["availability_recovered_since_inject_s"] == 3.0


def test_recovery_is_null_when_never_normal_and_empty_without_fault() -> None:
    h = make_history()
    h.ops = [op for op in h.ops if not (op.phase == "after" and op.id != "after-0")]  # ends on a 300 ms op
    r = build_results(h, verdicts=[], convergence_s=None)
    assert r["recovery"]["availability_recovered_s"] is None
    assert r["recovery"]["convergence_s"] is None
    h.faults.clear()
    r = build_results(h, verdicts=[])
    assert r["faults"] == []
    assert r["recovery"]["heal_us"] is None and r["recovery"]["availability_recovered_s"] is None


def test_an_unhealed_fault_has_no_end_and_no_recovery() -> None:
    h = make_history()
    h.faults[0] = FaultWindow("kill", T0 + 3 * S, None, {})
    r = build_results(h, verdicts=[])
    assert r["faults"][0]["end_s"] is None and r["faults"][0]["duration_s"] is None
    assert r["recovery"]["heal_us"] is None


# --------------------------------------------------------------------------- verdicts and samples


def test_verdicts_keep_counts_and_examples(results: Results) -> None:
    assert results["ok"] is False
    assert results["failed"] == ["lost"]
    lost = next(v for v in results["verdicts"] if v["name"] == "lost")
    assert lost["counts"]["lost"] == 3
    assert lost["counts"]["acknowledged"] == 690
    assert {ex["id"] for ex in lost["examples"]} == set(LOST)
    conv = next(v for v in results["verdicts"] if v["name"] == "convergence")
    assert conv["ok"] and conv["counts"]["convergence_s"] == 0.75


def test_samples_get_relative_times(results: Results) -> None:
    assert [s["t_s"] for s in results["samples"]] == [1.0, 4.0]
    assert results["samples"][0]["consumer_lag"] == 7


def test_results_are_json_and_to_dict_is_the_same_document(results: Results) -> None:
    text = json.dumps(results)
    assert json.loads(text)["phases"]["before"]["p99_ms"] == 99.0
    again = make_result().to_dict()
    assert again["phases"] == results["phases"] and again["recovery"] == results["recovery"]


def test_rebuild_from_a_schema_1_document_recomputes_the_figures(results: Mapping[str, Any]) -> None:
    v1: Results = {"experiment": "test_handmade", "defects": [], "ok": False, "wall_s": 12.35, "convergence_s": 0.75,
          "faults": [], "phases": {}, "verdicts": results["verdicts"],
          "counts": {"ops": 700, "applied_rows": 688, "kafka_records": 688}, "meta": {}}
    r: Mapping[str, Any] = rebuild_results(v1, make_history())
    assert r["schema_version"] == SCHEMA_VERSION
    for key in ("phases", "throughput", "faults", "recovery", "counts", "failed", "versions"):
        if key == "versions":
            assert r[key]["pipeline"] == results[key]["pipeline"]
        else:
            assert r[key] == results[key], key


# --------------------------------------------------------------------------- files


def test_write_experiment_writes_every_artefact(tmp_path: Path) -> None:
    result = make_result(tmp_path)
    doc = report.write_experiment(result, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"history.jsonl", "results.json", "report.html", "summary.md"}
    assert load_results(tmp_path) == json.loads(json.dumps(doc))
    assert History.read_jsonl(tmp_path / "history.jsonl") == result.history
    md = (tmp_path / "summary.md").read_text()
    assert md == summary_markdown(result)
    assert "❌ FAIL `test_handmade` (failed: lost)" in md
    assert "| during | 200 | 5% | 95.0 | 1,000 |" in md
    assert "convergence **0.75 s** after heal (bound 60 s)" in md
    assert "fault **kill kafka-2** at 3.00 s for 2.00 s" in md
    assert "<details><summary>lost: examples</summary>" in md


def test_render_folder_rebuilds_page_and_results(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    report.write_experiment(make_result(src), src)
    (src / "report.html").unlink()
    page = report.render_folder(src, dest)
    assert page == dest / "report.html" and page.stat().st_size > 10_000
    assert load_results(dest)["phases"] == load_results(src)["phases"]


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not a readable results.json"),
    ('{"a": 1}', "no 'phases' and 'verdicts'"),
    ('{"phases": {}, "verdicts": [], "schema_version": 99}', "newer than this suite understands"),
])
def test_load_results_rejects_bad_files_with_one_clear_message(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "results.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_results(p)
    with pytest.raises(ValueError, match="no such file"):
        load_results(tmp_path / "missing.json")


def test_junit_properties_carry_the_key_figures(results: Results) -> None:
    props = dict(report.junit_properties(results, "chaos."))
    assert props["chaos.ok"] == "false"
    assert props["chaos.failed"] == "lost"
    assert "lost=FAIL" in props["chaos.verdicts"] and "convergence=pass" in props["chaos.verdicts"]
    assert props["chaos.during.p99_ms"] == "1000"
    assert props["chaos.before.p50_ms"] == "50"
    assert props["chaos.during.error_rate"] == "0.05"
    assert props["chaos.during.ok_per_s"] == "95"
    assert props["chaos.convergence_s"] == "0.750"
    assert props["chaos.availability_recovered_s"] == "1.000"
    assert props["chaos.seed"] == "42"
    assert props["chaos.pipeline"] == "c1-abc123"


# --------------------------------------------------------------------------- the document's type

ROOT = Path(__file__).resolve().parents[2]
READER = ("from chaos.report.fmt import fmt_ms\nfrom chaos.report.schema import Results\n\n\n"
          "def read(r: Results) -> object:\n    return {}\n")
# module name -> (what the reader returns, the error mypy must report; None: none)
READS: dict[str, tuple[str, str | None]] = {
    "reads_right_keys": ('[r["phases"]["during"]["p99_ms"], r["verdicts"][0]["name"], '
                         'fmt_ms((r.get("recovery") or {}).get("convergence_s"))]', None),
    "reads_misspelt_key": ('r["phasez"]', 'TypedDict "Results" has no key "phasez"'),
    "reads_misspelt_phase_figure": ('r["phases"]["during"]["p99_msx"]',
                                    'TypedDict "PhaseFigures" has no key "p99_msx"'),
    "reads_misspelt_verdict_key": ('r["verdicts"][0]["nmae"]', 'TypedDict "VerdictRecord" has no key "nmae"'),
    # .get() of an unknown key is no error to mypy (the value is an ``object``), so the readers hand what they
    # read to typed code, such as the fmt_* helpers: then the misspelt key is one
    "reads_misspelt_key_with_get": ('fmt_ms((r.get("recovery") or {}).get("convergence_sx"))',
                                    'Argument 1 to "fmt_ms" has incompatible type "object"'),
}


def test_mypy_reports_a_misspelt_key_of_the_results_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The readers of results.json are type-checked against chaos.report.schema: a misspelt key is a mypy
    error, not a KeyError (or a silent None) at run time. One mypy run, a few seconds with an empty cache."""
    from mypy import api

    for module, (expr, _) in READS.items():
        (tmp_path / f"{module}.py").write_text(READER.format(expr))
    monkeypatch.chdir(ROOT)  # where mypy finds the chaos package and this repository's configuration
    out, err, _status = api.run([*(str(tmp_path / f"{m}.py") for m in READS),
                                 "--config-file", str(ROOT / "pyproject.toml"),
                                 "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary"])
    for module, (_, expected) in READS.items():
        errors = [line for line in out.splitlines() if line.startswith(str(tmp_path / f"{module}.py:"))
                  and ": error:" in line]
        if expected is None:
            assert errors == [], out + err
        else:
            assert len(errors) == 1 and expected in errors[0], out + err
