"""``metrics.prom``: a run's results as OpenMetrics, parsed back with prometheus_client's own parser.

The run is the hand-made experiment of test_report.py (its figures are worked out there: p99 before 99 ms,
during 1,000 ms, after 300 ms; 5 failed and 5 unknown of 200 ops during the fault; the ``lost`` verdict
fails, every other passes; convergence 0.75 s, availability back 1 s after the heal), written to a run
folder as a session would, plus a passing experiment with a defect, a crashed one, and a detection matrix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_text_families

from chaos import report
from chaos.pytest_plugin import MATRIX_KEY, matrix_table, record_matrix
from chaos.report.__main__ import main as cli
from chaos.report.index import write_run_index
from chaos.report.metrics import METRICS_NAME, load_matrix, render_metrics, run_registry, write_run_metrics
from chaos.report.results import load_results
from chaos.report.schema import Results
from tests.unit.test_report import make_result

RUN = "0a1b2c3d4e"
BASE = {"run": RUN, "pipeline": "", "experiment": "test_handmade", "defects": ""}


def families(path: Path) -> dict[str, Metric]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n# EOF\n")
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family: Metric, **labels: str) -> dict[tuple[str, ...], float]:
    """The family's samples matching ``labels``, keyed by their other labels' values (sorted by name)."""
    out: dict[tuple[str, ...], float] = {}
    for s in family.samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            key = tuple(v for k, v in sorted(s.labels.items()) if k not in labels)
            assert key not in out, f"two samples of {family.name} with labels {s.labels}"
            out[key] = s.value
    return out


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Results]:
    run = tmp_path_factory.mktemp("reports") / RUN
    results = report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    write_run_index(run, step_summary="")  # where a session writes the run's pages, and the metrics with them
    return run, results


def test_one_sample_per_verdict_with_its_outcome(handmade: tuple[Path, Results]) -> None:
    run, results = handmade
    fams = families(run / METRICS_NAME)
    verdicts = samples(fams["chaos_verdict_passed"], **BASE)
    assert len(verdicts) == len(results["verdicts"]) == 8
    assert verdicts == {(v["name"],): 1.0 if v["ok"] else 0.0 for v in results["verdicts"]}
    assert verdicts[("lost",)] == 0.0  # the failed verdict shows 0: three acknowledged events lost
    assert verdicts[("duplicates",)] == verdicts[("convergence",)] == 1.0
    assert samples(fams["chaos_experiment_passed"], **BASE) == {(): 0.0}


def test_one_sample_per_phase_of_each_figure(handmade: tuple[Path, Results]) -> None:
    run, _ = handmade
    fams = families(run / METRICS_NAME)
    phases = ("after", "before", "during", "warmup")
    assert samples(fams["chaos_phase_error_ratio"], **BASE) == {
        ("after",): 0.0, ("before",): 0.0, ("during",): pytest.approx(10 / 200), ("warmup",): 0.0}
    for q in ("0.5", "0.99", "1"):
        assert sorted(samples(fams["chaos_phase_latency_seconds"], **BASE, quantile=q)) == [(p,) for p in phases]
    p99 = samples(fams["chaos_phase_latency_seconds"], **BASE, quantile="0.99")
    assert p99 == {("after",): 0.3, ("before",): 0.099, ("during",): 1.0, ("warmup",): 0.005}
    assert samples(fams["chaos_phase_latency_seconds"], **BASE, phase="before") == {
        ("0.5",): 0.05, ("0.99",): 0.099, ("1",): 0.1}
    assert samples(fams["chaos_phase_operations"], **BASE, phase="during") == {
        ("fail",): 5.0, ("ok",): 190.0, ("unknown",): 5.0}
    assert len(samples(fams["chaos_phase_operations"], **BASE)) == 3 * len(phases)
    assert fams["chaos_phase_latency_seconds"].unit == "seconds"
    assert fams["chaos_phase_error_ratio"].unit == "ratio"


def test_recovery_identity_and_time_of_the_run(handmade: tuple[Path, Results]) -> None:
    run, results = handmade
    fams = families(run / METRICS_NAME)
    assert samples(fams["chaos_convergence_seconds"], **BASE) == {(): 0.75}
    assert samples(fams["chaos_availability_recovered_seconds"], **BASE) == {(): 1.0}
    started_us = results["started_at_us"]
    assert started_us is not None
    assert samples(fams["chaos_experiment_start_timestamp_seconds"], **BASE) == {(): started_us / 1e6}
    assert samples(fams["chaos_experiment_duration_seconds"], **BASE) == {(): 12.35}
    (info,) = fams["chaos_experiment_info"].samples
    assert info.value == 1.0 and info.labels["pipeline_version"] == "c1-abc123" and info.labels["suite_version"]
    assert samples(fams["chaos_run_experiments"], run=RUN) == {("", "failed"): 1.0, ("", "no_result"): 0.0,
                                                              ("", "passed"): 0.0}
    assert {f.type for f in fams.values()} == {"gauge"}


def test_the_file_is_also_the_prometheus_text_format_the_collectors_read(handmade: tuple[Path, Results]) -> None:
    """node-exporter's textfile collector and the Pushgateway parse the older text format: the same file
    (gauges only, no timestamps) reads the same there, ``# UNIT`` and ``# EOF`` being comments."""
    run, _ = handmade
    text = (run / METRICS_NAME).read_text(encoding="utf-8")
    old = {f.name: f for f in prometheus_text_families(text)}
    new = families(run / METRICS_NAME)
    assert old.keys() == new.keys()
    for name, fam in old.items():
        assert fam.type == "gauge"
        assert [(s.name, s.labels, s.value, s.timestamp) for s in fam.samples] == [
            (s.name, s.labels, s.value, None) for s in new[name].samples]


