"""What happens while an experiment runs: a sampler for the plots and a rate-limited progress line.

:class:`Monitor` runs in a daemon thread beside the load generator. About once a second it records a
sample (events sent, acknowledged, failed; rows applied in Postgres; the projector group's consumer lag)
that ends up in ``results.json`` (``samples``) and in the page's backlog plot. It also writes a progress
line: one when the phase changes, one when the fault is injected and healed, and one every
``interval_s`` seconds in between (5 s; 10 s when ``CI`` is set), so a long run shows what it is doing
without flooding a CI log. Where the line goes is set once per process with :func:`set_progress` (the
pytest plugin sends it to the terminal; by default it goes to the ``chaos.progress`` logger).

Probing the pipeline is best effort: a probe that fails or times out (a broker is down, the database is
paused) records ``null`` and never disturbs the experiment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Monitor", "fault_label", "pipeline_probe", "progress_interval_s", "set_progress"]

log = logging.getLogger("chaos.progress")

ProgressSink = Callable[[str], None]
_SINK: ProgressSink | None = None
_INTERVAL_S: float | None = None
PROBE_TIMEOUT_S = 2.0


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


def fault_label(name: str, detail: Mapping[str, Any] | None = None) -> str:
    """``kill kafka-2``, ``link_down projector-pg``: the fault and what it resolved to (or its target)."""
    detail = detail or {}
    resolved = detail.get("resolved")
    parts: list[str] = []
    if isinstance(resolved, Mapping) and resolved:
        for k in _LABEL_KEYS:  # what the fault acts on; rule tables, chains, backends and flags are left out
            v = resolved.get(k)
            if isinstance(v, list | tuple) and v and all(isinstance(x, str) for x in v):
                parts.append(",".join(v))
            elif isinstance(v, str) and v:
                parts.append(v)
    else:
        for key in ("target", "links", "node"):
            if detail.get(key):
                parts.append(str(detail[key]))
                break
    label = " ".join([name, *parts])
    return label if len(label) <= FAULT_LABEL_MAX else label[: FAULT_LABEL_MAX - 1] + "…"


def now_us() -> int:
    return time.time_ns() // 1000


class _Fault(Protocol):
    name: str
    resolved: dict[str, Any]
    injected_at: float | None


class _Load(Protocol):
    phase: str
    issued: int
    counts: Any


def pipeline_probe(bootstrap: str, group: str, topic: str, conninfo: str, schema: str) -> Callable[[], dict[str, Any]]:
    """A probe reading the projector group's consumer lag and the number of applied rows, directly."""
    from chaos import truth  # heavy clients; only where a live pipeline is probed

    def probe() -> dict[str, Any]:
        out: dict[str, Any] = {"consumer_lag": None, "applied": None}
        with contextlib.suppress(Exception):
            out["applied"] = truth.count_applied(conninfo, schema)
        with contextlib.suppress(Exception):
            out["consumer_lag"] = truth.group_lag(bootstrap, group, topic, PROBE_TIMEOUT_S)
        return out

    return probe


