"""An experiment: the run protocol (:mod:`chaos.run`) with the shape pytest experiments use.

    exp = experiment(defects=("acks1",))        # the pytest fixture makes one
    result = exp.run(fault=KillAndRestart(LeaderOf(0)), during_s=8, budgets=RECOVER)
    result.assert_ok()

``run`` deploys a fresh pipeline, drives the load (warm-up, before), holds the fault (a Fault for
``during_s`` seconds, or a Schedule on its own timeline), heals, drives load after, and then checks every
invariant against ground truth; the artefacts land in ``artefacts``. It holds no logic of its own: the
protocol is :class:`chaos.run.Run`, shared with game days and the random schedules.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chaos.checkers import Budget
from chaos.config import Settings
from chaos.env import Environment
from chaos.faults import Fault, Schedule, Step
from chaos.faults.catalogue import spec_of
from chaos.report.live import Progress
from chaos.run import Budgets, LocalTarget, Observer, Observers, Plan, Run, RunResult
from chaos.workload import LoadSpec

ExperimentResult = RunResult  # the name experiments and reports have always used


class Experiment:
    """One experiment run against ``env``: deploys a fresh pipeline (optionally with defects)."""

    def __init__(self, env: Environment, settings: Settings, name: str, *, defects: tuple[str, ...] = (),
                 load: LoadSpec | None = None, artefacts: Path | None = None, observer: Observer | None = None) -> None:
        self.env = env
        self.settings = settings
        self.name = name
        self.defects = tuple(defects)
        self.load = load or LoadSpec()
        self.artefacts = artefacts or settings.report_dir / name
        self.seed = settings.seed or int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "big") ^ time.time_ns()
        self.schedule_record: dict[str, Any] | None = None  # copied into results.json as "schedule"
        self.observer = observer  # besides the progress lines (gameday adds its journal)

    def plan(self, fault: Fault | Schedule | None = None, *, warmup_s: float = 4.0, before_s: float = 5.0,
             during_s: float = 8.0, after_s: float = 5.0, budgets: dict[str, Budget] | None = None,
             convergence_bound_s: float | None = None) -> Plan:
        if isinstance(fault, Schedule):
            method = fault
        elif fault is not None:
            method = Schedule([Step(0.0, fault, during_s, spec=spec_of(fault))])
        else:
            method = Schedule([])
        return Plan(name=self.name, load=self.load, warmup_s=warmup_s, before_s=before_s, after_s=after_s,
                    method=method, budgets=Budgets(phases=dict(budgets or {})), defects=self.defects,
                    convergence_bound_s=convergence_bound_s, source="experiment")

    def run(self, *, fault: Fault | Schedule | None = None, warmup_s: float = 4.0, before_s: float = 5.0,
            during_s: float = 8.0, after_s: float = 5.0, budgets: dict[str, Budget] | None = None,
            convergence_bound_s: float | None = None) -> RunResult:
        plan = self.plan(fault, warmup_s=warmup_s, before_s=before_s, during_s=during_s, after_s=after_s,
                         budgets=budgets, convergence_bound_s=convergence_bound_s)
        progress = Progress(self.name)
        observer = progress if self.observer is None else Observers(progress, self.observer)
        run = Run(LocalTarget(self.env), plan, self.settings, artefacts=self.artefacts, observer=observer,
                  seed=self.seed, raise_errors=True, schedule_record=self.schedule_record)
        return run.execute()


def summary_markdown(result: RunResult) -> str:
    """The experiment's markdown summary (as written to ``summary.md``)."""
    from chaos.report.markdown import experiment_markdown

    return experiment_markdown(result.to_dict())
