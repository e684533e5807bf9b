"""Randomised fault schedules: Hypothesis picks which faults, on which targets, when and for how long.

A rule-based state machine (``chaos.schedules.schedule_machine``) injects, heals and lets time pass on
the schedule's clock, within bounds that keep the cluster recoverable (never more than
``schedule_max_brokers_impaired`` brokers impaired at once, one fault per node). Its teardown is the
final heal: the finished schedule runs in real time under load on a freshly deployed pipeline
(``Experiment.run(fault=Schedule)``: warm-up, before, the schedule, after, quiescence), and every
invariant is checked (lost, duplicates, phantoms, unknowns, order, the model, convergence). No
availability budget: a random fault may legitimately make clients fail. Each example heals fully and
deploys its own pipeline, so examples are independent; a failing one is shrunk within
``hypothesis_shrink_time_s``.

Every example writes ``replay.json`` next to its ``results.json`` (which carries the same record under
``"schedule"``); the run writes ``random_schedules.json`` (seed, profile, every example) and, when
something failed, ``minimal-replay.json`` with the smallest failing schedule, and prints it with the
command that replays it. ``--chaos-replay=<file>`` runs one recorded schedule exactly, instead of
generating.

Nightly tier only (``--chaos-tier=nightly``, or ``-m nightly``): the gate tier does not run it;
``tests/integration/test_random_schedules_ci.py`` runs the small ``ci`` profile in ``make test``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from chaos.config import Settings
from chaos.env import Environment
from chaos.experiment import Experiment, ExperimentResult
from chaos.experiments import common
from chaos.schedules import (
    PlannedStep,
    Profile,
    Replay,
    Shape,
    choose_seed,
    format_steps,
    load_replay,
    profile_named,
    replay_document,
    run_machine,
    schedule_machine,
    to_schedule,
    write_replay,
)

pytestmark = [pytest.mark.experiment, pytest.mark.nightly]

# Phases around the schedule (load durations, not waits for a state). Short: every example and every
# shrink step deploys a pipeline and runs all of them.
WARMUP_S = 3.0
BEFORE_S = 3.0
AFTER_S = 5.0
LOAD = common.GATE_LOAD
EXPERIMENT = "random_schedules"


def say(config: pytest.Config | None, line: str) -> None:
    """A line on the terminal even while pytest captures output."""
    tr = config.pluginmanager.get_plugin("terminalreporter") if config else None
    if tr is None:
        print(line)
        return
    capman = config.pluginmanager.get_plugin("capturemanager") if config else None
    ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with ctx:
        tr.write_line(line)


def fail(failed: list[str], steps: list[PlannedStep]) -> None:
    """The one place a failing schedule raises: Hypothesis tells failures apart by where they are raised,
    so a reused outcome must fail exactly like the run it reuses (else: FlakyFailure, no shrinking)."""
    raise AssertionError(f"invariants failed: {', '.join(failed)}\n{format_steps(steps)}")


@dataclass
class Session:
    """One run of the randomised test: what every example needs, and what every example did."""

    env: Environment
    settings: Settings
    make: Callable[..., Experiment]
    profile: Profile
    seed: int | None
    defects: tuple[str, ...]
    max_brokers_impaired: int
    config: pytest.Config | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, tuple[bool, list[str], int]] = field(default_factory=dict)  # schedule JSON -> outcome

    @property
    def root(self) -> Path:
        return self.settings.report_dir / self.env.run_id / EXPERIMENT

    def phases(self) -> dict[str, float]:
        return {"warmup_s": WARMUP_S, "before_s": BEFORE_S, "after_s": AFTER_S}

    def execute(self, steps: list[PlannedStep], workload_seed: int, *, name: str | None = None,
                phases: dict[str, float] | None = None) -> dict[str, Any]:
        """Run one schedule under load on a fresh pipeline; record it; AssertionError when it fails."""
        key = json.dumps([s.to_dict() for s in steps], sort_keys=True)
        n = len(self.examples) + 1
        if name is None and key in self.outcomes:  # Hypothesis asked for a schedule that already ran
            ok, failed, earlier = self.outcomes[key]
            say(self.config, f"[random-schedules] the schedule of example {earlier} again: its outcome reused")
            if not ok:
                fail(failed, steps)
            return {}
        name = name or f"{EXPERIMENT}-ex{n:03d}"
        phases = phases or self.phases()
        record = Replay(steps=steps, seed=self.seed, profile=self.profile.name, defects=self.defects,
                        workload_seed=workload_seed, example=n, max_brokers_impaired=self.max_brokers_impaired,
                        phases=phases)
        exp = self.make(defects=self.defects, load=LOAD, name=name)
        exp.seed = workload_seed
        exp.schedule_record = replay_document(record)
        say(self.config, f"[random-schedules] example {n} ({name}), {len(steps)} fault(s):\n{format_steps(steps)}")
        started = time.monotonic()
        result: ExperimentResult | None = None
        error = ""
        try:
            result = exp.run(fault=to_schedule(steps), warmup_s=phases.get("warmup_s", WARMUP_S),
                             before_s=phases.get("before_s", BEFORE_S), after_s=phases.get("after_s", AFTER_S),
                             convergence_bound_s=common.convergence_bound_s(self.settings, self.env.pipeline))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            failed = result.failed() if result is not None else ["error"]
            ok = result is not None and result.ok
            wall = round(time.monotonic() - started, 1)
            record.outcome = {"ok": ok, "failed": failed, "error": error, "wall_s": wall,
                              "messages": {v.name: v.message for v in result.verdicts if not v.ok} if result else {},
                              "executed": [{k: w.get(k) for k in ("name", "resolved", "start_us", "end_us")}
                                           for w in (result.faults if result else [])]}
            path = write_replay(record, Path(exp.artefacts) / "replay.json")
            entry = {"example": n, "name": name, "ok": ok, "failed": failed, "error": error, "faults": len(steps),
                     "wall_s": record.outcome["wall_s"], "replay": str(path), "workload_seed": workload_seed,
                     "steps": [s.to_dict() for s in steps]}
            self.examples.append(entry)
            self.outcomes[key] = (ok, failed, n)
            verdict = "passed" if ok else f"FAILED: {', '.join(failed)}"
            say(self.config, f"[random-schedules] example {n} {verdict} in {entry['wall_s']} s -> {path}")
        if not ok:
            fail(failed, steps)
        return entry

    def summary(self, *, wall_s: float, passed: bool, extra: dict[str, Any] | None = None,
                filename: str = "random_schedules.json") -> Path:
        failing = [e for e in self.examples if not e["ok"]]
        minimal = failing[-1] if failing else None  # Hypothesis runs its shrunk example last
        doc = {"experiment": EXPERIMENT, "run_id": self.env.run_id, "profile": self.profile.name, "seed": self.seed,
               "defects": list(self.defects), "max_brokers_impaired": self.max_brokers_impaired,
               "passed": passed, "wall_s": round(wall_s, 1), "examples_run": len(self.examples),
               "failing_examples": len(failing), "minimal_failing": minimal, "examples": self.examples,
               **(extra or {})}
        self.root.mkdir(parents=True, exist_ok=True)
        out = self.root / filename
        out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        if minimal is not None and filename == "random_schedules.json":  # a replay leaves it alone
            (self.root / "minimal-replay.json").write_text(Path(minimal["replay"]).read_text(encoding="utf-8"))
        return out


def replay_command(path: str | Path) -> str:
    return f"uv run pytest chaos/experiments/test_random_schedules.py --chaos-tier=nightly --chaos-replay={path}"


def explore(session: Session) -> None:
    """Generate, run and (on failure) shrink schedules under the session's profile."""
    s, p = session.settings, session.profile
    limits = replace(p.limits, max_brokers_impaired=session.max_brokers_impaired)
    machine = schedule_machine(limits, session.execute, Shape.of(session.env.topology))
    say(session.config, f"[random-schedules] profile {p.name}: seed {session.seed}, up to {p.max_examples} "
                        f"examples of {p.stateful_step_count} steps, horizon {limits.horizon_s:.0f} s, defects "
                        f"{','.join(session.defects) or 'none'}, shrinking bounded to "
                        f"{s.hypothesis_shrink_time_s:.0f} s")
    started = time.monotonic()
    try:
        run_machine(machine, p, session.seed or 0, s.hypothesis_shrink_time_s)
    except BaseException:
        out = session.summary(wall_s=time.monotonic() - started, passed=False)
        failing = [e for e in session.examples if not e["ok"]]
        if failing:
            m = failing[-1]
            minimal = session.root / "minimal-replay.json"
            say(session.config, f"[random-schedules] FAILED after {len(session.examples)} example(s) "
                                f"({len(failing)} failing) in {time.monotonic() - started:.0f} s, seed {session.seed}; "
                                f"minimal failing schedule (example {m['example']}: {', '.join(m['failed'])}):\n"
                                f"{format_steps([PlannedStep(**d) for d in m['steps']])}\n"
                                f"replay it: {replay_command(minimal)}\nsummary: {out}")
        raise
    out = session.summary(wall_s=time.monotonic() - started, passed=True)
    say(session.config, f"[random-schedules] passed: {len(session.examples)} example(s) in "
                        f"{time.monotonic() - started:.0f} s, seed {session.seed}; summary: {out}")