class Monitor:
    """Samples a running experiment and reports progress (see the module docstring).

    Two daemon threads: the sampler probes the pipeline every ``sample_every_s`` (a probe may block for
    seconds while a broker is down), and the reporter looks at the phase and the active faults every
    ``tick_s`` and writes the lines, so a slow probe never delays a line.
    """

    def __init__(self, name: str, load: _Load, *, active: Callable[[], Sequence[_Fault]] | None = None,
                 probe: Callable[[], Mapping[str, Any]] | None = None, events_per_op: int = 1,
                 sample_every_s: float = 1.0, interval_s: float | None = None, tick_s: float = 0.25) -> None:
        self.name = name
        self.load = load
        self.active = active or (lambda: ())
        self.probe = probe
        self.events_per_op = events_per_op
        self.sample_every_s = sample_every_s
        self.interval_s = progress_interval_s() if interval_s is None else interval_s
        self.tick_s = tick_s
        self.samples: list[dict[str, Any]] = []
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._faults: dict[int, _Fault] = {}  # id -> fault, active at the last look
        self._healed: tuple[str, float] | None = None  # the last fault healed, and when (monotonic)

    # -- control ---------------------------------------------------------------------------------------

    def start(self) -> Monitor:
        self._started = time.monotonic()
        for target, role in ((self._sampler, "sampler"), (self._reporter, "reporter")):
            t = threading.Thread(target=target, name=f"chaos-{role}-{self.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, event: str = "done") -> list[dict[str, Any]]:
        """Stop (bounded wait), take a last sample, write a last line; returns the samples."""
        self._stop.set()
        deadline = time.monotonic() + 4 * PROBE_TIMEOUT_S + 2
        alive = False
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            alive = alive or t.is_alive()
        if self._threads:
            if not alive:
                self._sample()
            _emit(self.line(event))
        self._threads = []
        return list(self.samples)

    # -- the threads -----------------------------------------------------------------------------------

    def _sampler(self) -> None:
        while not self._stop.is_set():
            begun = time.monotonic()
            try:
                self._sample()
            except Exception as exc:  # never let the monitor take the experiment down
                log.debug("monitor sample: %r", exc)
            if self._stop.wait(max(0.0, self.sample_every_s - (time.monotonic() - begun))):
                return

    def _reporter(self) -> None:
        phase: str | None = None
        last_line = float("-inf")
        while True:
            try:
                now = time.monotonic()
                current = self.load.phase
                faults = {id(f): f for f in self.active()}
                events = [f"fault {self._label(f)} injected" for k, f in faults.items() if k not in self._faults]
                events += [f"fault {self._label(f)} healed" for k, f in self._faults.items() if k not in faults]
                if current != phase:
                    events.insert(0, f"phase {current}")
                for k, f in self._faults.items():
                    if k not in faults:
                        self._healed = (self._label(f), now)
                phase, self._faults = current, faults
                if self._stop.is_set():
                    return
                if events:
                    _emit(self.line(", ".join(events)))
                    last_line = time.monotonic()
                elif self.interval_s > 0 and now - last_line >= self.interval_s:
                    _emit(self.line())
                    last_line = time.monotonic()
            except Exception as exc:
                log.debug("monitor: %r", exc)
            if self._stop.wait(self.tick_s):
                return

    def _counts(self) -> dict[str, Any]:
        counts = self.load.counts
        return {"t_us": now_us(), "phase": self.load.phase, "sent": int(self.load.issued) * self.events_per_op,
                "acked": int(counts.get("ok", 0)),
                "errors": int(counts.get("fail", 0)) + int(counts.get("unknown", 0))}

    def _sample(self) -> None:
        s: dict[str, Any] = {**self._counts(), "applied": None, "consumer_lag": None}
        if self.probe is not None:
            with contextlib.suppress(Exception):
                s.update({k: v for k, v in self.probe().items() if k in ("applied", "consumer_lag")})
        self.samples.append(s)

    @staticmethod
    def _label(f: _Fault) -> str:
        return fault_label(f.name, {"resolved": f.resolved})

    def line(self, event: str | None = None) -> str:
        """The progress line: live counts, the latest probe's applied rows and lag."""
        c = self._counts()
        last = self.samples[-1] if self.samples else {}
        elapsed = time.monotonic() - self._started
        head = f"[chaos] {self.name} {elapsed:5.1f}s {c['phase']}" + (f" ({event})" if event else "")
        parts = [head]
        for f in list(self._faults.values()):
            since = f" {time.time() - f.injected_at:.1f}s" if f.injected_at is not None else ""
            parts.append(f"fault {self._label(f)} active{since}")
        if not self._faults and self._healed is not None:
            parts.append(f"fault {self._healed[0]} healed {time.monotonic() - self._healed[1]:.1f}s ago")
        parts.append(f"sent {c['sent']} acked {c['acked']} errors {c['errors']}")
        applied, lag = last.get("applied"), last.get("consumer_lag")
        if applied is not None or lag is not None:
            parts.append(f"applied {'-' if applied is None else applied} lag {'-' if lag is None else lag}")
        return " | ".join(parts)
