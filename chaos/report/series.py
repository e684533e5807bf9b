"""Time series derived from a history: windows of latency, outcomes, throughput and requests in flight.

Pure functions over :class:`~chaos.history.History` (no I/O). Both ``results.json`` (throughput per
second, recovery after heal) and the HTML plots are computed here, so the page and the file agree.

Conventions: times are integer microseconds since the epoch; a window ``[start, start + width)`` holds
the ops whose *intended* start falls inside it (latency and outcome series: an op belongs to the moment
it was due, so a stall shows up where it began) or whose *completion* falls inside it (throughput: when
acknowledgements really arrived). Percentiles are exact nearest-rank, as in :func:`chaos.checkers.phase_stats`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chaos.history import History, Op, Outcome
from chaos.stats import nearest_rank

__all__ = [
    "Window",
    "completion_rate",
    "in_flight",
    "nearest_rank",
    "nice_width_us",
    "time_span",
    "windows_by_intended",
]


def time_span(history: History) -> tuple[int, int]:
    """(first, last) instant of the run: first phase mark or intended start, last completion or fault end."""
    starts = [p.at_us for p in history.phases]
    ends: list[int] = []
    if history.ops:
        starts.append(min(op.intended_us for op in history.ops))
        ends.append(max(op.end_us if op.end_us is not None else op.start_us for op in history.ops))
    for w in history.faults:
        starts.append(w.start_us)
        ends.append(w.end_us if w.end_us is not None else w.start_us)
    if not starts:
        return (0, 0)
    t0 = min(starts)
    return (t0, max([t0, *ends]))


def nice_width_us(span_us: int, max_windows: int, minimum_us: int = 100_000) -> int:
    """The smallest width from 100 ms, 200 ms, 250 ms, 500 ms, 1 s, 2 s, 5 s, 10 s, ... (at least
    ``minimum_us``) that cuts ``span_us`` into at most ``max_windows`` windows."""
    steps = (1, 2, 2.5, 5)
    scale = 100_000
    while True:
        for s in steps:
            w = int(s * scale)
            if w >= minimum_us and span_us / w <= max_windows:
                return w
        scale *= 10


@dataclass
class Window:
    """The ops due in ``[start_us, start_us + width_us)``."""

    start_us: int
    width_us: int
    latencies_us: list[int] = field(default_factory=list)  # of ok ops, ascending once finished
    ok: int = 0
    fail: int = 0
    unknown: int = 0
    never_completed: int = 0

    @property
    def ops(self) -> int:
        return self.ok + self.fail + self.unknown

    @property
    def errors(self) -> int:
        return self.fail + self.unknown

    def percentile_ms(self, q: float) -> float | None:
        return nearest_rank(self.latencies_us, q) / 1000 if self.latencies_us else None


def windows_by_intended(ops: Iterable[Op], t0_us: int, t1_us: int, width_us: int) -> list[Window]:
    """Cut ``[t0, t1)`` into windows of ``width_us`` and file each op under the window it was due in.

    Ops due outside the span are ignored. Latencies are sorted ascending within each window.
    """
    n = max(1, -(-(t1_us - t0_us) // width_us))
    wins = [Window(t0_us + i * width_us, width_us) for i in range(n)]
    ok = Outcome.OK
    for op in ops:
        i = (op.intended_us - t0_us) // width_us
        if i < 0 or i >= n:
            continue
        w = wins[i]
        if op.outcome == ok:
            w.ok += 1
            if op.end_us is not None:
                w.latencies_us.append(op.end_us - op.intended_us)
        elif op.outcome == Outcome.FAIL:
            w.fail += 1
        else:
            w.unknown += 1
        if op.end_us is None:
            w.never_completed += 1
    for w in wins:
        w.latencies_us.sort()
    return wins


def completion_rate(ops: Iterable[Op], t0_us: int, t1_us: int, width_us: int) -> tuple[list[int], list[int]]:
    """Per window of ``width_us``: (ok ops completed, failed or unknown ops completed) in it."""
    n = max(1, -(-(t1_us - t0_us) // width_us))
    oks, errs = [0] * n, [0] * n
    ok = Outcome.OK
    for op in ops:
        end = op.end_us
        if end is None:
            continue
        i = (end - t0_us) // width_us
        if 0 <= i < n:
            if op.outcome == ok:
                oks[i] += 1
            else:
                errs[i] += 1
    return oks, errs


def in_flight(ops: Sequence[Op], instants_us: Sequence[int]) -> list[int]:
    """Ops due but not yet answered at each instant (ascending): the open loop's backlog.

    An op counts from its intended start until its completion (forever if it never completed).
    """
    due = sorted(op.intended_us for op in ops)
    done = sorted(op.end_us for op in ops if op.end_us is not None)
    out: list[int] = []
    i = j = 0
    for t in instants_us:
        while i < len(due) and due[i] <= t:
            i += 1
        while j < len(done) and done[j] <= t:
            j += 1
        out.append(max(0, i - j))
    return out
