"""``python -m chaos.report compare`` on hand-made results: deltas, thresholds, noise floors, verdict
changes, pairing (runs, single experiments, variants) and exit codes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chaos import report
from chaos.report.__main__ import main as cli
from chaos.report.compare import Floors, base_name, compare_pair, main
from chaos.report.schema import PhaseFigures, Results
from tests.unit.test_report import make_result

VERDICTS = ("lost", "duplicates", "order", "convergence")


def res(name: str = "test_x", *, defects: tuple[str, ...] = (), p50: float = 10.0, p99: float = 40.0,
        during_p99: float = 500.0, during_err: float = 0.05, ok_per_s: float = 200.0,
        convergence: float | None = 0.5, failed: tuple[str, ...] = (), fault: bool = True) -> Results:
    def phase(p99_ms: float, err: float = 0.0) -> PhaseFigures:
        return {"ops": 1000, "ok": 1000, "fail": 0, "unknown": 0, "error_rate": err, "p50_ms": p50,
                "p99_ms": p99_ms, "throughput_ok_per_s": ok_per_s}

    return {
        "schema_version": 2, "experiment": name, "defects": list(defects), "ok": not failed,
        "failed": list(failed),
        "phases": {"warmup": phase(900.0), "before": phase(p99), "during": phase(during_p99, during_err),
                   "after": phase(p99)},
        "verdicts": [{"name": v, "ok": v not in failed, "message": f"{v} {'FAIL' if v in failed else 'ok'}",
                      "counts": {}, "examples": []} for v in VERDICTS],
        "faults": [{"name": "kill"}] if fault else [],
        "recovery": {"convergence_s": convergence, "availability_recovered_s": 1.0},
        "convergence_s": convergence,
    }


def write(folder: Path, r: Results) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(r))
    return folder


def deltas(a: Results, b: Results, **kw: Any) -> dict[tuple[str, str], Any]:
    return {(d.phase, d.metric): d for d in compare_pair("x", a, b, **kw).deltas}


# --------------------------------------------------------------------------- the rule


def test_identical_results_have_no_regression() -> None:
    pr = compare_pair("x", res(), res())
    assert pr.regressions == 0 and not pr.verdicts
    d = deltas(res(), res())[("during", "p99 ms")]
    assert (d.a, d.b, d.abs, d.rel) == (500.0, 500.0, 0.0, 0.0)


def test_the_issue_example_is_an_improvement_one_way_and_a_regression_the_other() -> None:
    # "p99 during a leader kill fell from 500 ms to 350 ms, errors from 5% to 3.75%"
    old, new = res(during_p99=500, during_err=0.05), res(during_p99=350, during_err=0.0375)
    better = deltas(old, new)
    assert better[("during", "p99 ms")].abs == -150 and better[("during", "p99 ms")].rel == pytest.approx(-0.3)
    assert better[("during", "p99 ms")].improvement and not better[("during", "p99 ms")].regression
    assert better[("during", "error rate")].abs == pytest.approx(-0.0125)
    assert better[("during", "error rate")].improvement
    worse = deltas(new, old)
    assert worse[("during", "p99 ms")].regression  # +150 ms, +43%
    assert worse[("during", "error rate")].regression  # +1.25 pp, +33%
    assert compare_pair("x", new, old).regressions == 2


def test_changes_below_the_threshold_or_the_noise_floor_are_not_regressions() -> None:
    d = deltas(res(during_p99=500), res(during_p99=590))  # +18%: below 20%
    assert not d[("during", "p99 ms")].regression
    d = deltas(res(p99=20), res(p99=36))  # +80% but +16 ms: noise on these machines
    assert not d[("before", "p99 ms")].regression and not d[("after", "p99 ms")].regression
    d = deltas(res(p99=20), res(p99=36), floors=Floors(latency_ms=10))
    assert d[("before", "p99 ms")].regression
    d = deltas(res(during_p99=500), res(during_p99=590), threshold=0.1)
    assert d[("during", "p99 ms")].regression


def test_an_error_rate_from_zero_is_judged_by_its_floor() -> None:
    d = deltas(res(during_err=0.0), res(during_err=0.004))
    assert d[("during", "error rate")].rel is None and not d[("during", "error rate")].regression
    d = deltas(res(during_err=0.0), res(during_err=0.02))
    assert d[("during", "error rate")].regression


def test_lower_throughput_is_worse_and_higher_is_better() -> None:
    d = deltas(res(ok_per_s=200), res(ok_per_s=150))
    assert d[("during", "ok/s")].regression and d[("during", "ok/s")].rel == pytest.approx(-0.25)
    d = deltas(res(ok_per_s=150), res(ok_per_s=200))
    assert d[("during", "ok/s")].improvement and not d[("during", "ok/s")].regression


def test_warmup_is_not_compared_unless_asked() -> None:
    assert not any(p == "warmup" for p, _ in deltas(res(), res()))
    assert ("warmup", "p99 ms") in deltas(res(), res(), phases=["warmup"])


def test_a_verdict_that_passed_and_now_fails_is_always_a_regression() -> None:
    pr = compare_pair("x", res(), res(failed=("lost",)))
    (v,) = pr.verdicts
    assert (v.name, v.a_ok, v.b_ok, v.regression) == ("lost", True, False, True)
    assert pr.regressions == 1
    back = compare_pair("x", res(failed=("lost",)), res())
    assert back.regressions == 0 and back.verdicts[0].b_ok is True
    still = compare_pair("x", res(failed=("lost",)), res(failed=("lost",)))
    assert still.regressions == 0 and not still.verdicts


def test_never_converging_is_a_regression_and_converging_again_is_not() -> None:
    d = deltas(res(convergence=0.5), res(convergence=None))[("", "convergence s")]
    assert d.regression and d.note == "B never converged"
    d = deltas(res(convergence=None), res(convergence=0.5))[("", "convergence s")]
    assert d.improvement and not d.regression
    d = deltas(res(convergence=0.5), res(convergence=1.2))[("", "convergence s")]
    assert not d.regression  # +0.7 s: below the 1 s floor
    d = deltas(res(convergence=0.5), res(convergence=5.0))[("", "convergence s")]
    assert d.regression
    assert ("", "convergence s") not in deltas(res(fault=False), res(fault=False))


def test_base_name_strips_the_defect_suffix() -> None:
    assert base_name("test_x-commit_before_write", ["commit_before_write"]) == "test_x"
    assert base_name("test_x-rep2-acks1+no_dedup", ["acks1", "no_dedup"]) == "test_x-rep2"
    assert base_name("test_x", []) == "test_x"


# --------------------------------------------------------------------------- the command


def test_two_runs_of_the_same_pipeline_report_no_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    for run, jitter in (("run1", 0.0), ("run2", 12.0)):
        write(tmp_path / run / "test_x", res(p99=40 + jitter))
        write(tmp_path / run / "test_y", res("test_y", during_p99=3800 - 10 * jitter))
    assert main([str(tmp_path / "run1"), str(tmp_path / "run2")]) == 0
    out = capsys.readouterr().out
    assert "== test_x: A PASS -> B PASS" in out and "== test_y" in out
    assert "RESULT: no regression: 0 regressions in 0 of 2 compared experiments" in out


def test_a_regressed_run_exits_1_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a" / "test_x", res(during_p99=350))
    write(tmp_path / "b" / "test_x", res(during_p99=500, failed=("lost",)))
    write(tmp_path / "a" / "test_gone", res("test_gone"))
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "lost" in out and "pass  FAIL  REGRESSION" in out
    line = next(li for li in out.splitlines() if li.strip().startswith("p99 ms") and "500" in li)
    assert "+150" in line and "+43%" in line and line.rstrip().endswith("REGRESSION")
    assert "only in A (not compared): test_gone" in out
    assert "RESULT: REGRESSION: 2 regressions in 1 of 1 compared experiment" in out


def test_variants_in_one_run_pair_the_correct_pipeline_with_its_defects(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    write(run / "test_outage", res("test_outage", p99=44))
    write(run / "test_outage-commit_before_write",
          res("test_outage-commit_before_write", defects=("commit_before_write",), p99=303, convergence=None,
              failed=("lost", "convergence")))
    write(run / "test_other", res("test_other"))
    assert main([str(run), "--variants"]) == 1
    out = capsys.readouterr().out
    assert ("== test_outage: A PASS -> B FAIL  [B = test_outage-commit_before_write; "
            "B defects: commit_before_write]") in out
    assert "B never converged" in out
    assert "only in A (not compared): test_other" in out
    # the same two folders given directly compare the same way
    assert main([str(run / "test_outage"), str(run / "test_outage-commit_before_write" / "results.json")]) == 1


def test_markdown_and_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a", res(during_p99=350))
    b = write(tmp_path / "b", res(during_p99=500))
    summary = tmp_path / "summary.md"
    assert main([str(a), str(b), "--format", "markdown", "-o", str(summary)]) == 1
    md = capsys.readouterr().out
    assert md.startswith("## ❌ compare: 1 regression")
    assert "| during | p99 ms | 350 | 500 | +150 | +43% | **REGRESSION** |" in md
    assert summary.read_text() == md
    assert main([str(a), str(b), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["regressions"] == 1 and doc["pairs"][0]["regressions"] == 1


def test_old_results_are_brought_up_to_date_from_their_history(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "exp"
    report.write_experiment(make_result(folder), folder)
    doc = json.loads((folder / "results.json").read_text())
    v1 = {k: doc[k] for k in ("experiment", "defects", "ok", "wall_s", "convergence_s", "verdicts", "counts")}
    v1["phases"] = {k: {f: p[f] for f in ("ops", "p50_ms", "p99_ms", "error_rate", "throughput_ok_per_s")}
                    for k, p in doc["phases"].items()}
    (folder / "results.json").write_text(json.dumps(v1))  # schema 1: no recovery
    assert main([str(folder), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "latency normal s" in out and "(not recorded)" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/missing", "{tmp}/a"], "missing: no such file or folder"),
    (["{tmp}/empty", "{tmp}/a"], "neither a results.json nor a folder holding experiment folders"),
    (["{tmp}/bad", "{tmp}/a"], "not a readable results.json"),
    (["{tmp}/run", "{tmp}/other"], "nothing to compare"),
    (["{tmp}/a"], "needs two result sets"),
    (["{tmp}/a", "{tmp}/a", "--threshold", "-1"], "is not a fraction"),
    (["{tmp}/a", "--variants"], "needs experiments with defects on the B side"),
])
def test_bad_input_exits_2_with_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  args: list[str], message: str) -> None:
    write(tmp_path / "a", res())
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{")
    write(tmp_path / "run" / "test_x", res())
    write(tmp_path / "other" / "test_y", res("test_y"))
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("chaos.report compare: error: ") and message in line


def test_the_module_entry_point_dispatches_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a", res())
    b = write(tmp_path / "b", copy.deepcopy(res(failed=("order",))))
    assert cli(["compare", str(a), str(b)]) == 1
    assert cli(["compare", str(a), str(a)]) == 0
    assert cli(["render", str(tmp_path / "nothing")]) == 2
    assert "chaos.report render: error:" in capsys.readouterr().err


def test_a_check_only_b_has_is_new_and_judged_by_its_outcome(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    b = res()
    b["verdicts"].append({"name": "kafka_duplicates", "ok": True, "message": "at most once", "counts": {},
                          "examples": []})
    assert main([str(write(tmp_path / "a", res())), str(write(tmp_path / "b", b))]) == 0
    assert "kafka_duplicates     -  pass  new" in capsys.readouterr().out
    b["verdicts"][-1]["ok"] = False
    assert compare_pair("x", res(), b).regressions == 1  # failing in B is a regression, new or not