def test_passing_defect_never_converged_and_crashed_experiments(tmp_path: Path) -> None:
    run = tmp_path / RUN
    report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    good = make_result(run / "test_good-acks1").to_dict()
    good["experiment"], good["ok"], good["failed"] = "test_good-acks1", True, []
    good["defects"], good["pipeline"] = ["acks1"], "refpipe"
    for v in good["verdicts"]:
        v["ok"] = True
    good["recovery"]["convergence_s"] = good["recovery"]["availability_recovered_s"] = None
    (run / "test_good-acks1").mkdir()
    (run / "test_good-acks1" / "results.json").write_text(json.dumps(good))
    (run / "test_crashed" / "logs").mkdir(parents=True)
    (run / "test_crashed" / "logs" / "kafka-1.log").write_text("boom")
    fams = families(write_run_metrics(run))
    mine = {"run": RUN, "pipeline": "refpipe", "experiment": "test_good-acks1", "defects": "acks1"}
    assert samples(fams["chaos_experiment_passed"], run=RUN) == {
        ("acks1", "test_good-acks1", "refpipe"): 1.0, ("", "test_handmade", ""): 0.0}
    assert set(samples(fams["chaos_verdict_passed"], **mine).values()) == {1.0}
    assert samples(fams["chaos_convergence_seconds"], **mine) == {(): math.inf}  # never converged
    assert samples(fams["chaos_availability_recovered_seconds"], **mine) == {(): math.inf}
    assert samples(fams["chaos_run_experiments"], run=RUN, pipeline="refpipe") == {
        ("failed",): 1.0, ("no_result",): 1.0, ("passed",): 1.0}


def matrix_rows(root: Path) -> list[dict[str, Any]]:
    """Rows as the detection matrix records them: acks1 caught 3 of 3, commit_before_write 2 of 3 (flaky),
    the correct pipeline failing once of 3 (a false alarm)."""
    rows = []
    for defect, exp, caught in (("acks1", "leader_isolated", (1, 1, 1)),
                                ("commit_before_write", "postgres_outage", (1, 0, 1)),
                                ("none", "leader_isolated", (0, 0, 1))):
        for c in caught:
            rows.append({"defect": defect, "experiment": exp, "caught": bool(c), "failed": ["lost"] if c else [],
                         "example": "lost: 3 events; dsn password=hunter2" if c else "", "report_root": str(root)})
    return rows


def test_one_sample_per_detection_matrix_cell(tmp_path: Path) -> None:
    run = tmp_path / RUN
    report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    config: Any = SimpleNamespace(stash=pytest.Stash())
    config.stash[MATRIX_KEY] = []
    for row in matrix_rows(run):
        record_matrix(config, row)  # as test_detection does: matrix.json holds the rows so far
    assert len(load_matrix(run)) == 9
    assert "hunter2" not in (run / "matrix.json").read_text() and "report_root" not in (run / "matrix.json").read_text()
    assert cli(["index", str(run)]) == 0  # the command rebuilds the metrics from the files
    fams = families(run / METRICS_NAME)
    cells = samples(fams["chaos_matrix_caught"], run=RUN, pipeline="")
    assert cells == {("acks1", "leader_isolated"): 3.0, ("commit_before_write", "postgres_outage"): 2.0,
                     ("none", "leader_isolated"): 1.0}
    assert set(samples(fams["chaos_matrix_runs"], run=RUN).values()) == {3.0}
    table = matrix_table(config.stash[MATRIX_KEY])  # the same cells as matrix.md
    assert "| acks1 | leader_isolated | caught 3/3 |" in table
    assert "| commit_before_write | postgres_outage | flaky 2/3 |" in table
    assert "| correct pipeline | leader_isolated | FAILED 2/3 |" in table


def test_a_run_without_matrix_has_no_matrix_metric_and_the_registry_pushes_the_same(tmp_path: Path) -> None:
    run = tmp_path / RUN
    report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    text = write_run_metrics(run).read_text(encoding="utf-8")
    assert "chaos_matrix" not in text
    assert text == render_metrics(RUN, {"test_handmade": load_results(run / "test_handmade")})  # data to text
    pushed = {f.name: f for f in run_registry(run).collect()}  # what push_to_gateway would send
    assert pushed.keys() == families(run / METRICS_NAME).keys()
    assert not list(run.glob(".*.tmp"))


def test_a_bad_matrix_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / RUN
    report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    (run / "matrix.json").write_text('{"not": "rows"}')
    assert cli(["index", str(run)]) == 2
    assert "matrix.json: not the detection matrix's rows" in capsys.readouterr().err
