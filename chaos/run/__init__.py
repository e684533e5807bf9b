"""One run protocol for pytest experiments, game days and the random schedules.

:mod:`chaos.run.plan` says what a run does (load, phases, probes, the method, budgets, rollbacks),
:mod:`chaos.run.protocol` does it (:class:`Run`), and :mod:`chaos.run.targets` says where (the suite's own
environment, or an external one)."""

from chaos.run.plan import Budgets, Plan, Probe, ProbeStatus, Rollback
from chaos.run.protocol import (
    EXIT_ABORTED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_STEADY,
    EXIT_OK,
    EXIT_REFUSED,
    Abort,
    NullObserver,
    Observer,
    Observers,
    Run,
    RunResult,
    window_stats,
)
from chaos.run.targets import ExternalTargetView, LocalTarget

__all__ = [
    "EXIT_ABORTED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_NOT_STEADY", "EXIT_OK", "EXIT_REFUSED", "Abort",
    "Budgets", "ExternalTargetView", "LocalTarget", "NullObserver", "Observer", "Observers", "Plan", "Probe",
    "ProbeStatus", "Rollback", "Run", "RunResult", "window_stats",
]
