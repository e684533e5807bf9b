"""What one run does: the plan that the run protocol (:mod:`chaos.run.protocol`) executes.

The same plan type serves the pytest experiments (built by :class:`chaos.experiment.Experiment`), game-day
scenarios (parsed from TOML or Python by :mod:`chaos.gameday.scenario`) and the random schedules::

    load            the workload (rate, keys, batching)
    warmup/before   load before anything is judged, then the steady state that is judged
    probes          the steady-state hypothesis: checked before the method (no injection unless it holds),
                    during it (``abort`` probes stop the method) and after it (the run waits for it)
    method          faults on a timeline (a :class:`chaos.faults.Schedule`)
    budgets         continuous ones (breach -> abort, heal at once) and per-phase ones (a verdict)
    after           load after the heal
    rollbacks       run after the method whatever happened (after every fault is healed)
    verify          quiesce, read ground truth, check every invariant (a freshly deployed local pipeline)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.checkers import Budget
from chaos.faults import Schedule
from chaos.workload import LoadSpec

PROBE_TYPES = {
    "entry_serving": "the entry service's gRPC health check answers SERVING",
    "error_rate": "client errors over the last window_s seconds <= max (a fraction, 0.01 = 1%)",
    "p99_latency": "p99 latency of acknowledged operations over the last window_s seconds <= max (ms)",
    "consumer_lag": "the consumer groups' lag <= max (records)",
    "full_isr": "every partition of the pipeline's topics has a leader and a full ISR",
    "brokers": "at least max (default 3) brokers are registered",
}
PROBE_ALIASES = {"ingest_serving": "entry_serving"}  # the name before the pipeline became an adapter
PROBES_NEEDING_MAX = ("error_rate", "p99_latency", "consumer_lag")
LOAD_PROBES = ("error_rate", "p99_latency")  # computed from the history, not by asking the pipeline
DURING = ("abort", "watch", "skip")
ROLLBACKS = {
    "wait_recovered": "wait (bounded) until every node runs, all brokers are registered and the topics have a "
                      "full ISR",
    "reset_links": "remove every toxic and enable every link of the target's Toxiproxy",
    "ensure_running": "start or unpause the nodes listed in `nodes`",
}


@dataclass
class ProbeStatus:
    """A probe's latest reading."""

    ok: bool | None  # None: not known yet
    value: str
    at: float = 0.0  # time.monotonic() of the reading


@dataclass(frozen=True)
class Probe:
    type: str
    name: str
    max: float | None = None
    window_s: float = 3.0
    during: str = "watch"

    def describe(self) -> str:
        bound = "" if self.max is None else f" <= {self.max:g}"
        win = f" over {self.window_s:g} s" if self.type in LOAD_PROBES else ""
        return f"{self.name}: {self.type}{bound}{win} (during: {self.during})"


@dataclass(frozen=True)
class Rollback:
    action: str
    nodes: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.action + (f" {', '.join(self.nodes)}" if self.nodes else "")


@dataclass(frozen=True)
class Budgets:
    window_s: float = 3.0
    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    max_consumer_lag: int | None = None
    phases: dict[str, Budget] = field(default_factory=dict)

    def continuous(self) -> bool:
        return any(v is not None for v in (self.max_error_rate, self.max_p99_ms, self.max_consumer_lag))


@dataclass
class Plan:
    name: str
    description: str = ""
    load: LoadSpec = field(default_factory=LoadSpec)
    warmup_s: float = 3.0
    before_s: float = 4.0
    after_s: float = 5.0
    probes: list[Probe] = field(default_factory=list)
    method: Schedule = field(default_factory=lambda: Schedule([]))
    budgets: Budgets = field(default_factory=Budgets)
    rollbacks: list[Rollback] = field(default_factory=list)
    fresh_pipeline: bool = True
    defects: tuple[str, ...] = ()
    source: str = ""
    convergence_bound_s: float | None = None  # None: the convergence_bound_s setting
    wait_after_for_steady: bool = True  # with probes: the after phase lasts until they pass (bounded)

    @property
    def method_s(self) -> float:
        return self.method.length_s

    def describe(self, local: bool = True) -> list[str]:
        """The plan in words (``gameday run --dry-run`` prints it); ``local`` False: on an external target."""
        lines = [f"scenario {self.name}" + (f": {self.description}" if self.description else ""),
                 f"  source: {self.source or '(python object)'}"]
        ld = self.load
        lines.append(f"  load: {ld.rate:g} calls/s x {ld.batch_size} event(s), {ld.keys} keys, "
                     f"{ld.max_in_flight} in flight at most")
        if not local:
            lines.append("  pipeline: the one the target file names (nothing deployed; no ground-truth check)")
        elif self.fresh_pipeline:
            lines.append("  pipeline: deploy a fresh one (own topics, groups, schema)"
                         + (f" with defects {', '.join(self.defects)}" if self.defects else ""))
        lines.append(f"  timeline: warm-up {self.warmup_s:g}s, before {self.before_s:g}s, method "
                     f"{self.method_s:g}s, after >= {self.after_s:g}s")
        lines.append("  steady state (before, during, after):")
        lines += [f"    - {p.describe()}" for p in self.probes] or ["    (none)"]
        lines.append("  method:")
        lines += [f"    - {s.describe()}" for s in self.method.steps] or ["    (none)"]
        b = self.budgets
        if b.continuous():
            parts = [f"error rate <= {b.max_error_rate:.0%}" if b.max_error_rate is not None else "",
                     f"p99 <= {b.max_p99_ms:g} ms" if b.max_p99_ms is not None else "",
                     f"consumer lag <= {b.max_consumer_lag}" if b.max_consumer_lag is not None else ""]
            lines.append(f"  budgets (abort when breached, over {b.window_s:g} s): "
                         + ", ".join(p for p in parts if p))
        for ph, bud in b.phases.items():
            lines.append(f"  budget of phase {ph}: error rate <= {bud.max_error_rate}, p99 <= {bud.max_p99_ms} ms")
        lines.append("  rollbacks (always): heal every fault"
                     + "".join(f"; {r.describe()}" for r in self.rollbacks))
        return lines
