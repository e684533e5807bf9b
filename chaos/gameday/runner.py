"""A game-day run: the one run protocol (:mod:`chaos.run.protocol`) watched by the live view and the journal.

The protocol does everything (deploy, steady-state hypothesis, the method with budgets and abort probes,
heal and rollbacks that always run, verification, the report); this module only shows it: the live
terminal view (:mod:`chaos.gameday.live`) and one journal line per action (:mod:`chaos.gameday.journal`),
and it adds the ``gameday`` section to ``results.json`` (outcome, reason, target, plan, command).

While healing, a second Ctrl-C is ignored (with a message) so the heal cannot be cut short. Exit status:
0 passed; 1 a verdict failed (steady state not restored, an invariant, a phase budget) or an error; 3
aborted (budget or abort probe); 4 not steady before the method (nothing injected); 130 interrupted. (2,
bad input refused before anything was done, is the command line's.)
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from chaos.config import Settings
from chaos.faults import active_faults
from chaos.gameday.journal import Journal
from chaos.gameday.live import LiveState, LiveView
from chaos.report.live import fault_label
from chaos.run import ExternalTargetView, LocalTarget, NullObserver, Plan, Run, RunResult

# how each kind of event changes the timeline (index into LiveState.timeline: warmup 0, before 1, steps, after)
_PHASE_STATUS = {"warmup": {0: "active"}, "before": {0: "done", 1: "active"}, "during": {1: "done"}}


class GamedayObserver:
    """The live view and the journal of one run (an observer of :class:`chaos.run.Run`)."""

    def __init__(self, plan: Plan, target: LocalTarget | ExternalTargetView, settings: Settings, journal: Journal,
                 *, out: TextIO | None = None, tty: bool | None = None,
                 on_deploy: Callable[[Any], None] | None = None) -> None:
        self.plan, self.target, self.journal, self.on_deploy = plan, target, journal, on_deploy
        self.state = LiveState(scenario=plan.name, target=target.name)
        self.view = LiveView(self.state, refresh_s=settings.gameday_refresh_s,
                             line_interval_s=settings.gameday_line_interval_s, out=out, tty=tty)
        steps = plan.method.steps
        self.state.timeline = ([{"label": f"warmup {plan.warmup_s:g}s"}, {"label": f"before {plan.before_s:g}s"}]
                               + [{"label": s.label(), "status": "planned"} for s in steps]
                               + [{"label": f"after >= {plan.after_s:g}s"}])

    def start(self, run: Run) -> None:
        self.state.probes = dict(run.probes)
        self.journal.also_to(run.artefacts / "journal.jsonl")
        self.journal.write("run", "started", plan=self.plan.describe(run.local), report=str(run.artefacts))
        self.view.start()

    def event(self, kind: str, text: str, outcome: str = "ok", **detail: Any) -> None:
        tl = self.state.timeline
        if kind == "phase":
            for i, status in {**_PHASE_STATUS, "after": {len(tl) - 1: "active"}}.get(text.split()[-1], {}).items():
                tl[i]["status"] = status
        if kind == "deploy" and self.on_deploy is not None and self.target.deployment is not None \
                and outcome == "ok" and "topics" in detail:
            self.on_deploy(self.target.deployment)
        if kind != "end" and outcome != "started":
            self.view.event(text)
        step = detail.pop("step", None)
        self.journal.write(kind, outcome, step=step, **detail)

    def tick(self, run: Run) -> None:
        st = self.state
        st.phase = run.phase
        st.counts = run.counts()
        st.window = dict(run.window)
        st.probes = dict(run.probes)
        for i, status in run.step_status.items():
            st.timeline[2 + i]["status"] = status
        b = self.plan.budgets
        parts = []
        if b.max_error_rate is not None:
            parts.append(f"errors <= {b.max_error_rate:.0%}")
        if b.max_p99_ms is not None:
            parts.append(f"p99 <= {b.max_p99_ms:,.0f} ms")
        if b.max_consumer_lag is not None:
            parts.append(f"lag <= {b.max_consumer_lag:,}")
        st.budget = ", ".join(parts)
        now = time.time()
        st.active = [fault_label(f.name, {"resolved": f.resolved})
                     + (f" ({now - f.injected_at:.1f}s)" if f.injected_at else "") for f in active_faults(run.env)]

    def finish(self, run: Run, result: RunResult) -> None:
        result.extra["gameday"] = {"outcome": result.outcome, "reason": result.reason or None,
                                   "target": self.target.name, "scenario_source": self.plan.source,
                                   "plan": self.plan.describe(run.local), "command": self.journal.command}

    def stop(self, run: Run, result: RunResult) -> None:
        self.tick(run)
        self.state.outcome = result.outcome.upper()
        self.view.stop()
        for v in result.verdicts:
            self.view.write(f"  [{'PASS' if v.ok else 'FAIL'}] {v.name}: {v.message}\n")
        self.view.write(f"gameday {self.plan.name}: {result.outcome.upper()}"
                        + (f" ({result.reason})" if result.reason else "")
                        + f"; report {run.artefacts}; exit {result.exit_code}\n")


class JournalObserver(NullObserver):
    """Only the journal (``gameday run experiment:<name>``, whose progress goes to the terminal as lines)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def start(self, run: Run) -> None:
        self.journal.also_to(run.artefacts / "journal.jsonl")
        self.journal.write("run", "started", report=str(run.artefacts))

    def event(self, kind: str, text: str, outcome: str = "ok", **detail: Any) -> None:
        step = detail.pop("step", None)
        self.journal.write(kind, outcome, step=step, **detail)


def report_folder(report_root: Path, target: LocalTarget | ExternalTargetView, name: str) -> Path:
    slug = target.env.run_id.replace(":", "-")
    return report_root / slug / f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_scenario(plan: Plan, target: LocalTarget | ExternalTargetView, settings: Settings, journal: Journal,
                 report_root: Path, *, out: TextIO | None = None, tty: bool | None = None,
                 on_deploy: Callable[[Any], None] | None = None) -> int:
    """Run ``plan`` on ``target`` with the live view and the journal; the exit status."""
    observer = GamedayObserver(plan, target, settings, journal, out=out, tty=tty, on_deploy=on_deploy)
    run = Run(target, plan, settings, artefacts=report_folder(report_root, target, plan.name), observer=observer,
              meta={"gameday": True})
    return run.execute().exit_code