def replay(session: Session, path: str | Path) -> dict[str, Any]:
    """Run one recorded schedule exactly (its defects, workload seed and phases); AssertionError when it fails,
    saying whether it failed the way it was recorded to."""
    rec = load_replay(path, Shape.of(session.env.topology))
    session.defects, session.seed = rec.defects, rec.seed
    session.profile = profile_named(rec.profile) if rec.profile else session.profile
    session.max_brokers_impaired = rec.max_brokers_impaired
    say(session.config, f"[random-schedules] replaying {path} (seed {rec.seed}, profile {rec.profile}, example "
                        f"{rec.example}, defects {','.join(rec.defects) or 'none'}, recorded outcome "
                        f"{'pass' if rec.outcome.get('ok') else 'FAIL: ' + ', '.join(rec.outcome.get('failed', []))})")
    started = time.monotonic()
    recorded = sorted(rec.outcome.get("failed") or [])
    try:
        entry = session.execute(rec.steps, rec.workload_seed or 1, name=f"{EXPERIMENT}-replay",
                                phases=rec.phases or None)
    except AssertionError:
        now = sorted(session.examples[-1]["failed"])
        same = "the same way" if now == recorded else f"differently (recorded: {', '.join(recorded) or 'pass'})"
        session.summary(wall_s=time.monotonic() - started, passed=False, extra={"replay_of": str(path)},
                        filename="replay_summary.json")
        say(session.config, f"[random-schedules] replay FAILED {same}: {', '.join(now)}")
        raise
    session.summary(wall_s=time.monotonic() - started, passed=True, extra={"replay_of": str(path)},
                    filename="replay_summary.json")
    say(session.config, "[random-schedules] replay passed"
        + ("" if not recorded else f" (recorded: FAIL {', '.join(recorded)})"))
    return entry


def new_session(env: Environment, settings: Settings, make: Callable[..., Experiment],
                config: pytest.Config | None = None, profile: str | None = None) -> Session:
    p = profile_named(settings.hypothesis_profile if profile is None else profile)
    defects = settings.defect_list()
    return Session(env=env, settings=settings, make=make, profile=p, seed=choose_seed(p, settings.hypothesis_seed),
                   defects=defects, max_brokers_impaired=settings.schedule_max_brokers_impaired, config=config)


@pytest.fixture
def schedule_timeout(request: pytest.FixtureRequest, chaos_settings: Settings) -> None:
    """The whole run (many examples, shrinking) is bounded by schedule_timeout_s, not the 600 s per test."""
    request.node.add_marker(pytest.mark.timeout(chaos_settings.schedule_timeout_s))


def test_random_schedules(chaos_env, chaos_settings, experiment, request, schedule_timeout):
    session = new_session(chaos_env, chaos_settings, experiment, request.config)
    if chaos_settings.replay:
        replay(session, chaos_settings.replay)
    else:
        explore(session)
