"""The ``results.json`` document, typed: the one description of its layout.

:class:`Results` and its parts below are the document as :func:`chaos.report.results.build_results`
writes it (plus what :func:`~chaos.report.results.results_of` adds for a finished run), and as every
reader takes it: the HTML page, the markdown summaries, JUnit properties, the run index and ``compare``.
The module docstring of :mod:`chaos.report.results` points here instead of repeating the layout; a key
added to, renamed in or removed from the document is changed here first, and mypy then names every
reader that must follow. A misspelt key is a mypy error (``TypedDict "Results" has no key ...``) for
``doc["key"]``; mypy does *not* report one for ``doc.get("key")`` (it gives the read type ``object``),
so readers pass what they read on to typed code (the ``fmt_*`` helpers, annotated variables) or use
``doc["key"]`` where the key is sure to be there.

Layout (``schema_version`` 2; files without the field are version 1, which had ``experiment``, ``ok``,
``defects``, ``wall_s``, ``convergence_s``, ``faults``, ``phases``, ``verdicts``, ``counts``, ``meta``:
all still present with the same meaning)::

    schema, schema_version        "pipeline-chaos/results", 2
    experiment, run_id, ok        name, run id, all verdicts passed
    failed                        names of the failed verdicts
    defects, seed                 defect switches of the pipeline under test; the load generator's seed
    started_at_us, started_at     start of the run (epoch us, ISO 8601 UTC)
    t0_us                         time zero of every relative time (``*_s`` fields, plots): the first
                                  phase mark or intended start
    wall_s                        wall time of the whole experiment (deploy .. verdicts)
    pipeline                      the pipeline under test (its adapter's name)
    versions                      {suite, pipeline (the pipeline image tag), images {role: reference}}
    load                          the load spec (rate, keys, batch size, ...)
    phases{name}                  ops, ok, fail, unknown, error_rate, duration_s, throughput_ok_per_s,
                                  offered_per_s, p50/p90/p99/p999/max_ms (ok ops, from the intended
                                  start), start_us/end_us, start_s/end_s
    throughput                    over the run: offered_per_s, ok_per_s, and the lowest and highest
                                  acknowledgements per second over whole 1 s windows (by completion)
    faults[]                      the fault's description (name, target, parameters, resolved target)
                                  + start_us, end_us, start_s, end_s, duration_s
    recovery                      heal_us (end of the last fault), convergence_s (heal -> every event
                                  acknowledged before the heal applied; null = never), convergence_bound_s,
                                  availability_recovered_s (heal -> start of the first 1 s window after
                                  which every window is "normal": no failed/unknown op and p99 within
                                  normal_p99_ms = max(2 x p99 before, p99 before + 100 ms); 0 when normal
                                  already at the heal; null = never), availability_recovered_since_inject_s
    convergence_s                 = recovery.convergence_s (kept from version 1)
    verdicts[]                    name, ok, message, counts, examples (from the checkers)
    counts                        ops, ok, fail, unknown, applied_rows, kafka_records
    samples[]                     live samples every ~1 s (t_us, t_s, phase, sent, acked, errors, applied,
                                  consumer_lag); empty for runs without a sampler
    meta                          the history's meta record, verbatim
    outcome                       {outcome, reason, exit} of the run (``results_of`` only: a finished run)
    schedule                      a randomised schedule's replay document (seed, profile, steps; its own
                                  format, :func:`chaos.schedules.replay_document`); only for such runs
    gameday                       {outcome, reason, target, scenario_source, plan, command}; only for
                                  runs of ``gameday run``

Which keys are sure to be there: :func:`~chaos.report.results.load_results` accepts any file with
``phases`` and ``verdicts`` (version 1 files, and ``compare`` reads hand-made ones), so those two are
the only required keys of :class:`Results`; ``build_results`` writes every other key too, except
``outcome``, ``schedule`` and ``gameday``. Parts that older or hand-made documents carry only in part
(phase figures, recovery, counts, a fault's fields) are ``total=False``; the records every writer has
always written whole (a verdict, a sample, versions, throughput, outcome, gameday) are not. A value that
is free-form by nature stays ``dict[str, Any]``: a verdict's counts and examples (per checker), a fault's
resolved target (per fault), the load spec, ``meta`` and the schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, Required, TypedDict, cast

__all__ = [
    "Counts",
    "FaultRecord",
    "FaultTarget",
    "GamedayRecord",
    "PhaseFigures",
    "Recovery",
    "Results",
    "RunOutcome",
    "Sample",
    "Throughput",
    "VerdictRecord",
    "Versions",
    "as_results",
]


class PhaseFigures(TypedDict, total=False):
    """``phases[name]``: :meth:`chaos.checkers.PhaseStats.to_dict` (all of version 1) plus the window."""

    name: str
    ops: int
    ok: int
    fail: int
    unknown: int
    error_rate: float
    duration_s: float
    throughput_ok_per_s: float
    p50_ms: float | None  # latencies of ok ops from the intended start; None without an ok op
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    offered_per_s: float  # version 2 on
    start_us: int | None
    end_us: int | None
    start_s: float | None
    end_s: float | None


class Throughput(TypedDict):
    """``throughput``: over the whole run (version 2 on)."""

    window_s: float
    offered_per_s: float
    ok_per_s: float
    min_ok_per_s: int | None  # acknowledgements in the worst / best whole 1 s window; None: shorter run
    max_ok_per_s: int | None
    min_ok_at_s: float | None


class FaultTarget(TypedDict, total=False):
    """What a fault acts on, as :func:`chaos.report.live.fault_label` reads it from a fault's description
    (:meth:`chaos.faults.Fault.describe`) or a results document's fault."""

    target: str
    links: str | list[str]
    node: str
    resolved: dict[str, Any]  # per fault: node(s), links, rules, backend, ...


