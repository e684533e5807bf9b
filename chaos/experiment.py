"""The experiment protocol shared by pytest experiments and game-day runs.

Steady state -> fault during load -> heal -> load after heal -> quiesce -> ground truth -> verdicts.
This is the Jepsen split (client = workload, nemesis = faults, checker = checkers) with Chaos
Toolkit's rule that the rollback (heal) always runs. It lives in its own module because both the pytest
plugin and the command line drive it; it holds no checking logic of its own.

The phase lengths are load durations, not waits for a state; every wait for a state (pipeline ready,
quiescence, convergence) is bounded by a named setting.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import checkers, report, truth
from chaos.checkers import Budget, Verdict
from chaos.config import Settings
from chaos.env import Environment, wait_until
from chaos.faults import Fault, Schedule, active_faults
from chaos.history import History, Outcome
from chaos.report.live import Monitor, pipeline_probe
from chaos.workload import LoadGenerator, LoadSpec, now_us

log = logging.getLogger("chaos.experiment")


@dataclass
class ExperimentResult:
    name: str
    defects: tuple[str, ...]
    history: History
    truth: truth.GroundTruth
    verdicts: list[Verdict]
    stats: dict[str, checkers.PhaseStats]
    convergence_s: float | None
    wall_s: float
    artefacts: Path
    faults: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)  # live samples (chaos.report.live)
    schedule: dict[str, Any] | None = None  # a randomised schedule: seed, profile, steps (chaos.schedules)

    @property
    def ok(self) -> bool:
        return all(self.verdicts)

    def verdict(self, name: str) -> Verdict:
        for v in self.verdicts:
            if v.name == name:
                return v
        raise KeyError(f"no verdict {name!r}; have {[v.name for v in self.verdicts]}")

    def failed(self) -> list[str]:
        return [v.name for v in self.verdicts if not v.ok]

    def assert_ok(self) -> None:
        checkers.assert_verdicts(self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` document (layout in :mod:`chaos.report.results`)."""
        return report.results_of(self)


