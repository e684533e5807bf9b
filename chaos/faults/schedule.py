"""A fault schedule: faults injected and healed at set times, every one healed whatever happens.

    schedule = Schedule([
        Step(at_s=0, fault=Latency("ingest-kafka-*", 200), duration_s=10),
        Step(at_s=5, fault=Pause("controller"), duration_s=3),
    ])
    schedule.validate(env)   # every fault checked before anything is injected
    timeline = schedule.run(env)

This is the one executor of fault timelines: experiments, game-day methods and the random schedules all
run through :meth:`Schedule.run` (the run protocol, :mod:`chaos.run`, passes hooks for its journal,
live view and budget checks). ``run`` blocks until the last heal. The waits between steps are the
schedule's own clock (when to act), not waits for a state; ``stop`` (a threading.Event) ends the
schedule early, and an exception raised by ``tick`` (a breached budget) ends it too; whatever is still
active is healed in a ``finally``, in reverse order of injection, and a heal that fails does not keep the
others from running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault

if TYPE_CHECKING:
    from chaos.env import Environment

log = logging.getLogger("chaos.faults")
TICK_S = 0.1  # how often ``tick`` is called while the schedule waits for its next step


@dataclass(frozen=True)
class Step:
    at_s: float
    fault: Fault
    duration_s: float
    spec: dict[str, Any] | None = field(default=None, compare=False)  # as written (journal, plan, report)

    def __post_init__(self) -> None:
        if self.at_s < 0 or self.duration_s < 0:
            raise ValueError(f"step of {self.fault.name}: at_s and duration_s must be >= 0 "
                             f"(got {self.at_s}, {self.duration_s})")

    def label(self) -> str:
        """``kill leader:0 @0s for 6s``: the step as written."""
        spec = self.spec or {}
        params = self.fault.params()
        what = spec.get("target") or spec.get("links") or params.get("target") or params.get("links") or ""
        name = spec.get("fault", self.fault.name)
        return " ".join(str(x) for x in (name, what, f"@{self.at_s:g}s for {self.duration_s:g}s") if x != "")

    def describe(self) -> str:
        spec = self.spec or {"fault": self.fault.name, **self.fault.params()}
        params = ", ".join(f"{k}={v!r}" for k, v in spec.items() if k not in ("fault", "at_s", "duration_s"))
        return f"at {self.at_s:g}s for {self.duration_s:g}s: {spec.get('fault', self.fault.name)}({params})"


Hook = Callable[[int, Step], None]


class Schedule:
    def __init__(self, steps: Sequence[Step]) -> None:
        if len({id(s.fault) for s in steps}) != len(steps):
            raise ValueError("a fault object can appear only once in a schedule; make one per step")
        self.steps = sorted(steps, key=lambda s: s.at_s)

    @property
    def length_s(self) -> float:
        return max((s.at_s + s.duration_s for s in self.steps), default=0.0)

    def validate(self, env: Environment) -> None:
        for step in self.steps:
            step.fault.validate(env)

    def events(self) -> list[tuple[float, str, int]]:
        """(offset, "inject" | "heal", step index), in the order they happen. At one instant: heals of
        earlier steps first, then injects, then heals of zero-length steps."""
        evs = [(s.at_s, 1, "inject", i) for i, s in enumerate(self.steps)]
        evs += [(s.at_s + s.duration_s, 0 if s.duration_s > 0 else 2, "heal", i) for i, s in enumerate(self.steps)]
        return [(at, action, i) for at, _, action, i in sorted(evs, key=lambda e: (e[0], e[1]))]

    def run(self, env: Environment, stop: threading.Event | None = None, *, tick: Callable[[], None] | None = None,
            on_injecting: Hook | None = None, on_inject: Hook | None = None,
            on_heal: Callable[[int, Step, float, BaseException | None], None] | None = None) -> list[dict[str, Any]]:
        """Run the schedule; returns the timeline (``{"t_s", "action", ...describe()}`` per event).

        ``tick`` is called about every 0.1 s while waiting (it may raise to end the schedule: everything
        active is then healed and the exception propagates); ``on_injecting(i, step)`` just before and
        ``on_inject(i, step)`` just after each injection; ``on_heal(i, step, seconds, error)`` after each
        heal, successful or not."""
        self.validate(env)
        stop = stop or threading.Event()
        t0 = time.monotonic()
        active: list[int] = []
        timeline: list[dict[str, Any]] = []

        def heal(i: int) -> None:
            step = self.steps[i]
            begun = time.monotonic()
            error: BaseException | None = None
            try:
                step.fault.heal(env)
            except Exception as exc:
                error = exc
                log.exception("healing %s failed", step.fault.name)
            active.remove(i)
            timeline.append({"t_s": round(time.monotonic() - t0, 3), "action": "heal", **step.fault.describe()})
            if on_heal is not None:
                on_heal(i, step, time.monotonic() - begun, error)

        try:
            for at, action, i in self.events():
                while True:
                    left = at - (time.monotonic() - t0)
                    if tick is not None:
                        tick()
                    if left <= 0:
                        break
                    if stop.wait(min(left, TICK_S) if tick is not None else left):
                        return timeline
                step = self.steps[i]
                if action == "inject":
                    if on_injecting is not None:
                        on_injecting(i, step)
                    active.append(i)
                    step.fault.inject(env)
                    timeline.append({"t_s": round(time.monotonic() - t0, 3), "action": "inject",
                                     **step.fault.describe()})
                    if on_inject is not None:
                        on_inject(i, step)
                elif i in active:
                    heal(i)
        finally:
            for i in reversed(list(active)):
                heal(i)
        return timeline
