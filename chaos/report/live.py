"""What happens while an experiment runs: a rate-limited progress line, and how a fault is labelled.

:class:`Progress` is the run protocol's observer under pytest (:mod:`chaos.run.protocol`): it writes a
line when the phase changes, when a fault is injected and healed, and every ``interval_s`` seconds in
between (5 s; 10 s when ``CI`` is set), so a long run shows what it is doing without flooding a CI log.
The samples behind the report's plots (events sent, acknowledged, failed; rows applied; consumer lag,
about once a second) are taken by the run itself. Where the line goes is set once per process with
:func:`set_progress` (the pytest plugin sends it to the terminal; by default it goes to the
``chaos.progress`` logger).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from chaos.report.schema import FaultTarget

__all__ = ["Progress", "fault_label", "progress_interval_s", "set_progress"]

log = logging.getLogger("chaos.progress")

ProgressSink = Callable[[str], None]
_SINK: ProgressSink | None = None
_INTERVAL_S: float | None = None


def progress_interval_s() -> float:
    """Seconds between periodic progress lines: set by :func:`set_progress`, else 5 (10 with ``CI`` set)."""
    if _INTERVAL_S is not None:
        return _INTERVAL_S
    return 10.0 if os.environ.get("CI") else 5.0


def set_progress(sink: ProgressSink | None, interval_s: float | None = None) -> None:
    """Send progress lines to ``sink`` (None: the ``chaos.progress`` logger); ``interval_s`` 0 = only
    phase and fault changes."""
    global _SINK, _INTERVAL_S
    _SINK = sink
    _INTERVAL_S = interval_s


def _emit(line: str) -> None:
    sink = _SINK
    if sink is None:
        log.info("%s", line)
        return
    try:
        sink(line)
    except Exception:  # a broken terminal must not break an experiment
        log.info("%s", line)


FAULT_LABEL_MAX = 80  # characters of a fault's label in a progress line


# The keys of a fault's ``resolved`` that name what it acts on, in the order a label shows them.
_LABEL_KEYS = ("node", "nodes", "links", "bridge", "a", "b", "left", "right", "table", "applications")
# Without a resolved target: the first of these keys of the fault's description that it has.
_TARGET_KEYS: tuple[Literal["target", "links", "node"], ...] = ("target", "links", "node")


def fault_label(name: str, detail: FaultTarget | None = None) -> str:
    """``kill kafka-2``, ``link_down projector-pg``: the fault and what it resolved to (or its target);
    ``detail`` is a fault's description or a results document's fault."""
    detail = detail or {}
    resolved: dict[str, Any] | None = detail.get("resolved")
    parts: list[str] = []
    if isinstance(resolved, Mapping) and resolved:
        for k in _LABEL_KEYS:  # what the fault acts on; rule tables, chains, backends and flags are left out
            v = resolved.get(k)
            if isinstance(v, list | tuple) and v and all(isinstance(x, str) for x in v):
                parts.append(",".join(v))
            elif isinstance(v, str) and v:
                parts.append(v)
    else:
        for key in _TARGET_KEYS:
            if detail.get(key):
                parts.append(str(detail[key]))
                break
    label = " ".join([name, *parts])
    return label if len(label) <= FAULT_LABEL_MAX else label[: FAULT_LABEL_MAX - 1] + "…"


class Progress:
    """The progress lines of one run (see the module docstring); an observer of :class:`chaos.run.Run`."""

    def __init__(self, name: str, interval_s: float | None = None) -> None:
        self.name = name
        self.interval_s = progress_interval_s() if interval_s is None else interval_s
        self._started = time.monotonic()
        self._last_line = float("-inf")
        self._run: Any = None
        self._healed: tuple[str, float] | None = None

    def start(self, run: Any) -> None:
        self._run = run
        self._started = time.monotonic()

    def event(self, kind: str, text: str, outcome: str = "ok", **detail: Any) -> None:
        if kind in ("phase", "inject", "heal", "abort", "stop", "verify") and outcome != "started":
            if kind == "heal":
                self._healed = (str(detail.get("step", "")), time.monotonic())
            _emit(self.line(text))
            self._last_line = time.monotonic()

    def tick(self, run: Any) -> None:
        if self.interval_s > 0 and time.monotonic() - self._last_line >= self.interval_s:
            _emit(self.line())
            self._last_line = time.monotonic()

    def finish(self, run: Any, result: Any) -> None:
        pass

    def stop(self, run: Any, result: Any) -> None:
        _emit(self.line(f"done: {result.outcome}"))

    def line(self, event: str | None = None) -> str:
        """The progress line: live counts, the latest sample's applied rows and lag."""
        run = self._run
        c = run.counts() if run is not None else {}
        phase = run.phase if run is not None else "-"
        head = f"[chaos] {self.name} {time.monotonic() - self._started:5.1f}s {phase}"
        head += f" ({event})" if event else ""
        parts = [head]
        faults = list(active_faults_of(run)) if run is not None else []
        for f in faults:
            since = f" {time.time() - f.injected_at:.1f}s" if f.injected_at is not None else ""
            parts.append(f"fault {fault_label(f.name, {'resolved': f.resolved})} active{since}")
        if not faults and self._healed is not None:
            parts.append(f"fault {self._healed[0]} healed {time.monotonic() - self._healed[1]:.1f}s ago")
        parts.append(f"sent {c.get('sent', 0)} acked {c.get('acked', 0)} errors {c.get('errors', 0)}")
        applied, lag = c.get("applied"), c.get("lag")
        if applied is not None or lag is not None:
            parts.append(f"applied {'-' if applied is None else applied} lag {'-' if lag is None else lag}")
        return " | ".join(parts)


def active_faults_of(run: Any) -> list[Any]:
    from chaos.faults import active_faults

    return active_faults(run.env)