class Experiment:
    """One experiment run against ``env``: deploys a fresh pipeline (optionally with defects)."""

    def __init__(self, env: Environment, settings: Settings, name: str, *, defects: tuple[str, ...] = (),
                 load: LoadSpec | None = None, artefacts: Path | None = None) -> None:
        self.env = env
        self.settings = settings
        self.name = name
        self.defects = tuple(defects)
        self.load = load or LoadSpec()
        self.artefacts = artefacts or settings.report_dir / name
        self.seed = settings.seed or int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "big") ^ time.time_ns()
        self.schedule_record: dict[str, Any] | None = None  # copied into results.json as "schedule"

    def run(self, *, fault: Fault | Schedule | None = None, warmup_s: float = 4.0, before_s: float = 5.0,
            during_s: float = 8.0, after_s: float = 5.0, budgets: dict[str, Budget] | None = None,
            convergence_bound_s: float | None = None) -> ExperimentResult:
        started = time.monotonic()
        env, s = self.env, self.settings
        dep = env.deploy(self.name, self.defects)
        if fault is not None:
            fault.validate(env)  # before any load or injection
        history = History(meta={"experiment": self.name, "run_id": env.run_id, "seed": self.seed,
                                "defects": list(self.defects), "topic": dep.topic, "schema": dep.schema,
                                "load": self.load.__dict__, "images": env.images.refs,
                                "started_at_us": now_us()})
        gen = LoadGenerator(env.endpoints.grpc, self.load, history, cache_dir=s.cache_dir, seed=self.seed,
                            rpc_timeout_s=s.rpc_timeout_s, id_prefix=f"{dep.group.split('.')[-1]}")
        conninfo = env.endpoints.pg_conninfo()
        heal_at = now_us()
        convergence: dict[str, float | None] = {"s": None}
        watcher: threading.Thread | None = None
        stop_watching = threading.Event()
        faults: list[dict[str, Any]] = []
        # Samples lag and applied rows for the report, and prints a rate-limited progress line.
        monitor = Monitor(self.name, gen, active=lambda: active_faults(env), events_per_op=self.load.batch_size,
                          probe=pipeline_probe(env.endpoints.kafka_external, dep.group, dep.topic, conninfo,
                                               dep.schema))
        # Warm-up: a fresh producer, consumer group and JIT-cold brokers answer slowly for a few
        # seconds; those operations are checked for loss like any other but carry no budget.
        gen.start(phase="warmup")
        monitor.start()
        try:
            time.sleep(warmup_s)
            gen.mark_phase("before")
            time.sleep(before_s)
            if fault is not None:
                gen.mark_phase("during")
                t_inject = now_us()
                if isinstance(fault, Schedule):
                    timeline: list[dict[str, Any]] = []
                    try:
                        timeline = fault.run(env)
                    finally:
                        heal_at = now_us()
                        for window in _windows(timeline, t_inject, heal_at):
                            history.add_fault(window["name"], window["start_us"], window["end_us"], window)
                            faults.append(window)
                else:
                    try:
                        with fault.active(env):
                            time.sleep(during_s)
                    finally:
                        heal_at = now_us()
                        history.add_fault(fault.name, t_inject, heal_at, fault.describe())
                        faults.append({**fault.describe(), "start_us": t_inject, "end_us": heal_at})
                watcher = threading.Thread(target=self._watch_convergence,
                                           args=(history, heal_at, conninfo, dep.schema, convergence,
                                                 stop_watching),
                                           daemon=True)
                watcher.start()
            gen.mark_phase("after")
            time.sleep(after_s)
        except BaseException:
            monitor.stop("aborted")
            raise
        finally:
            gen.stop()
        try:
            if fault is not None:
                env.wait_recovered()
            self._quiesce(history, conninfo, dep.schema, dep.group, dep.topic)
        finally:
            # Quiescent (or given up): whatever has not converged by now never will; stop probing.
            stop_watching.set()
            samples = monitor.stop("drained")
        if watcher is not None:
            watcher.join(timeout=s.quiesce_timeout_s)
        gt = truth.read_all(env.endpoints.kafka_external, conninfo, dep.topic, dep.schema, s.quiesce_timeout_s)
        verdicts = checkers.check_all(history, gt.applied, gt.kafka, gt.key_state)
        if fault is not None:
            bound = convergence_bound_s if convergence_bound_s is not None else s.convergence_bound_s
            conv = convergence["s"]
            verdicts.append(checkers.check_convergence(
                heal_at, None if conv is None else heal_at + int(conv * 1e6), bound))
        if budgets:
            verdicts.append(checkers.check_availability(history, budgets))
        result = ExperimentResult(name=self.name, defects=self.defects, history=history, truth=gt,
                                  verdicts=verdicts, stats=checkers.phase_stats(history),
                                  convergence_s=convergence["s"], wall_s=time.monotonic() - started,
                                  artefacts=self.artefacts, faults=faults, samples=samples,
                                  schedule=self.schedule_record)
        self._write(result)
        return result

    # -- waiting for states ------------------------------------------------------------------------

    def _watch_convergence(self, history: History, heal_at: int, conninfo: str, schema: str,
                           out: dict[str, float | None], stop: threading.Event) -> None:
        """Time from heal until every event acknowledged for an op issued before the heal is applied."""
        while True:
            target = {op.id for op in list(history.ops) if op.outcome == Outcome.OK and op.intended_us < heal_at}
            try:
                if target <= truth.applied_ids(conninfo, schema):
                    out["s"] = (now_us() - heal_at) / 1e6
                    return
            except Exception as exc:  # the database may itself be recovering
                log.debug("convergence probe failed: %s", exc)
            if stop.wait(self.settings.poll_interval_s * 2):
                # one last probe after quiescence, so a convergence at the very end is not missed
                with contextlib.suppress(Exception):
                    if target <= truth.applied_ids(conninfo, schema):
                        out["s"] = (now_us() - heal_at) / 1e6
                return

    def _quiesce(self, history: History, conninfo: str, schema: str, group: str, topic: str) -> None:
        """Wait until the projectors have consumed everything and the effects table stops changing."""
        s = self.settings
        acked = {op.id for op in history.ops if op.outcome == Outcome.OK}
        state = {"count": -1, "since": time.monotonic()}
        settle_s = max(2.0, s.projector_session_timeout_ms / 1000)

        def quiet() -> bool:
            lag = truth.group_lag(self.env.endpoints.kafka_external, group, topic, 5)
            count = truth.count_applied(conninfo, schema)
            if count != state["count"]:
                state.update(count=count, since=time.monotonic())
            if lag > 0:
                return False
            if acked <= truth.applied_ids(conninfo, schema):
                return True
            return time.monotonic() - state["since"] >= settle_s  # nothing moves: what is missing is lost

        try:
            wait_until(quiet, s.quiesce_timeout_s, "the pipeline to drain (lag 0, effects table stable)",
                       s.poll_interval_s * 2)
        except TimeoutError as exc:
            log.warning("%s; checking what is there", exc)

    # -- artefacts ------------------------------------------------------------------------------------

    def _write(self, result: ExperimentResult) -> None:
        """history.jsonl, results.json, report.html and summary.md (see :mod:`chaos.report`)."""
        report.write_experiment(result, self.artefacts)


def _windows(timeline: list[dict[str, Any]], t0_us: int, end_us: int) -> list[dict[str, Any]]:
    """Fault windows from a schedule's timeline (inject/heal events with offsets from its start)."""
    open_: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for ev in timeline:
        key = repr(ev.get("resolved")) + ev["name"] + repr(ev.get("target", ""))
        at = t0_us + int(ev["t_s"] * 1e6)
        if ev["action"] == "inject":
            open_[key] = {**{k: v for k, v in ev.items() if k not in ("t_s", "action")}, "start_us": at}
        elif key in open_:
            out.append({**open_.pop(key), "end_us": at})
    out += [{**w, "end_us": end_us} for w in open_.values()]
    return sorted(out, key=lambda w: w["start_us"])


def summary_markdown(result: ExperimentResult) -> str:
    """The experiment's markdown summary (as written to ``summary.md``)."""
    from chaos.report.markdown import experiment_markdown

    return experiment_markdown(result.to_dict())
