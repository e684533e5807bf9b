"""The game-day run protocol (Chaos Toolkit's model, made safer).

    [fresh pipeline] -> load: warm-up -> before -> steady-state hypothesis (bounded wait; no injection
    unless steady) -> method (faults on their timeline; budgets and ``during = "abort"`` probes checked
    continuously) -> after (load goes on until the steady state is back, bounded) -> heal-all + rollbacks
    (always) -> fault traces checked -> [quiescence, ground truth, invariants] -> report + journal

A breached budget, a failing abort probe, Ctrl-C (SIGINT), SIGTERM or SIGHUP stop the method at once:
every active fault is healed, the rollbacks run, the view and the journal say so, and the exit status is
non-zero. While healing, a second Ctrl-C is ignored (with a message) so the heal cannot be cut short.

Exit status: 0 passed; 1 a verdict failed (steady state not restored, an invariant, a phase budget) or an
error; 3 aborted (budget or abort probe); 4 not steady before the method (nothing injected); 130
interrupted. (2, bad input refused before anything was done, is the command line's.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from chaos import checkers, truth
from chaos.checkers import Verdict
from chaos.config import Settings
from chaos.faults import active_faults, heal_all
from chaos.gameday import targets as tg
from chaos.gameday.journal import Journal
from chaos.gameday.live import LiveState, LiveView, ProbeStatus
from chaos.gameday.scenario import Scenario
from chaos.history import History, Outcome
from chaos.report.live import fault_label
from chaos.workload import LoadGenerator, now_us

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_ABORTED, EXIT_NOT_STEADY, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
TICK_S = 0.1  # the main loop's clock (when to act), not a wait for a state


class Abort(Exception):
    """A budget was breached or an abort probe failed: stop the method now."""


def window_stats(ops: list[Any], now: int, window_s: float) -> dict[str, Any]:
    """Error rate and latency percentiles of the operations completed in the last ``window_s`` seconds."""
    cutoff = now - int(window_s * 1e6)
    lat: list[int] = []
    errors = n = 0
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if op.end_us is None:
            continue
        if op.end_us < cutoff:
            break
        n += 1
        if op.outcome is Outcome.OK:
            lat.append(op.end_us - op.intended_us)
        else:
            errors += 1
    lat.sort()

    def pct(q: float) -> float | None:
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else None

    return {"window_s": window_s, "ops": n, "errors": errors, "error_rate": errors / n if n else None,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


@contextlib.contextmanager
def uninterruptible(say: Callable[[str], None]) -> Iterator[None]:
    """While healing: Ctrl-C, SIGTERM and SIGHUP only print a message (the heal must not be cut short)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def refuse(signum: int, _frame: Any) -> None:
        say(f"signal {signal.Signals(signum).name} ignored: healing, please wait")

    saved = {sig: signal.signal(sig, refuse) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class Runner:
    def __init__(self, scenario: Scenario, target: tg.LocalTarget | tg.ExternalTargetView, settings: Settings,
                 journal: Journal, report_root: Path, *, out: TextIO | None = None, tty: bool | None = None,
                 on_deploy: Callable[[Any], None] | None = None) -> None:
        self.sc = scenario
        self.target = target
        self.env: Any = target.env
        self.s = settings
        self.journal = journal
        self.report_root = report_root
        self.on_deploy = on_deploy
        self.state = LiveState(scenario=scenario.name, target=target.name)
        self.state.probes = {p.name: ProbeStatus(None, "-") for p in scenario.probes}  # fixed keys: thread-safe
        self.view = LiveView(self.state, refresh_s=settings.gameday_refresh_s,
                             line_interval_s=settings.gameday_line_interval_s, out=out, tty=tty,
                             update=self._refresh)
        self.gen: LoadGenerator | None = None
        self.history: History | None = None
        self.heal_at_us: int | None = None
        self.samples: list[dict[str, Any]] = []
        self._stop_probes = threading.Event()
        self._probe_thread: threading.Thread | None = None
        self._lag: int | None = None
        self._applied: int | None = None
        self._inject_us: dict[int, int] = {}
        self.verdicts: list[Verdict] = []
        self._convergence: dict[str, float | None] = {"s": None}  # heal -> every acknowledged event applied
        self._stop_convergence = threading.Event()
        self._watcher: threading.Thread | None = None
        self.folder: Path | None = None

    # -- the protocol ------------------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        sc, st = self.sc, self.state
        st.timeline = [{"label": f"warmup {sc.warmup_s:g}s"}, {"label": f"before {sc.before_s:g}s"}]
        st.timeline += [{"label": self._step_label(i), "status": "planned"} for i in range(len(sc.method))]
        st.timeline += [{"label": f"after >= {sc.after_s:g}s"}]
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = self.env.run_id.replace(":", "-") if self.target.kind == "external" else self.env.run_id
        self.folder = self.report_root / slug / f"{sc.name}-{stamp}"
        self.journal.also_to(self.folder / "journal.jsonl")
        self.journal.write("run", "started", plan=sc.plan(self.target.kind == "local"), report=str(self.folder))
        code, reason = EXIT_OK, ""
        steady_before: bool | None = None
        steady_after: bool | None = None
        after_detail = ""
        self.view.start()
        try:
            if self.target.kind == "local" and sc.fresh_pipeline:
                self.view.event("deploying a fresh pipeline (own topic, group, schema)")
                dep = self.env.deploy(f"gameday-{sc.name}", sc.defects)
                if self.on_deploy is not None:
                    self.on_deploy(dep)
                self.journal.write("deploy", "ok", topic=dep.topic, group=dep.group, schema=dep.schema)
            for step in sc.method:
                step.fault.validate(self.env)
            self._start_load()
            self._phase("warmup")
            self._wait(sc.warmup_s)
            self._phase("before")
            self._wait(sc.before_s)
            steady_before, failing = self._hypothesis("before")
            if not steady_before:
                code, reason = EXIT_NOT_STEADY, f"not steady: before the method ({failing}), nothing injected"
                self.view.event(f"REFUSED to inject: {reason}")
            else:
                self._method()
                steady_after, after_detail = self._after()
        except Abort as exc:
            code, reason = EXIT_ABORTED, f"aborted: {exc}"
        except KeyboardInterrupt:
            code, reason = EXIT_INTERRUPTED, "interrupted: Ctrl-C or a termination signal"
        except Exception as exc:
            code, reason = EXIT_FAILED, f"error: {exc.__class__.__name__}: {exc}"
        with uninterruptible(self.view.event):
            self._heal_and_rollback(reason)
        try:
            self._verify(code, steady_before, steady_after, after_detail, reason)
        except KeyboardInterrupt:
            self.verdicts.append(Verdict("gameday", False, message="interrupted while verifying (nothing to heal)"))
            code = code or EXIT_INTERRUPTED
        except Exception as exc:
            self.verdicts.append(Verdict("verification", False, message=f"{exc.__class__.__name__}: {exc}"))
        if code == EXIT_OK and not all(self.verdicts):
            code = EXIT_FAILED
        outcome = {EXIT_OK: "passed", EXIT_FAILED: "failed", EXIT_ABORTED: "aborted", EXIT_NOT_STEADY: "not steady",
                   EXIT_INTERRUPTED: "interrupted"}.get(code, "failed")
        self._write_report(started, outcome, reason)
        st.outcome = outcome.upper()
        self.view.stop()
        for v in self.verdicts:
            self.view._write(f"  [{'PASS' if v.ok else 'FAIL'}] {v.name}: {v.message}\n")
        self.view._write(f"gameday {sc.name}: {outcome.upper()}" + (f" ({reason})" if reason else "")
                         + f"; report {self.folder}; exit {code}\n")
        self.journal.write("end", outcome, exit=code, reason=reason or None, report=str(self.folder),
                           verdicts={v.name: v.ok for v in self.verdicts})
        return code

    # -- pieces ---------------------------------------------------------------------------------------

    def _step_label(self, i: int) -> str:
        step = self.sc.method[i]
        params = step.fault.params()
        what = step.spec.get("target") or step.spec.get("links") or params.get("target") or params.get("links") or ""
        return f"{step.spec.get('fault', step.fault.name)} {what} @{step.at_s:g}s for {step.duration_s:g}s".replace(
            "  ", " ")

    def _phase(self, name: str) -> None:
        assert self.gen is not None
        self.gen.mark_phase(name)
        self.state.phase = name
        tl = self.state.timeline
        status = {"warmup": {0: "active"}, "before": {0: "done", 1: "active"}, "during": {1: "done"},
                  "after": {len(tl) - 1: "active"}}.get(name, {})
        for i, st in status.items():
            tl[i]["status"] = st
        self.view.event(f"phase {name}")
        self.journal.write("phase", "ok", step=name)

    def _start_load(self) -> None:
        pipe = self.target.pipeline
        seed = self.s.seed or secrets.randbits(31)
        self.history = History(meta={"experiment": self.sc.name, "run_id": self.env.run_id, "seed": seed,
                                     "defects": list(self.sc.defects), "topic": pipe.topic if pipe else None,
                                     "schema": pipe.schema if pipe else None, "load": self.sc.load.__dict__,
                                     "images": getattr(getattr(self.env, "images", None), "refs", {}),
                                     "started_at_us": now_us(), "gameday": True})
        self.gen = LoadGenerator(self.target.grpc, self.sc.load, self.history, cache_dir=self.s.cache_dir,
                                 seed=seed, rpc_timeout_s=self.s.rpc_timeout_s, id_prefix=f"gd{secrets.token_hex(4)}")
        self.gen.start(phase="warmup")
        self._probe_thread = threading.Thread(target=self._prober, name="gameday-probes", daemon=True)
        self._probe_thread.start()

    def _wait(self, seconds: float, *, check: bool = False) -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            self._refresh()
            if check:
                self._check_budgets()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(TICK_S, left))

    def _refresh(self) -> None:
        """Counts, window figures, load-derived probes and active faults into the live state."""
        gen, hist, st = self.gen, self.history, self.state
        if gen is None or hist is None:
            return
        c = gen.counts
        st.counts = {"sent": gen.issued * self.sc.load.batch_size, "acked": int(c.get("ok", 0)),
                     "errors": int(c.get("fail", 0)) + int(c.get("unknown", 0)), "applied": self._applied,
                     "lag": self._lag}
        b = self.sc.budgets
        st.window = window_stats(hist.ops, now_us(), b.window_s)
        for p in self.sc.probes:
            if p.type in ("error_rate", "p99_latency"):
                w = window_stats(hist.ops, now_us(), p.window_s)
                v = w["error_rate"] if p.type == "error_rate" else w["p99_ms"]
                ok = None if v is None else v <= (p.max or 0)
                text = "-" if v is None else (f"{v:.1%}" if p.type == "error_rate" else f"{v:,.0f} ms")
                st.probes[p.name] = ProbeStatus(ok, text, time.monotonic())
        parts = []
        if b.max_error_rate is not None:
            parts.append(f"errors <= {b.max_error_rate:.0%}")
        if b.max_p99_ms is not None:
            parts.append(f"p99 <= {b.max_p99_ms:,.0f} ms")
        if b.max_consumer_lag is not None:
            parts.append(f"lag <= {b.max_consumer_lag:,}")
        st.budget = ", ".join(parts)
        now = time.time()
        st.active = [f"{fault_label(f.name, {'resolved': f.resolved})}"
                     + (f" ({now - f.injected_at:.1f}s)" if f.injected_at else "") for f in active_faults(self.env)]

    def _prober(self) -> None:
        """Probes that talk to the pipeline, in their own thread (a probe may block while a broker is down)."""
        pipe, t = self.target.pipeline, self.target
        while not self._stop_probes.is_set():
            begun = time.monotonic()
            for p in self.sc.probes:
                if p.type in ("error_rate", "p99_latency"):
                    continue
                try:
                    ok, text = self._probe(p.type, p.max, pipe)
                except Exception as exc:
                    ok, text = False, f"{exc.__class__.__name__}: {str(exc)[:60]}"
                self.state.probes[p.name] = ProbeStatus(ok, text, time.monotonic())
            if pipe is not None and t.bootstrap:
                with contextlib.suppress(Exception):
                    self._lag = tg.group_lag(t.bootstrap, pipe.group, pipe.topic, 2.0)
            if pipe is not None and t.conninfo:
                with contextlib.suppress(Exception):
                    self._applied = truth.count_applied(t.conninfo, pipe.schema)
            c = self.state.counts
            self.samples.append({"t_us": now_us(), "phase": self.state.phase, "sent": c.get("sent", 0),
                                 "acked": c.get("acked", 0), "errors": c.get("errors", 0), "applied": self._applied,
                                 "consumer_lag": self._lag})
            self._stop_probes.wait(max(0.0, self.s.gameday_probe_interval_s - (time.monotonic() - begun)))

    def _probe(self, kind: str, mx: float | None, pipe: tg.Pipeline | None) -> tuple[bool, str]:
        t = self.target
        if kind == "ingest_serving":
            return tg.ingest_serving(t.grpc)
        if kind == "brokers":
            n = tg.brokers_registered(t.bootstrap)
            want = int(mx) if mx is not None else t.brokers
            return n >= want, f"{n} registered"
        if pipe is None:
            return False, "no pipeline known"
        if kind == "full_isr":
            return tg.full_isr(t.bootstrap, pipe.topic)
        if kind == "consumer_lag":
            lag = tg.group_lag(t.bootstrap, pipe.group, pipe.topic, 2.0)
            return lag <= (mx or 0), f"{lag:,}"
        raise ValueError(f"unknown probe {kind}")

    def _probes_ok(self, since: float) -> tuple[bool, str]:
        """All probes passing, each measured after ``since`` (monotonic)."""
        failing = []
        for p in self.sc.probes:
            r = self.state.probes.get(p.name)
            if r is None or r.ok is not True or r.at < since:
                failing.append(f"{p.name}={'?' if r is None or r.at < since else r.value}")
        return not failing, ", ".join(failing)

    def _hypothesis(self, when: str) -> tuple[bool, str]:
        """The steady state before the method: every probe passes, waiting at most gameday_steady_timeout_s."""
        since = time.monotonic()
        deadline = since + self.s.gameday_steady_timeout_s
        while True:
            self._refresh()
            ok, failing = self._probes_ok(since)
            if ok:
                self.view.event(f"steady state {when}: OK ({len(self.sc.probes)} probe(s))")
                self.journal.write("probe", "ok", step=f"steady state {when}",
                                   probes={k: v.value for k, v in self.state.probes.items()})
                return True, ""
            if time.monotonic() >= deadline:
                self.journal.write("probe", "failed", step=f"steady state {when}", failing=failing)
                return False, failing
            time.sleep(TICK_S)

    def _check_budgets(self) -> None:
        b, st = self.sc.budgets, self.state
        w = window_stats(self.history.ops, now_us(), b.window_s) if self.history is not None else {}
        if b.max_error_rate is not None and w.get("error_rate") is not None and w["error_rate"] > b.max_error_rate:
            raise Abort(f"budget breached: error rate {w['error_rate']:.1%} over the last {b.window_s:g} s "
                        f"({w['errors']} of {w['ops']} operations) > {b.max_error_rate:.0%}")
        if b.max_p99_ms is not None and w.get("p99_ms") is not None and w["p99_ms"] > b.max_p99_ms:
            raise Abort(f"budget breached: p99 latency {w['p99_ms']:,.0f} ms over the last {b.window_s:g} s "
                        f"> {b.max_p99_ms:,.0f} ms")
        if b.max_consumer_lag is not None and self._lag is not None and self._lag > b.max_consumer_lag:
            raise Abort(f"budget breached: consumer lag {self._lag:,} > {b.max_consumer_lag:,}")
        for p in self.sc.probes:
            r = st.probes.get(p.name)
            if p.during == "abort" and r is not None and r.ok is False:
                raise Abort(f"abort condition: steady-state probe {p.name} failed ({r.value})")

    def _method(self) -> None:
        sc, env = self.sc, self.env
        self._phase("during")
        events = sorted([(s.at_s, 1, "inject", i) for i, s in enumerate(sc.method)]
                        + [(s.at_s + s.duration_s, 0, "heal", i) for i, s in enumerate(sc.method)],
                        key=lambda e: (e[0], e[1]))
        t0 = time.monotonic()
        for at, _, action, i in events:
            self._wait(at - (time.monotonic() - t0), check=True)
            step = sc.method[i]
            label = self._step_label(i)
            if action == "inject":
                self.journal.write("inject", "started", step=label, spec=step.spec)
                self._inject_us[i] = now_us()
                step.fault.inject(env)
                self.state.timeline[2 + i]["status"] = "active"
                what = fault_label(step.fault.name, {"resolved": step.fault.resolved})
                self.view.event(f"inject {label} -> {what}")
                self.journal.write("inject", "ok", step=label, resolved=step.fault.resolved)
            else:
                self._heal_step(i)
        self.heal_at_us = now_us()

    def _heal_step(self, i: int, why: str = "") -> None:
        step = self.sc.method[i]
        if step.fault.injected_at is None or step.fault.healed_at is not None:
            return
        begun = time.monotonic()
        try:
            step.fault.heal(self.env)
            outcome, detail = "ok", ""
        except Exception as exc:
            outcome, detail = "failed", f"{exc.__class__.__name__}: {exc}"
        took = time.monotonic() - begun
        end = now_us()
        assert self.history is not None
        start = self._inject_us.get(i, end)
        self.history.add_fault(step.fault.name, start, end, step.fault.describe())
        self.state.timeline[2 + i]["status"] = "healed" if outcome == "ok" else "HEAL FAILED"
        label = self._step_label(i)
        self.view.event(f"heal {label} ({took:.2f} s){why}" + (f" FAILED: {detail}" if detail else ""))
        self.journal.write("heal", outcome, step=label, seconds=round(took, 3), error=detail or None)

    def _after(self) -> tuple[bool, str]:
        """Load after the heal; at least after_s, then until every probe passes again (bounded)."""
        self._phase("after")
        heal = time.monotonic()
        pipe = self.target.pipeline
        if self.target.kind == "local" and self.sc.fresh_pipeline and pipe is not None and self.sc.method:
            from chaos.experiment import Experiment

            assert self.history is not None and self.heal_at_us is not None and self.target.conninfo is not None
            watcher = threading.Thread(
                target=Experiment(self.env, self.s, self.sc.name)._watch_convergence, daemon=True,
                args=(self.history, self.heal_at_us, self.target.conninfo, pipe.schema, self._convergence,
                      self._stop_convergence))
            watcher.start()
            self._watcher = watcher
        self._wait(self.sc.after_s, check=True)
        deadline = time.monotonic() + self.s.gameday_steady_timeout_s
        while True:
            ok, failing = self._probes_ok(heal)
            if ok:
                self.view.event(f"steady state after: OK, {time.monotonic() - heal:.1f} s after the heal")
                self.journal.write("probe", "ok", step="steady state after",
                                   seconds_after_heal=round(time.monotonic() - heal, 2))
                return True, f"restored {time.monotonic() - heal:.1f} s after the heal"
            if time.monotonic() >= deadline:
                self.view.event(f"steady state NOT restored within {self.s.gameday_steady_timeout_s:g} s: {failing}")
                self.journal.write("probe", "failed", step="steady state after", failing=failing)
                return False, f"not restored within {self.s.gameday_steady_timeout_s:g} s: {failing}"
            self._wait(TICK_S, check=True)

    def _heal_and_rollback(self, reason: str) -> None:
        """Always: heal every fault at once, stop the load, run the rollbacks, look for traces."""
        injected = any(step.fault.injected_at is not None for step in self.sc.method) or active_faults(self.env)
        if reason:
            head, _, rest = reason.partition(":")
            what = "healing everything now" if injected else "nothing was injected"
            self.view.event(f"{head.upper()}:{rest}: {what}")
            self.journal.write("abort" if "aborted" in reason else "stop", "healing", reason=reason)
        for i in reversed(range(len(self.sc.method))):
            self._heal_step(i, " [abort]" if reason else "")
        healed = heal_all(self.env)  # anything else this process injected
        if healed:
            self.journal.write("heal", "ok", step="safety net", healed=healed)
        if self.heal_at_us is None:
            self.heal_at_us = now_us()
        if self.gen is not None:
            try:
                self.gen.stop()
            except Exception as exc:
                self.journal.write("load", "failed", error=str(exc))
        self._stop_probes.set()
        if self._probe_thread is not None:
            self._probe_thread.join(timeout=10)
        for rb in self.sc.rollbacks:
            begun = time.monotonic()
            try:
                if rb.action == "wait_recovered":
                    self.target.wait_recovered()
                elif rb.action == "reset_links":
                    self.target.reset_links()
                elif rb.action == "ensure_running":
                    self.target.ensure_running(list(rb.nodes))
                outcome, err = "ok", ""
            except Exception as exc:
                outcome, err = "failed", f"{exc.__class__.__name__}: {exc}"
            self.view.event(f"rollback {rb.describe()}: {outcome} ({time.monotonic() - begun:.1f} s)"
                            + (f" {err}" if err else ""))
            self.journal.write("rollback", outcome, step=rb.describe(), error=err or None)
        try:
            left = self.target.leftovers()
        except Exception as exc:
            left = [f"could not inspect: {exc}"]
        if left:
            self.view.event(f"fault traces left: {'; '.join(left)}; healing them")
            done = self.target.heal_everything()
            left = self.target.leftovers()
            self.journal.write("heal", "ok" if not left else "failed", step="traces", done=done, left=left)
        self.leftovers = left
        self.view.event("everything healed, nothing left" if not left else f"STILL LEFT: {'; '.join(left)}")
        self.journal.write("healed", "ok" if not left else "failed", left=left)

    def _verify(self, code: int, before: bool | None, after: bool | None, after_detail: str, reason: str) -> None:
        v = self.verdicts
        if before is not None:
            v.append(Verdict("steady_state_before", bool(before),
                             message="every probe passed before the method" if before else reason))
        if after is not None:
            v.append(Verdict("steady_state_after", bool(after), message=after_detail))
        if reason and code != EXIT_NOT_STEADY:
            v.append(Verdict("gameday", False, message=reason))
        if getattr(self, "leftovers", None):
            v.append(Verdict("healed", False, message=f"left after healing: {'; '.join(self.leftovers)}"))
        hist = self.history
        if hist is None:
            return
        if self.sc.budgets.phases:
            v.append(checkers.check_availability(hist, self.sc.budgets.phases))
        pipe = self.target.pipeline
        if code != EXIT_OK or self.target.kind != "local" or not self.sc.fresh_pipeline or pipe is None:
            return
        assert self.target.conninfo is not None
        from chaos.experiment import Experiment

        self.view.event("waiting for the pipeline to drain, then reading ground truth")
        exp = Experiment(self.env, self.s, self.sc.name)
        exp._quiesce(hist, self.target.conninfo, pipe.schema, pipe.group, pipe.topic)
        gt = truth.read_all(self.target.bootstrap, self.target.conninfo, pipe.topic, pipe.schema,
                            self.s.quiesce_timeout_s)
        self.truth = gt
        v += checkers.check_all(hist, gt.applied, gt.kafka, gt.key_state)
        self._stop_convergence.set()  # quiescent: one last probe, then the watcher ends
        if self.sc.method and self.heal_at_us is not None:
            if self._watcher is not None:
                self._watcher.join(timeout=self.s.quiesce_timeout_s)
            conv = self._convergence["s"]
            self.convergence_s = conv
            v.append(checkers.check_convergence(
                self.heal_at_us, None if conv is None else self.heal_at_us + int(conv * 1e6),
                self.s.convergence_bound_s))

    def _write_report(self, started: float, outcome: str, reason: str) -> None:
        from chaos import report
        from chaos.report.results import build_results

        hist, folder = self.history, self.folder
        if hist is None or folder is None:
            return
        try:
            gt = getattr(self, "truth", None)
            counts = {"applied_rows": len(gt.applied), "kafka_records": len(gt.kafka)} if gt else {}
            results = build_results(hist, verdicts=[x.to_dict() for x in self.verdicts],
                                    convergence_s=getattr(self, "convergence_s", None),
                                    wall_s=time.monotonic() - started, name=self.sc.name,
                                    defects=list(self.sc.defects), counts=counts, samples=self.samples)
            results["gameday"] = {"outcome": outcome, "reason": reason or None, "target": self.target.name,
                                  "scenario_source": self.sc.source, "plan": self.sc.plan(self.target.kind == "local"),
                                  "command": self.journal.command}
            folder.mkdir(parents=True, exist_ok=True)
            hist.write_jsonl(folder / "history.jsonl")
            report.write_artefacts(hist, results, folder)
        except Exception as exc:
            self.view._write(f"[gameday] could not write the report: {exc}\n")
