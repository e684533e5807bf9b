"""``results.json``: every figure of one experiment, computed from its history and its verdicts.

The file is the contract between a run and everything that reads it later (the HTML page, the markdown
summary, JUnit properties, the run index, ``compare``), so it is built here from plain data only: a
:class:`~chaos.history.History`, the verdicts as dictionaries, and a few numbers measured live. That also
lets ``python -m chaos.report render`` rebuild it, and the page, from ``history.jsonl`` plus an older
``results.json`` (whose verdicts cannot be recomputed without the ground truth).

The layout, one class per part, is :mod:`chaos.report.schema` (:class:`~chaos.report.schema.Results`):
the one description of the document, which every reader is type-checked against. ``schema_version`` is
2; files without the field are version 1, read too (:func:`load_results`, :func:`rebuild_results`).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from chaos.checkers import PhaseStats, phase_stats
from chaos.history import History, Outcome
from chaos.report.schema import (
    Counts,
    FaultRecord,
    PhaseFigures,
    Recovery,
    Results,
    Sample,
    Throughput,
    VerdictRecord,
    as_results,
)
from chaos.report.series import completion_rate, time_span, windows_by_intended

if TYPE_CHECKING:
    from chaos.run import RunResult

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "build_results",
    "load_results",
    "pipeline_version",
    "rebuild_results",
    "results_of",
]

SCHEMA = "pipeline-chaos/results"
SCHEMA_VERSION = 2
RECOVERY_WINDOW_US = 1_000_000
NORMAL_P99_FACTOR = 2.0
NORMAL_P99_SLACK_MS = 100.0


def suite_version() -> str:
    try:
        return importlib.metadata.version("pipeline-chaos")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def pipeline_version(images: Mapping[str, Any] | None) -> str | None:
    """The tag of the pipeline's (first) own image (``pipeline-chaos/refpipe-pipeline:c1-f638cbe470`` ->
    ``c1-f638cbe470``); images are keyed ``pipeline:<key>`` (older results: ``pipeline``)."""
    imgs = images or {}
    key = next((k for k in sorted(imgs) if k.startswith("pipeline:")), "pipeline")
    ref = imgs.get(key)
    if not isinstance(ref, str) or not ref:
        return None
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1] + (f"@{digest}" if digest else "")
    return digest or ref


def _iso(us: int | None) -> str | None:
    if not us:
        return None
    return _dt.datetime.fromtimestamp(us / 1e6, _dt.UTC).isoformat(timespec="seconds")


def _rel(us: int | None, t0: int) -> float | None:
    return None if us is None else round((us - t0) / 1e6, 3)


def _phase_windows(history: History) -> dict[str, tuple[int, int]]:
    """phase -> (first start, last end), with the boundaries :func:`phase_stats` uses for durations."""
    marks = sorted(history.phases, key=attrgetter("at_us"))
    last_end: dict[str, int] = {}
    for op in history.ops:
        t = op.end_us if op.end_us is not None else op.start_us
        if t > last_end.get(op.phase, -1):
            last_end[op.phase] = t
    out: dict[str, tuple[int, int]] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].at_us if i + 1 < len(marks) else max(last_end.get(m.name, m.at_us), m.at_us)
        start0, end0 = out.get(m.name, (m.at_us, end))
        out[m.name] = (min(start0, m.at_us), max(end0, end))
    for name in history.phase_names():
        if name not in out:
            ops = [op for op in history.ops if op.phase == name]
            if ops:
                out[name] = (min(op.intended_us for op in ops), last_end[name])
    return out


def _phases(history: History, stats: Mapping[str, PhaseStats | Mapping[str, Any]],
            t0: int) -> dict[str, PhaseFigures]:
    windows = _phase_windows(history)
    out: dict[str, PhaseFigures] = {}
    for name, st in stats.items():
        # the checkers' figures as they give them (PhaseStats.to_dict: typed dict[str, Any]), then the window
        d = cast("PhaseFigures", dict(st.to_dict() if isinstance(st, PhaseStats) else st))
        dur = d.get("duration_s") or 0.0
        d["offered_per_s"] = d["ops"] / dur if dur > 0 else 0.0
        start, end = windows.get(name, (None, None))
        d["start_us"] = start
        d["end_us"] = end
        d["start_s"] = _rel(start, t0)
        d["end_s"] = _rel(end, t0)
        out[name] = d
    return out


def _throughput(history: History) -> Throughput:
    ops = history.ops
    if not ops:
        return {"window_s": 1.0, "offered_per_s": 0.0, "ok_per_s": 0.0, "min_ok_per_s": None, "max_ok_per_s": None,
                "min_ok_at_s": None}
    first = min(op.intended_us for op in ops)
    last_due = max(op.intended_us for op in ops)
    ends = [op.end_us for op in ops if op.end_us is not None]
    last_end = max(ends) if ends else last_due
    n_ok = sum(1 for op in ops if op.outcome == Outcome.OK)
    issue_s = (last_due - first) / 1e6
    serve_s = (last_end - first) / 1e6
    # whole 1 s windows between the first due op and the last due op: a quiet tail is not a dip
    n_whole = (last_due - first) // RECOVERY_WINDOW_US
    oks, _errs = completion_rate(ops, first, first + max(1, n_whole) * RECOVERY_WINDOW_US, RECOVERY_WINDOW_US)
    if n_whole >= 1:
        lo = min(range(len(oks)), key=oks.__getitem__)
        mn: int | None = oks[lo]
        mx: int | None = max(oks)
        at: float | None = round((first + lo * RECOVERY_WINDOW_US - time_span(history)[0]) / 1e6, 3)
    else:
        mn = mx = None
        at = None
    return {
        "window_s": RECOVERY_WINDOW_US / 1e6,
        "offered_per_s": len(ops) / issue_s if issue_s > 0 else 0.0,
        "ok_per_s": n_ok / serve_s if serve_s > 0 else 0.0,
        "min_ok_per_s": mn,
        "max_ok_per_s": mx,
        "min_ok_at_s": at,
    }


def _recovery(history: History, phases: Mapping[str, PhaseFigures], convergence_s: float | None,
              verdicts: Sequence[VerdictRecord]) -> Recovery:
    bound = None
    for v in verdicts:
        name: str | None = v.get("name")
        if name == "convergence":
            b = (v.get("counts") or {}).get("bound_s")
            bound = float(b) if isinstance(b, int | float) else None
    out: Recovery = {"heal_us": None, "convergence_s": convergence_s, "convergence_bound_s": bound,
                     "availability_recovered_s": None, "availability_recovered_since_inject_s": None,
                     "normal_p99_ms": None, "window_s": RECOVERY_WINDOW_US / 1e6}
    if not history.faults:
        return out
    inject = min(w.start_us for w in history.faults)
    ends = [w.end_us for w in history.faults]
    heal = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    out["heal_us"] = heal
    p99_before = (phases.get("before") or {}).get("p99_ms")
    if heal is None or p99_before is None or not history.ops:
        return out
    normal_ms = max(NORMAL_P99_FACTOR * p99_before, p99_before + NORMAL_P99_SLACK_MS)
    out["normal_p99_ms"] = round(normal_ms, 3)
    last_due = max(op.intended_us for op in history.ops)
    if last_due < inject:
        return out
    wins = windows_by_intended(history.ops, inject, last_due + 1, RECOVERY_WINDOW_US)

    def normal(w: Any) -> bool:
        p99 = w.percentile_ms(0.99)
        return w.errors == 0 and w.never_completed == 0 and (p99 is None or p99 <= normal_ms)

    first_good = len(wins)
    for i in range(len(wins) - 1, -1, -1):
        if not normal(wins[i]):
            break
        first_good = i
    if first_good == len(wins):  # the last window is still disturbed: not recovered while load ran
        return out
    recovered_at = wins[first_good].start_us
    out["availability_recovered_s"] = round(max(0, recovered_at - heal) / 1e6, 3)
    out["availability_recovered_since_inject_s"] = round((recovered_at - inject) / 1e6, 3)
    return out


def build_results(
    history: History,
    *,
    verdicts: Sequence[Mapping[str, Any]],
    convergence_s: float | None = None,
    wall_s: float | None = None,
    name: str | None = None,
    defects: Sequence[str] | None = None,
    counts: Mapping[str, Any] | None = None,
    samples: Sequence[Mapping[str, Any]] = (),
    stats: Mapping[str, PhaseStats | Mapping[str, Any]] | None = None,
) -> Results:
    """The ``results.json`` document (:class:`~chaos.report.schema.Results`) for one experiment."""
    meta = history.meta
    t0, _t1 = time_span(history)
    # verdicts as the checkers give them (Verdict.to_dict: typed dict[str, Any]) or an older file holds them
    verdict_list = [cast("VerdictRecord", dict(v)) for v in verdicts]
    phases = _phases(history, stats if stats is not None else phase_stats(history), t0)
    faults: list[FaultRecord] = []
    for w in history.faults:  # the fault's own description (its parameters differ per fault), then its window
        f = {**w.detail, "name": w.name, "start_us": w.start_us, "end_us": w.end_us, "start_s": _rel(w.start_us, t0),
             "end_s": _rel(w.end_us, t0),
             "duration_s": None if w.end_us is None else round((w.end_us - w.start_us) / 1e6, 3)}
        faults.append(cast("FaultRecord", f))
    n = {o.value: 0 for o in Outcome}
    for op in history.ops:
        n[op.outcome.value] += 1
    all_counts: dict[str, Any] = {"ops": len(history.ops), **n}
    all_counts.update(counts or {})
    images = dict(meta.get("images") or {})
    recovery = _recovery(history, phases, convergence_s, verdict_list)
    failed = [str(v["name"]) for v in verdict_list if not v["ok"]]
    defect_list = list(defects if defects is not None else meta.get("defects") or [])
    started = meta.get("started_at_us") or (t0 or None)
    samples_out: list[Sample] = []
    for s in samples:  # as the run took them (typed dict[str, Any] there)
        d = cast("Sample", dict(s))
        t_us: int | None = d.get("t_us")
        if isinstance(t_us, int):
            d["t_s"] = _rel(t_us, t0)
        samples_out.append(d)
    doc: Results = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "experiment": name if name is not None else meta.get("experiment"),
        "run_id": meta.get("run_id"),
        "ok": not failed,
        "failed": failed,
        "defects": defect_list,
        "seed": meta.get("seed"),
        "started_at_us": started,
        "started_at": _iso(started if isinstance(started, int) else None),
        "t0_us": t0,
        "wall_s": None if wall_s is None else round(wall_s, 2),
        "pipeline": meta.get("pipeline"),
        "versions": {"suite": suite_version(), "pipeline": pipeline_version(images), "images": images},
        "load": meta.get("load"),
        "phases": phases,
        "throughput": _throughput(history),
        "faults": faults,
        "recovery": recovery,
        "convergence_s": convergence_s,
        "verdicts": verdict_list,
        "counts": cast("Counts", all_counts),
        "samples": samples_out,
        "meta": meta,
    }
    return doc


def results_of(result: RunResult) -> Results:
    """The ``results.json`` document of a finished run (:class:`~chaos.run.RunResult`)."""
    gt = result.truth
    counts = {} if gt is None else {"applied_rows": len(gt.applied),
                                    "kafka_records": sum(len(r) for r in gt.records.values())}
    doc = build_results(
        result.history,
        verdicts=[v.to_dict() for v in result.verdicts],
        convergence_s=result.convergence_s,
        wall_s=result.wall_s,
        name=result.name,
        defects=list(result.defects),
        counts=counts,
        samples=list(result.samples),
        stats=result.stats,
    )
    doc["outcome"] = {"outcome": result.outcome, "reason": result.reason or None, "exit": result.exit_code}
    if result.schedule is not None:  # a randomised schedule (chaos.schedules): seed, profile, the exact steps
        doc["schedule"] = result.schedule
    doc.update(as_results(result.extra))  # more sections (``gameday``: chaos.gameday.runner)
    return doc


def rebuild_results(old: Results, history: History) -> Results:
    """Recompute every derived figure of ``old`` (any schema version) from ``history``; keep its verdicts."""
    counts = {k: v for k, v in (old.get("counts") or {}).items() if k in ("applied_rows", "kafka_records")}
    doc = build_results(
        history,
        verdicts=old.get("verdicts") or [],
        convergence_s=old.get("convergence_s"),
        wall_s=old.get("wall_s"),
        name=old.get("experiment"),
        defects=old.get("defects"),
        counts=counts,
        samples=old.get("samples") or [],
    )
    schedule: dict[str, Any] | None = old.get("schedule")
    if schedule is not None:
        doc["schedule"] = schedule
    return doc


def load_results(path: str | Path) -> Results:
    """Read a ``results.json`` (or the one in a folder); ValueError with a clear message if it is not one."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: not a readable results.json ({exc})") from None
    doc = as_results(data if isinstance(data, dict) else {})
    phases: dict[str, PhaseFigures] | None = doc.get("phases")
    if not isinstance(data, dict) or not isinstance(phases, dict) or "verdicts" not in doc:
        raise ValueError(f"{p}: not an experiment's results.json (no 'phases' and 'verdicts')")
    version: int = doc.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{p}: results schema version {version!r} is newer than this suite understands "
                         f"({SCHEMA_VERSION}); update the suite")
    return doc
