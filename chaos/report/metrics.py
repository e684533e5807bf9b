"""``<run>/metrics.prom``: a run's results as Prometheus metrics, for dashboards and alerts across runs.

The pages say how one run went; a time series says how the pipeline's resilience changes from run to
run (a p99 during a broker kill creeping up, a convergence time doubling, a defect the matrix stopped
catching). So every run folder also gets ``metrics.prom``: each experiment's pass/fail, every verdict,
latency quantiles, error ratio and operation counts per phase, convergence and recovery times, and in
the matrix tier one sample per detection-matrix cell. It is the OpenMetrics text format, written by
``prometheus_client`` (``# EOF`` at the end), ready for node-exporter's textfile collector or a
Pushgateway push; docs/reports.md lists every metric with its labels.

Like the other run-level pages it is built from files only: each experiment folder's ``results.json``
(:func:`chaos.report.results.load_results`, through :func:`chaos.report.index.collect_run`) and the
detection matrix's rows in ``matrix.json`` (written by the pytest plugin as each pair finishes), so
``python -m chaos.report index RUN`` writes it again later. Every family is a gauge, so the file is also
valid in the older Prometheus text format that the textfile collector and the Pushgateway parse (they
skip ``# UNIT`` and ``# EOF`` as comments). Labels hold names only (run, pipeline, experiment folder,
defects, verdict, phase), never event ids or messages, and pass through :func:`chaos.redact.redact`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest

from chaos.redact import redact, redact_doc
from chaos.report.index import RunEntry, collect_run
from chaos.report.schema import Results

__all__ = [
    "MATRIX_NAME",
    "METRICS_NAME",
    "MatrixRow",
    "load_matrix",
    "metric_families",
    "render_metrics",
    "run_registry",
    "write_matrix",
    "write_run_metrics",
]

METRICS_NAME = "metrics.prom"
MATRIX_NAME = "matrix.json"

EXPERIMENT_LABELS = ("run", "pipeline", "experiment", "defects")
# (quantile label, phase figure): the median, the p99 and the slowest acknowledged operation
QUANTILES: tuple[tuple[str, Literal["p50_ms", "p99_ms", "max_ms"]], ...] = (
    ("0.5", "p50_ms"), ("0.99", "p99_ms"), ("1", "max_ms"))
OUTCOMES: tuple[Literal["ok", "fail", "unknown"], ...] = ("ok", "fail", "unknown")


class MatrixRow(TypedDict):
    """One run of a (defect, experiment) pair of the detection matrix (``defect`` ``none``: the correct
    pipeline); ``caught``: a verdict or the experiment's hypothesis failed."""

    defect: str
    experiment: str
    caught: bool
    failed: list[str]
    example: str


def write_matrix(run_dir: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``<run>/matrix.json``: the detection matrix's rows so far (redacted, without other keys)."""
    doc: list[MatrixRow] = [
        {"defect": str(r["defect"]), "experiment": str(r["experiment"]), "caught": bool(r["caught"]),
         "failed": [str(f) for f in r.get("failed") or []], "example": str(r.get("example") or "")} for r in rows]
    out = Path(run_dir) / MATRIX_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(redact_doc(doc), indent=1), encoding="utf-8")
    return out


def load_matrix(run_dir: str | Path) -> list[MatrixRow]:
    """The rows of ``<run>/matrix.json``; none when the run has no matrix. ValueError on a bad file."""
    path = Path(run_dir) / MATRIX_NAME
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable matrix.json ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"defect", "experiment", "caught"} <= r.keys()
                                             for r in rows):
        raise ValueError(f"{path}: not the detection matrix's rows (a list of defect, experiment, caught)")
    return rows