class FaultRecord(FaultTarget, total=False):
    """``faults[]``: the fault's description (its own parameters too, which differ per fault and are not
    listed here) and its window."""

    name: Required[str]
    start_us: int
    end_us: int | None  # None: never healed
    start_s: float | None
    end_s: float | None
    duration_s: float | None


class Recovery(TypedDict, total=False):
    """``recovery`` (version 2 on; ``build_results`` writes every key)."""

    heal_us: int | None
    convergence_s: float | None
    convergence_bound_s: float | None
    availability_recovered_s: float | None
    availability_recovered_since_inject_s: float | None
    normal_p99_ms: float | None
    window_s: float


class VerdictRecord(TypedDict):
    """``verdicts[]``: :meth:`chaos.checkers.Verdict.to_dict`."""

    name: str
    ok: bool
    message: str
    counts: dict[str, Any]  # per checker
    examples: list[dict[str, Any]]  # per checker: a few offending events


class Counts(TypedDict, total=False):
    """``counts``: ok, fail and unknown from version 2 on; applied_rows and kafka_records only when the
    run read its ground truth."""

    ops: int
    ok: int
    fail: int
    unknown: int
    applied_rows: int
    kafka_records: int


class Sample(TypedDict):
    """``samples[]``: what the run's sampler saw about once a second."""

    t_us: int
    t_s: NotRequired[float | None]  # added by build_results when t_us is there
    phase: str
    sent: int
    acked: int
    errors: int
    applied: int | None
    consumer_lag: int | None


class Versions(TypedDict):
    """``versions`` (version 2 on)."""

    suite: str
    pipeline: str | None  # the tag of the pipeline's image
    images: dict[str, str]  # role -> image reference


class RunOutcome(TypedDict):
    """``outcome``: how the run ended (:class:`chaos.run.RunResult`)."""

    outcome: str  # passed, failed, aborted, not steady, interrupted
    reason: str | None
    exit: int


class GamedayRecord(TypedDict):
    """``gameday``: written by ``gameday run`` (:mod:`chaos.gameday.runner`)."""

    outcome: str
    reason: str | None
    target: str
    scenario_source: str
    plan: list[str]
    command: str


class Results(TypedDict, total=False):
    """The ``results.json`` document (see the module docstring)."""

    schema: str
    schema_version: int
    experiment: str | None
    run_id: str | None
    ok: bool
    failed: list[str]
    defects: list[str]
    seed: int | None
    started_at_us: int | None
    started_at: str | None
    t0_us: int
    wall_s: float | None
    pipeline: str | None
    versions: Versions
    load: dict[str, Any] | None
    phases: Required[dict[str, PhaseFigures]]
    throughput: Throughput
    faults: list[FaultRecord]
    recovery: Recovery
    convergence_s: float | None
    verdicts: Required[list[VerdictRecord]]
    counts: Counts
    samples: list[Sample]
    meta: dict[str, Any]
    outcome: RunOutcome
    schedule: dict[str, Any]
    gameday: GamedayRecord


def as_results(doc: Mapping[str, Any]) -> Results:
    """``doc`` typed as the results document, unchanged and unchecked at run time: for a document from
    where mypy cannot follow it (a parsed ``results.json``; :meth:`chaos.run.RunResult.to_dict`, which is
    declared ``dict[str, Any]``; :attr:`chaos.run.RunResult.extra`, more sections of the document)."""
    return cast("Results", doc)
