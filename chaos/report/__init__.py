"""Reports: what a run leaves behind, for people and for CI.

Per experiment, in ``<report dir>/<run id>/<experiment>/``:

``history.jsonl``  every operation (format in :mod:`chaos.history`)
``results.json``   every figure: verdicts, per-phase latency/error rate/throughput, recovery, seed,
                   faults, versions (layout in :mod:`chaos.report.schema`, built by
                   :mod:`chaos.report.results`)
``report.html``    a self-contained page with the plots and tables (:mod:`chaos.report.html`)
``summary.md``     the markdown summary for a CI job summary (:mod:`chaos.report.markdown`)
``logs/``          on failure, the log of every container of the session (written by the pytest plugin)

Per run: ``index.html`` and ``summary.md`` (:mod:`chaos.report.index`), ``metrics.prom`` (OpenMetrics, for
Prometheus: :mod:`chaos.report.metrics`). Across runs or variants:
``python -m chaos.report compare`` (:mod:`chaos.report.compare`). While running: :mod:`chaos.report.live`.

Everything here is computed from files or plain data, so ``python -m chaos.report render`` rebuilds a
folder's page from its ``history.jsonl`` and ``results.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from chaos.history import History
from chaos.report import results as _results
from chaos.report.results import SCHEMA_VERSION, build_results, load_results, rebuild_results
from chaos.report.schema import FaultRecord, Results

if TYPE_CHECKING:
    from chaos.run import RunResult as ExperimentResult

__all__ = [
    "SCHEMA_VERSION",
    "build_results",
    "junit_properties",
    "load_results",
    "rebuild_results",
    "render_folder",
    "results_of",
    "write_artefacts",
    "write_experiment",
]

HTML_NAME = "report.html"


def results_of(result: ExperimentResult) -> Results:
    """The ``results.json`` document of a finished run (see :mod:`chaos.report.schema`)."""
    return _results.results_of(result)


def write_artefacts(history: History, results: Results, folder: str | Path) -> Path:
    """Write ``results.json``, ``report.html`` and ``summary.md`` into ``folder``; returns the page's path."""
    from chaos.redact import redact_doc
    from chaos.report.html import render_html
    from chaos.report.markdown import experiment_markdown

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    results = redact_doc(json.loads(json.dumps(results, default=str)))  # no secret reaches an artefact
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / "summary.md").write_text(experiment_markdown(results), encoding="utf-8")
    page = out / HTML_NAME
    page.write_text(render_html(history, results, out), encoding="utf-8")
    return page


def write_experiment(result: ExperimentResult, folder: str | Path) -> Results:
    """All artefacts of a finished experiment (the history too); returns the results document."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    result.history.write_jsonl(out / "history.jsonl")
    results = _results.results_of(result)
    write_artefacts(result.history, results, out)
    return results


def render_folder(folder: str | Path, out: str | Path | None = None) -> Path:
    """Rebuild an experiment folder's results.json (current schema), page and summary from its
    ``history.jsonl`` and ``results.json`` (verdicts kept), into ``out`` (default: the folder itself)."""
    src = Path(folder)
    old = load_results(src / "results.json")
    try:
        history = History.read_jsonl(src / "history.jsonl")
    except FileNotFoundError:
        raise ValueError(f"{src}: no history.jsonl") from None
    results = rebuild_results(old, history)
    dest = Path(out) if out is not None else src
    if dest != src:
        dest.mkdir(parents=True, exist_ok=True)
        history.write_jsonl(dest / "history.jsonl")
    return write_artefacts(history, results, dest)


# (key, label) of the figures of each phase in the JUnit properties
_JUNIT_PHASE_FIGURES: tuple[tuple[Literal["p50_ms", "p99_ms", "error_rate", "throughput_ok_per_s"], str], ...] = (
    ("p50_ms", "p50_ms"), ("p99_ms", "p99_ms"), ("error_rate", "error_rate"), ("throughput_ok_per_s", "ok_per_s"))


def junit_properties(results: Results, prefix: str = "") -> list[tuple[str, str]]:
    """The key figures of one experiment as (name, value) pairs for JUnit XML ``<property>`` elements.

    ``<prefix>ok``, ``failed`` (comma-separated), ``verdicts`` (``lost=pass,...``), per phase
    ``<phase>.p50_ms``/``p99_ms``/``error_rate``/``ok_per_s``, ``convergence_s`` (``never`` when a
    fault's effects never converged), ``availability_recovered_s``, ``seed``, ``pipeline``, ``report``.
    """
    passed: bool | None = results.get("ok")
    props: list[tuple[str, str]] = [
        (f"{prefix}ok", str(bool(passed)).lower()),
        (f"{prefix}failed", ",".join(results.get("failed") or [])),
        (f"{prefix}verdicts", ",".join(f"{v['name']}={'pass' if v['ok'] else 'FAIL'}"
                                        for v in results.get("verdicts") or [])),
    ]
    for name, p in (results.get("phases") or {}).items():
        for key, label in _JUNIT_PHASE_FIGURES:
            v: float | None = p.get(key)
            props.append((f"{prefix}{name}.{label}", "" if v is None else f"{v:.6g}"))
    rec = results.get("recovery") or {}
    faults: list[FaultRecord] = results.get("faults") or []
    if faults:
        conv: float | None = rec.get("convergence_s", results.get("convergence_s"))
        props.append((f"{prefix}convergence_s", "never" if conv is None else f"{conv:.3f}"))
        avail: float | None = rec.get("availability_recovered_s")
        props.append((f"{prefix}availability_recovered_s", "never" if avail is None else f"{avail:.3f}"))
    seed: int | None = results.get("seed")
    props.append((f"{prefix}seed", str(seed)))
    versions = results.get("versions")
    pipeline: str | None = versions.get("pipeline") if versions else None
    props.append((f"{prefix}pipeline", str(pipeline)))
    return props
