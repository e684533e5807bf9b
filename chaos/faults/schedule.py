"""A fault schedule: faults injected and healed at set times, every one healed whatever happens.

    schedule = Schedule([
        Step(at_s=0, fault=Latency("ingest-kafka-*", 200), duration_s=10),
        Step(at_s=5, fault=Pause("controller"), duration_s=3),
    ])
    schedule.validate(env)   # every fault checked before anything is injected
    timeline = schedule.run(env)

``run`` blocks until the last heal. The sleeps between steps are the schedule's own clock (when to
act), not waits for a state; ``stop`` (a threading.Event) ends the schedule early, and whatever is
still active is healed in a ``finally``, in reverse order of injection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault

if TYPE_CHECKING:
    from chaos.env import Environment


@dataclass(frozen=True)
class Step:
    at_s: float
    fault: Fault
    duration_s: float

    def __post_init__(self) -> None:
        if self.at_s < 0 or self.duration_s < 0:
            raise ValueError(f"step of {self.fault.name}: at_s and duration_s must be >= 0 "
                             f"(got {self.at_s}, {self.duration_s})")


class Schedule:
    def __init__(self, steps: Sequence[Step]) -> None:
        if len({id(s.fault) for s in steps}) != len(steps):
            raise ValueError("a fault object can appear only once in a schedule; make one per step")
        self.steps = sorted(steps, key=lambda s: s.at_s)

    def validate(self, env: Environment) -> None:
        for step in self.steps:
            step.fault.validate(env)

    def run(self, env: Environment, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """Run the schedule; returns the timeline (``{"t_s", "action", "fault", ...}`` per event)."""
        self.validate(env)
        stop = stop or threading.Event()
        # at one instant: heals of earlier steps first, then injects, then heals of zero-length steps
        events = sorted([(s.at_s, 1, "inject", s) for s in self.steps]
                        + [(s.at_s + s.duration_s, 0 if s.duration_s > 0 else 2, "heal", s) for s in self.steps],
                        key=lambda e: (e[0], e[1]))
        t0 = time.monotonic()
        active: list[Fault] = []
        timeline: list[dict[str, Any]] = []
        try:
            for at, _, action, step in events:
                if stop.wait(max(0.0, at - (time.monotonic() - t0))):
                    break
                if action == "inject":
                    step.fault.inject(env)
                    active.append(step.fault)
                else:
                    step.fault.heal(env)
                    active.remove(step.fault)
                timeline.append({"t_s": round(time.monotonic() - t0, 3), "action": action, **step.fault.describe()})
        finally:
            for fault in reversed(active):
                fault.heal(env)
                timeline.append({"t_s": round(time.monotonic() - t0, 3), "action": "heal", **fault.describe()})
        return timeline
