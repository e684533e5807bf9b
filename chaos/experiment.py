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
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import checkers, truth
from chaos.checkers import Budget, Verdict
from chaos.config import Settings
from chaos.env import Environment, wait_until
from chaos.faults import Fault
from chaos.history import History, Outcome
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
        return {
            "experiment": self.name, "defects": list(self.defects), "ok": self.ok, "wall_s": round(self.wall_s, 2),
            "convergence_s": self.convergence_s, "faults": self.faults,
            "phases": {k: v.to_dict() for k, v in self.stats.items()},
            "verdicts": [v.to_dict() for v in self.verdicts],
            "counts": {"ops": len(self.history.ops), "applied_rows": len(self.truth.applied),
                       "kafka_records": len(self.truth.kafka)},
            "meta": self.history.meta,
        }


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

    def run(self, *, fault: Fault | None = None, warmup_s: float = 4.0, before_s: float = 5.0, during_s: float = 8.0,
            after_s: float = 5.0, budgets: dict[str, Budget] | None = None,
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
        # Warm-up: a fresh producer, consumer group and JIT-cold brokers answer slowly for a few
        # seconds; those operations are checked for loss like any other but carry no budget.
        gen.start(phase="warmup")
        try:
            time.sleep(warmup_s)
            gen.mark_phase("before")
            time.sleep(before_s)
            if fault is not None:
                gen.mark_phase("during")
                t_inject = now_us()
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
        finally:
            gen.stop()
        try:
            if fault is not None:
                env.wait_recovered()
            self._quiesce(history, conninfo, dep.schema, dep.group, dep.topic)
        finally:
            # Quiescent (or given up): whatever has not converged by now never will; stop probing.
            stop_watching.set()
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
                                  artefacts=self.artefacts, faults=faults)
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
        out = self.artefacts
        out.mkdir(parents=True, exist_ok=True)
        result.history.write_jsonl(out / "history.jsonl")
        (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
        (out / "summary.md").write_text(summary_markdown(result))


def summary_markdown(result: ExperimentResult) -> str:
    lines = [f"### {result.name} {'PASS' if result.ok else 'FAIL'}",
             f"defects: {', '.join(result.defects) or 'none'}; wall time {result.wall_s:.1f} s; "
             f"convergence {result.convergence_s if result.convergence_s is not None else '-'} s", "",
             "| phase | ops | ok | fail | unknown | error rate | p50 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, st in result.stats.items():
        d = st.to_dict()
        lines.append(f"| {name} | {d['ops']} | {d['ok']} | {d['fail']} | {d['unknown']} | "
                     f"{d['error_rate']:.3f} | {d['p50_ms']} | {d['p99_ms']} | {d['max_ms']} |")
    lines += ["", "| invariant | verdict | detail |", "|---|---|---|"]
    for v in result.verdicts:
        lines.append(f"| {v.name} | {'pass' if v.ok else 'FAIL'} | {v.message} |")
    return "\n".join(lines) + "\n"