class _Families:
    """The registry's one collector: metric families built beforehand from the files."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _gauge(name: str, doc: str, labels: Sequence[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels), unit=unit)


def _add(family: GaugeMetricFamily, labels: Sequence[str | None], value: float) -> None:
    family.add_metric([redact(v or "") for v in labels], value)


def metric_families(run: str, experiments: Mapping[str, Results | None],
                    matrix: Sequence[MatrixRow] = ()) -> list[Metric]:
    """Every metric of a run: ``experiments`` maps each experiment folder's name to its results (None: no
    readable ``results.json``); ``matrix`` holds the detection matrix's rows. Families without a sample
    are left out."""
    e = EXPERIMENT_LABELS
    run_pipeline = next((r.get("pipeline") for r in experiments.values() if r and r.get("pipeline")), None)
    experiments_n = _gauge("chaos_run_experiments", "Experiments of the run by result: passed, failed, or "
                           "no_result (no readable results.json: crashed before its verdicts)",
                           ("run", "pipeline", "result"))
    passed = _gauge("chaos_experiment_passed", "1 when every verdict of the experiment passed, else 0", e)
    info = _gauge("chaos_experiment_info", "Always 1: the versions of the suite and of the pipeline image",
                  (*e, "suite_version", "pipeline_version"))
    started = _gauge("chaos_experiment_start_timestamp_seconds", "Start of the experiment (Unix time)", e, "seconds")
    wall = _gauge("chaos_experiment_duration_seconds", "Wall time of the experiment, deploy to verdicts", e,
                  "seconds")
    verdict = _gauge("chaos_verdict_passed", "1 when the verdict passed, else 0", (*e, "verdict"))
    latency = _gauge("chaos_phase_latency_seconds", "Latency of acknowledged operations from their intended "
                     "start, per phase: quantile 0.5, 0.99, and 1 (the slowest)", (*e, "phase", "quantile"), "seconds")
    errors = _gauge("chaos_phase_error_ratio", "Failed and unknown operations over all operations, per phase",
                    (*e, "phase"), "ratio")
    ops = _gauge("chaos_phase_operations", "Operations per phase by outcome: ok, fail, unknown",
                 (*e, "phase", "outcome"))
    convergence = _gauge("chaos_convergence_seconds", "From the heal to every event acknowledged before it applied "
                         "(+Inf: never); experiments with a fault only", e, "seconds")
    recovered = _gauge("chaos_availability_recovered_seconds", "From the heal to latency and errors back to normal "
                       "(+Inf: never); experiments with a fault only", e, "seconds")
    matrix_runs = _gauge("chaos_matrix_runs", "Runs of a detection-matrix cell (defect none: the correct pipeline)",
                         ("run", "pipeline", "defect", "experiment"))
    matrix_caught = _gauge("chaos_matrix_caught", "Runs of a detection-matrix cell in which a verdict or the "
                           "experiment's hypothesis failed (defect none: false alarms)",
                           ("run", "pipeline", "defect", "experiment"))

    results_n = {"passed": 0, "failed": 0, "no_result": 0}
    for name, r in experiments.items():
        if r is None:
            results_n["no_result"] += 1
            continue
        ok: bool | None = r.get("ok")
        results_n["passed" if ok else "failed"] += 1
        base = [run, r.get("pipeline"), name, "+".join(r.get("defects") or [])]
        _add(passed, base, 1.0 if ok else 0.0)
        versions = r.get("versions")
        _add(info, [*base, versions["suite"] if versions else None, versions["pipeline"] if versions else None], 1.0)
        started_us: int | None = r.get("started_at_us")
        if started_us:
            _add(started, base, started_us / 1e6)
        wall_s: float | None = r.get("wall_s")
        if wall_s is not None:
            _add(wall, base, wall_s)
        for v in r.get("verdicts") or []:
            _add(verdict, [*base, v["name"]], 1.0 if v["ok"] else 0.0)
        for phase, p in (r.get("phases") or {}).items():
            for q, key in QUANTILES:
                ms: float | None = p.get(key)
                if ms is not None:
                    _add(latency, [*base, phase, q], ms / 1000)
            rate: float | None = p.get("error_rate")
            if rate is not None:
                _add(errors, [*base, phase], rate)
            for outcome in OUTCOMES:
                n: int | None = p.get(outcome)
                if n is not None:
                    _add(ops, [*base, phase, outcome], n)
        if r.get("faults"):
            rec = r.get("recovery") or {}
            conv: float | None = rec.get("convergence_s", r.get("convergence_s"))
            _add(convergence, base, math.inf if conv is None else conv)
            if "availability_recovered_s" in rec:
                avail: float | None = rec.get("availability_recovered_s")
                _add(recovered, base, math.inf if avail is None else avail)
    for result, count in results_n.items():
        _add(experiments_n, [run, run_pipeline, result], count)
    cells: dict[tuple[str, str], list[MatrixRow]] = {}
    for row in matrix:
        cells.setdefault((row["defect"], row["experiment"]), []).append(row)
    for (defect, exp), rows in sorted(cells.items()):
        _add(matrix_runs, [run, run_pipeline, defect, exp], len(rows))
        _add(matrix_caught, [run, run_pipeline, defect, exp], sum(1 for row in rows if row["caught"]))
    families = [experiments_n, passed, info, started, wall, verdict, latency, errors, ops, convergence, recovered,
                matrix_runs, matrix_caught]
    return [f for f in families if f.samples]


def _registry(families: list[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return registry


def render_metrics(run: str, experiments: Mapping[str, Results | None], matrix: Sequence[MatrixRow] = ()) -> str:
    """The OpenMetrics text of :func:`metric_families` (it ends with ``# EOF``)."""
    return generate_latest(_registry(metric_families(run, experiments, matrix))).decode("utf-8")


def run_registry(run_dir: str | Path, entries: Sequence[RunEntry] | None = None) -> CollectorRegistry:
    """A registry holding a run folder's metrics, read from its files (the run label is the folder's name):
    for ``prometheus_client.push_to_gateway(gateway, job=..., registry=run_registry(run))``. ``entries``: the
    run's experiment folders when the caller has read them already (:func:`chaos.report.index.collect_run`)."""
    run = Path(run_dir)
    experiments = {en.name: en.results for en in (collect_run(run) if entries is None else entries)}
    return _registry(metric_families(run.name, experiments, load_matrix(run)))


def write_run_metrics(run_dir: str | Path, entries: Sequence[RunEntry] | None = None) -> Path:
    """Write ``<run>/metrics.prom`` from the run folder's files (``entries`` as in :func:`run_registry`);
    returns its path. The file is replaced at once (written beside it, then renamed), so a collector never
    reads half of it."""
    run = Path(run_dir)
    out = run / METRICS_NAME
    tmp = out.with_name(f".{METRICS_NAME}.tmp")
    tmp.write_bytes(generate_latest(run_registry(run, entries)))
    os.replace(tmp, out)
    return out
