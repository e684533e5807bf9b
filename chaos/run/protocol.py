"""The run protocol: the one sequence every run goes through (pytest experiments, game days, the random
schedules), so a fix to quiescing, convergence or healing helps all of them at once.

    deploy a fresh pipeline (local target) -> validate every fault -> load: warm-up -> before
    -> steady-state hypothesis (plan.probes; bounded wait; no injection unless steady)
    -> method: the faults on their timeline (budgets and ``during = "abort"`` probes checked every tick)
    -> after: load goes on (at least after_s; with probes, until they pass again, bounded)
    -> heal everything, stop the load, rollbacks, look for fault traces   (always; Ctrl-C cannot cut it short)
    -> verify (fresh local pipeline): wait recovered, quiesce, ground truth, invariants, the adapter's model,
       convergence, per-phase budgets -> write the report (history, results.json, page, summary)

It is the Jepsen split (client = the adapter's client under the load generator, nemesis = the faults,
checker = :mod:`chaos.checkers` and the adapter's model) with Chaos Toolkit's rules: a steady-state
hypothesis before and after the method, and rollbacks that always run. Every wait for a state is bounded
by a named setting; the phase lengths are load durations, not waits.

What the run shows while it goes (progress lines under pytest, the live view and the journal of a game
day) is an :class:`Observer`'s business: the protocol only tells it what happens.

Outcome and exit status: passed 0; failed 1 (a verdict failed, or an error); aborted 3 (a budget or an
abort probe); not steady 4 (nothing injected); interrupted 130. (2, bad input refused before anything was
done, belongs to the command line.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chaos import checkers, truth
from chaos.adapter import ReadResult, Reads
from chaos.checkers import PhaseStats, Verdict
from chaos.config import Settings
from chaos.faults import active_faults, heal_all
from chaos.faults.schedule import Step
from chaos.history import History, Op, Outcome, Read
from chaos.run.plan import LOAD_PROBES, Plan, Probe, ProbeStatus
from chaos.run.targets import LocalTarget, Target, brokers_registered, consumer_lag, entry_serving, full_isr
from chaos.stats import nearest_rank
from chaos.workload import LoadGenerator, LoadSpec, now_us, read_key

if TYPE_CHECKING:
    from chaos.report.schema import Results

log = logging.getLogger("chaos.run")

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_ABORTED, EXIT_NOT_STEADY, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
OUTCOMES = {EXIT_OK: "passed", EXIT_FAILED: "failed", EXIT_ABORTED: "aborted", EXIT_NOT_STEADY: "not steady",
            EXIT_INTERRUPTED: "interrupted"}
TICK_S = 0.1  # the main loop's clock (when to act and check), not a wait for a state
PROBE_TIMEOUT_S = 2.0


class Abort(Exception):
    """A budget was breached or an abort probe failed: stop the method now."""


def window_stats(ops: list[Op], now: int, window_s: float, *, slack_us: int = 0) -> dict[str, Any]:
    """Error rate and latency percentiles of the operations completed in the ``window_s`` seconds up to ``now``
    (``ops`` in completion order, which is nearly end order: ``slack_us`` more is scanned for stragglers)."""
    cutoff = now - int(window_s * 1e6)
    lat: list[int] = []
    errors = n = 0
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if op.end_us is None:
            continue
        if op.end_us < cutoff - slack_us:
            break
        if op.end_us < cutoff or op.end_us > now:
            continue
        n += 1
        if op.outcome is Outcome.OK:
            lat.append(op.end_us - op.intended_us)
        else:
            errors += 1
    lat.sort()
    return {"window_s": window_s, "ops": n, "errors": errors, "error_rate": errors / n if n else None,
            "p50_ms": nearest_rank(lat, 0.5) / 1000 if lat else None,
            "p99_ms": nearest_rank(lat, 0.99) / 1000 if lat else None}


WARM_WINDOW_S = 2.0  # warm-up: the median of each such window is compared with the one before
WARM_FALL = 0.8  # still warming while a window's median is below 80% of the previous one's...
WARM_SLACK_MS = 5.0  # ...less this much (so a few milliseconds of noise on a fast pipeline are not a trend)
WARM_ORDER_SLACK_US = 10_000_000  # ops are appended in completion order, nearly end order: scan 10 s further


def still_warming(ops: list[Op], now: int) -> tuple[float, float] | None:
    """(previous, last) window medians in ms while the latency still falls markedly, else None (also when a
    window has no acknowledged operation: whether the pipeline serves at all is the probes' question)."""
    window = int(WARM_WINDOW_S * 1e6)
    last = window_stats(ops, now, WARM_WINDOW_S, slack_us=WARM_ORDER_SLACK_US)["p50_ms"]
    prev = window_stats(ops, now - window, WARM_WINDOW_S, slack_us=WARM_ORDER_SLACK_US)["p50_ms"]
    if last is None or prev is None or last >= WARM_FALL * prev - WARM_SLACK_MS:
        return None
    return prev, last


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


class Observer(Protocol):
    """What a run tells the outside while it goes: :class:`chaos.report.live.Progress` (pytest progress
    lines) and ``chaos.gameday.live.GamedayObserver`` (the live view and the journal).

    ``event(kind, text, outcome, **detail)`` kinds: deploy, phase, steady, inject, heal, abort, stop, rollback,
    traces, healed, verify, load, report, end. ``tick(run)`` is called every ~0.1 s from the run's main thread
    while it waits (never while it blocks on the pipeline). ``finish(run, result)`` comes just before the
    report is written: the last chance to add to ``result.extra``."""

    def start(self, run: Run) -> None: ...

    def event(self, kind: str, text: str, outcome: str = "ok", **detail: Any) -> None: ...

    def tick(self, run: Run) -> None: ...

    def finish(self, run: Run, result: RunResult) -> None: ...

    def stop(self, run: Run, result: RunResult) -> None: ...


class NullObserver:
    """Shows nothing."""

    def start(self, run: Run) -> None:
        pass

    def event(self, kind: str, text: str, outcome: str = "ok", **detail: Any) -> None:
        pass

    def tick(self, run: Run) -> None:
        pass

    def finish(self, run: Run, result: RunResult) -> None:
        pass

    def stop(self, run: Run, result: RunResult) -> None:
        pass


class Observers:
    """Several observers as one (progress lines and a journal, say)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def start(self, run: Run) -> None:
        for o in self.observers:
            o.start(run)

    def event(self, kind: str, text: str, outcome: str = "ok", **detail: Any) -> None:
        for o in self.observers:
            o.event(kind, text, outcome, **detail)

    def tick(self, run: Run) -> None:
        for o in self.observers:
            o.tick(run)

    def finish(self, run: Run, result: RunResult) -> None:
        for o in self.observers:
            o.finish(run, result)

    def stop(self, run: Run, result: RunResult) -> None:
        for o in self.observers:
            o.stop(run, result)


@dataclass
class RunResult:
    name: str
    defects: tuple[str, ...]
    history: History
    truth: truth.GroundTruth | None
    verdicts: list[Verdict]
    stats: dict[str, PhaseStats]
    convergence_s: float | None
    wall_s: float
    artefacts: Path
    faults: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    schedule: dict[str, Any] | None = None  # a randomised schedule: seed, profile, steps (chaos.schedules)
    outcome: str = "passed"
    reason: str = ""
    exit_code: int = EXIT_OK
    extra: dict[str, Any] = field(default_factory=dict)  # more sections of results.json (``gameday``)

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

    def to_dict(self) -> Results:
        """The ``results.json`` document (layout in :mod:`chaos.report.schema`)."""
        from chaos.report.results import results_of

        return results_of(self)


class Run:
    """One run of ``plan`` against ``target`` (see the module docstring). ``execute()`` returns the result;
    with ``raise_errors`` an error of the run itself (not a failed verdict) is raised again after everything
    is healed and the report is written, and so is an interrupt (pytest then stops as on Ctrl-C)."""

    def __init__(self, target: Target, plan: Plan, settings: Settings, *, artefacts: Path,
                 observer: Observer | None = None, seed: int | None = None, raise_errors: bool = False,
                 schedule_record: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                 meta: dict[str, Any] | None = None, id_prefix: str | None = None) -> None:
        self.target = target
        self.plan = plan
        self.s = settings
        self.artefacts = artefacts
        self.observer: Observer = observer or NullObserver()
        self.seed = seed or settings.seed or secrets.randbits(31)
        self.raise_errors = raise_errors
        self.schedule_record = schedule_record
        self.extra = dict(extra or {})
        self.meta = dict(meta or {})  # more keys of the history's meta record
        self.id_prefix = id_prefix
        self.env: Any = target.env
        self.gen: LoadGenerator | None = None
        self.history: History | None = None
        self.phase = "starting"
        self.probes: dict[str, ProbeStatus] = {p.name: ProbeStatus(None, "-") for p in plan.probes}
        self.window: dict[str, Any] = {}
        self.lag: int | None = None
        self.applied: int | None = None
        self.samples: list[dict[str, Any]] = []
        self.fault_windows: list[dict[str, Any]] = []
        self.step_status: dict[int, str] = {}  # method step -> planned / active / healed / HEAL FAILED
        self.heal_at_us: int | None = None
        self.leftovers: list[str] = []
        self.verdicts: list[Verdict] = []
        self.truth: truth.GroundTruth | None = None
        self.convergence_s: float | None = None
        self.started = time.monotonic()
        self._inject_us: dict[int, int] = {}
        self._in_place_us: dict[int, int] = {}
        self._stop_sampler = threading.Event()
        self._sampler: threading.Thread | None = None
        self._stop_watch = threading.Event()
        self._watcher: threading.Thread | None = None
        self._converged: dict[str, float | None] = {"s": None}

    @property
    def local(self) -> bool:
        return isinstance(self.target, LocalTarget)

    @property
    def verifies(self) -> bool:
        """Ground truth and invariants: only a pipeline this run deployed can be judged exactly."""
        return self.local and self.plan.fresh_pipeline

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- the protocol ---------------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        plan, obs = self.plan, self.observer
        code, reason = EXIT_OK, ""
        error: BaseException | None = None
        steady_before: bool | None = None
        steady_after: bool | None = None
        after_detail = ""
        obs.start(self)
        try:
            if self.verifies:
                obs.event("deploy", "deploying a fresh pipeline (own topics, groups, schema)")
                dep = self.target.deploy(plan.name, plan.defects)
                obs.event("deploy", f"deployed {dep.tag}", topics=dep.topics, schema=dep.schema)
            plan.method.validate(self.env)  # before any load or injection
            self._start_load()
            self._phase("warmup")
            self._warm_up()
            self._phase("before")
            self._wait(plan.before_s)
            steady_before, failing = self._hypothesis("before")
            if not steady_before:
                code, reason = EXIT_NOT_STEADY, f"not steady: before the method ({failing}), nothing injected"
                obs.event("steady", f"REFUSED to inject: {reason}", "failed")
            else:
                if plan.method.steps:
                    self._method()
                steady_after, after_detail = self._after()
        except Abort as exc:
            code, reason, error = EXIT_ABORTED, f"aborted: {exc}", None
        except KeyboardInterrupt as exc:
            code, reason, error = EXIT_INTERRUPTED, "interrupted: Ctrl-C or a termination signal", exc
        except Exception as exc:
            code, reason, error = EXIT_FAILED, f"error: {exc.__class__.__name__}: {exc}", exc
        with uninterruptible(lambda m: obs.event("stop", m)):
            self._heal_and_rollback(reason)
        try:
            self._verify(code, steady_before, steady_after, after_detail, reason)
        except KeyboardInterrupt as exc:
            self.verdicts.append(Verdict("run", False, message="interrupted while verifying (nothing to heal)"))
            code, error = code or EXIT_INTERRUPTED, error or exc
        except Exception as exc:
            self.verdicts.append(Verdict("verification", False, message=f"{exc.__class__.__name__}: {exc}"))
            log.exception("verifying %s", plan.name)
            error = error or exc
        if code == EXIT_OK and not all(self.verdicts):
            code = EXIT_FAILED
        result = self._result(code, reason)
        obs.finish(self, result)
        self._write(result)
        obs.event("end", f"{plan.name}: {result.outcome.upper()}" + (f" ({reason})" if reason else ""),
                  result.outcome, exit=code, report=str(self.artefacts),
                  verdicts={v.name: v.ok for v in self.verdicts})
        obs.stop(self, result)
        if error is not None and self.raise_errors:
            raise error
        return result

    # -- load, probes and samples ------------------------------------------------------------------------------

    def _start_load(self) -> None:
        t = self.target
        dep = t.deployment
        self.history = History(meta={
            "experiment": self.plan.name, "run_id": self.env.run_id, "seed": self.seed,
            "pipeline": t.pipeline.name, "defects": list(self.plan.defects),
            "topics": dict(dep.topics) if dep else None, "schema": dep.schema if dep else None,
            "load": self._load().__dict__, "images": getattr(getattr(self.env, "images", None), "all_refs",
                                                               lambda: {})(),
            "started_at_us": now_us(), **self.meta})
        prefix = self.id_prefix or (dep.tag.rsplit("_", 1)[-1] if dep else f"gd{secrets.token_hex(4)}")
        self.gen = LoadGenerator(t.pipeline.client, t.entry, self._load(), self.history, seed=self.seed,
                                 rpc_timeout_s=self.s.rpc_timeout_s, id_prefix=prefix)
        self.gen.start(phase="warmup")
        self._sampler = threading.Thread(target=self._sample_loop, name="chaos-sampler", daemon=True)
        self._sampler.start()

    def _load(self) -> LoadSpec:
        """The plan's load, with the ``read_share`` setting where the pipeline declares reads (none otherwise)."""
        share = self.s.read_share if self.target.pipeline.reads is not None else 0.0
        return dataclasses.replace(self.plan.load, read_share=share)

    def counts(self) -> dict[str, Any]:
        gen = self.gen
        if gen is None:
            return {}
        c = gen.counts
        return {"sent": gen.issued * self.plan.load.batch_size, "acked": int(c.get("ok", 0)),
                "errors": int(c.get("fail", 0)) + int(c.get("unknown", 0)), "applied": self.applied, "lag": self.lag}

    def _sample_loop(self) -> None:
        """Probes that talk to the pipeline, rows applied and lag, in their own thread (a probe may block
        while a broker is down): one sample a second for the report's plots."""
        while not self._stop_sampler.is_set():
            begun = time.monotonic()
            self._sample()
            self._stop_sampler.wait(max(0.0, self.s.gameday_probe_interval_s - (time.monotonic() - begun)))

    def _sample(self) -> None:
        t = self.target
        for p in self.plan.probes:
            if p.type in LOAD_PROBES:
                continue
            try:
                ok, text = self._probe(p)
            except Exception as exc:
                ok, text = False, f"{exc.__class__.__name__}: {str(exc)[:60]}"
            self.probes[p.name] = ProbeStatus(ok, text, time.monotonic())
        w = t.watched
        lag = applied = None
        if w is not None and t.bootstrap and w.consumers:
            with contextlib.suppress(Exception):
                lag = consumer_lag(t.bootstrap, w.consumers, PROBE_TIMEOUT_S)
        with contextlib.suppress(Exception):
            applied = t.applied()
        self.lag, self.applied = lag, applied
        c = self.counts()
        self.samples.append({"t_us": now_us(), "phase": self.phase, "sent": c.get("sent", 0),
                             "acked": c.get("acked", 0), "errors": c.get("errors", 0), "applied": applied,
                             "consumer_lag": lag})

    def _probe(self, p: Probe) -> tuple[bool, str]:
        t = self.target
        if p.type == "entry_serving":
            return entry_serving(t.entry, PROBE_TIMEOUT_S)
        if p.type == "brokers":
            n = brokers_registered(t.bootstrap)
            want = int(p.max) if p.max is not None else t.brokers
            return n >= want, f"{n} registered"
        w = t.watched
        if w is None:
            return False, "no pipeline known"
        if p.type == "full_isr":
            return full_isr(t.bootstrap, w.topics)
        if p.type == "consumer_lag":
            lag = consumer_lag(t.bootstrap, w.consumers, PROBE_TIMEOUT_S)
            return lag <= (p.max or 0), f"{lag:,}"
        raise ValueError(f"unknown probe {p.type}")

    def _refresh(self) -> None:
        """Window figures and the load-derived probes, from the history (main thread)."""
        hist = self.history
        if hist is None:
            return
        self.window = window_stats(hist.ops, now_us(), self.plan.budgets.window_s)
        for p in self.plan.probes:
            if p.type in LOAD_PROBES:
                w = window_stats(hist.ops, now_us(), p.window_s)
                v = w["error_rate"] if p.type == "error_rate" else w["p99_ms"]
                ok = None if v is None else v <= (p.max or 0)
                text = "-" if v is None else (f"{v:.1%}" if p.type == "error_rate" else f"{v:,.0f} ms")
                self.probes[p.name] = ProbeStatus(ok, text, time.monotonic())

    def _tick(self, check: bool) -> None:
        self._refresh()
        self.observer.tick(self)
        if check:
            self._check_budgets()

    def _warm_up(self) -> None:
        """The plan's warm-up, then on while the latency still falls (a JVM compiling its hot paths, caches
        filling), bounded by ``warmup_timeout_s``: "before" must be the pipeline's steady state, or every
        comparison with it (a fault's latency must show) measures the warm-up instead."""
        self._wait(self.plan.warmup_s)
        deadline = time.monotonic() + self.s.warmup_timeout_s
        while self.history is not None:
            falling = still_warming(self.history.ops, now_us())
            if falling is None:
                return
            prev, last = falling
            if time.monotonic() >= deadline:
                self.observer.event("warmup", f"latency still falling after {self.s.warmup_timeout_s:g} s more "
                                              f"warm-up (p50 {prev:.0f} -> {last:.0f} ms); judging from here")
                return
            self._wait(WARM_WINDOW_S)

    def _wait(self, seconds: float, *, check: bool = False) -> None:
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            self._tick(check)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(TICK_S, left))

    def _check_budgets(self) -> None:
        b = self.plan.budgets
        w = self.window
        if b.max_error_rate is not None and w.get("error_rate") is not None and w["error_rate"] > b.max_error_rate:
            raise Abort(f"budget breached: error rate {w['error_rate']:.1%} over the last {b.window_s:g} s "
                        f"({w['errors']} of {w['ops']} operations) > {b.max_error_rate:.0%}")
        if b.max_p99_ms is not None and w.get("p99_ms") is not None and w["p99_ms"] > b.max_p99_ms:
            raise Abort(f"budget breached: p99 latency {w['p99_ms']:,.0f} ms over the last {b.window_s:g} s "
                        f"> {b.max_p99_ms:,.0f} ms")
        if b.max_consumer_lag is not None and self.lag is not None and self.lag > b.max_consumer_lag:
            raise Abort(f"budget breached: consumer lag {self.lag:,} > {b.max_consumer_lag:,}")
        for p in self.plan.probes:
            r = self.probes.get(p.name)
            if p.during == "abort" and r is not None and r.ok is False:
                raise Abort(f"abort condition: steady-state probe {p.name} failed ({r.value})")

    def _probes_ok(self, since: float) -> tuple[bool, str]:
        """All probes passing, each measured after ``since`` (monotonic)."""
        failing = []
        for p in self.plan.probes:
            r = self.probes.get(p.name)
            if r is None or r.ok is not True or r.at < since:
                failing.append(f"{p.name}={'?' if r is None or r.at < since else r.value}")
        return not failing, ", ".join(failing)

    def _hypothesis(self, when: str) -> tuple[bool, str]:
        """The steady state before the method: every probe passes, waiting at most gameday_steady_timeout_s."""
        if not self.plan.probes:
            return True, ""
        since = time.monotonic()
        deadline = since + self.s.gameday_steady_timeout_s
        while True:
            self._tick(False)
            ok, failing = self._probes_ok(since)
            if ok:
                self.observer.event("steady", f"steady state {when}: OK ({len(self.plan.probes)} probe(s))",
                                    probes={k: v.value for k, v in self.probes.items()})
                return True, ""
            if time.monotonic() >= deadline:
                self.observer.event("steady", f"steady state {when}: NOT steady ({failing})", "failed",
                                    failing=failing)
                return False, failing
            time.sleep(TICK_S)

    # -- phases and faults -----------------------------------------------------------------------------------

    def _phase(self, name: str) -> None:
        assert self.gen is not None
        self.gen.mark_phase(name)
        self.phase = name
        self.observer.event("phase", f"phase {name}", step=name)

    def _method(self) -> None:
        self._phase("during")
        method = self.plan.method
        self.step_status = {i: "planned" for i in range(len(method.steps))}

        def on_injecting(i: int, step: Step) -> None:
            # the window opens when injecting begins: a staged fault (cut the followers, wait for the ISR to
            # shrink, then kill the leader) disturbs the pipeline long before its injection returns
            self._inject_us[i] = now_us()
            self.observer.event("inject", f"injecting {step.label()}", "started", step=step.label(), spec=step.spec)

        def on_inject(i: int, step: Step) -> None:
            self._inject_us.setdefault(i, now_us())
            self._in_place_us[i] = now_us()
            self.step_status[i] = "active"
            self.observer.event("inject", f"inject {step.label()} -> {_resolved(step)}", step=step.label(),
                                spec=step.spec, resolved=step.fault.resolved)

        def on_heal(i: int, step: Step, took: float, error: BaseException | None) -> None:
            end = now_us()
            start = self._inject_us.get(i, end)
            assert self.history is not None
            self.history.add_fault(step.fault.name, start, end, step.fault.describe())
            # start..end: injecting began to healed; active_from..active_until: surely in place (injected, not
            # yet healing), for checks that need the whole fault (a latency floor)
            self.fault_windows.append({**step.fault.describe(), "start_us": start, "end_us": end,
                                       "active_from_us": self._in_place_us.get(i, start),
                                       "active_until_us": end - int(took * 1e6)})
            self.step_status[i] = "healed" if error is None else "HEAL FAILED"
            detail = f" FAILED: {error.__class__.__name__}: {error}" if error is not None else ""
            self.observer.event("heal", f"heal {step.label()} ({took:.2f} s){detail}",
                                "ok" if error is None else "failed", step=step.label(), seconds=round(took, 3),
                                error=str(error) if error else None)

        try:
            method.run(self.env, tick=lambda: self._tick(True), on_injecting=on_injecting, on_inject=on_inject,
                       on_heal=on_heal)
        finally:
            self.heal_at_us = now_us()
            self.fault_windows.sort(key=lambda w: w["start_us"])
        if self.verifies:
            self._watcher = threading.Thread(target=self._watch_convergence, name="chaos-convergence", daemon=True)
            self._watcher.start()

    def _after(self) -> tuple[bool | None, str]:
        """Load after the heal: at least after_s, then (with probes) until every probe passes again, bounded."""
        self._phase("after")
        heal = time.monotonic()
        check = bool(self.plan.method.steps)
        self._wait(self.plan.after_s, check=check)
        if not self.plan.probes or not self.plan.wait_after_for_steady:
            return None, ""
        deadline = time.monotonic() + self.s.gameday_steady_timeout_s
        while True:
            ok, failing = self._probes_ok(heal)
            if ok:
                took = time.monotonic() - heal
                self.observer.event("steady", f"steady state after: OK, {took:.1f} s after the heal",
                                    seconds_after_heal=round(took, 2))
                return True, f"restored {took:.1f} s after the heal"
            if time.monotonic() >= deadline:
                self.observer.event("steady", f"steady state NOT restored within {self.s.gameday_steady_timeout_s:g} "
                                    f"s: {failing}", "failed", failing=failing)
                return False, f"not restored within {self.s.gameday_steady_timeout_s:g} s: {failing}"
            self._wait(TICK_S, check=check)

    def _heal_and_rollback(self, reason: str) -> None:
        """Always: heal every fault at once, stop the load, run the rollbacks, look for traces."""
        obs, t = self.observer, self.target
        injected = any(s.fault.injected_at is not None for s in self.plan.method.steps) or active_faults(self.env)
        if reason:
            head, _, rest = reason.partition(":")
            obs.event("abort" if head == "aborted" else "stop",
                      f"{head.upper()}:{rest}: {'healing everything now' if injected else 'nothing was injected'}",
                      "healing", reason=reason)
        healed = heal_all(self.env)  # anything still active (the method heals its own steps in a finally)
        if healed:
            obs.event("heal", f"safety net healed {', '.join(healed)}", healed=healed)
        if self.heal_at_us is None:
            self.heal_at_us = now_us()
        if self.gen is not None:
            try:
                self.gen.stop()
            except Exception as exc:
                obs.event("load", f"load generator: {exc}", "failed", error=str(exc))
        self._stop_sampler.set()
        if self._sampler is not None:
            self._sampler.join(timeout=4 * PROBE_TIMEOUT_S + 2)
        for rb in self.plan.rollbacks:
            begun = time.monotonic()
            try:
                if rb.action == "wait_recovered":
                    t.wait_recovered()
                elif rb.action == "reset_links":
                    t.reset_links()
                elif rb.action == "ensure_running":
                    t.ensure_running(list(rb.nodes))
                outcome, err = "ok", ""
            except Exception as exc:
                outcome, err = "failed", f"{exc.__class__.__name__}: {exc}"
            obs.event("rollback", f"rollback {rb.describe()}: {outcome} ({time.monotonic() - begun:.1f} s)"
                      + (f" {err}" if err else ""), outcome, step=rb.describe(), error=err or None)
        if not self.plan.method.steps and not healed and not self.plan.rollbacks:
            return  # nothing was injected: no trace to look for
        try:
            left = t.leftovers()
        except Exception as exc:
            left = [f"could not inspect: {exc}"]
        if left:
            obs.event("traces", f"fault traces left: {'; '.join(left)}; healing them", "healing")
            done = t.heal_everything()
            left = t.leftovers()
            obs.event("traces", "traces healed" if not left else "traces left", "ok" if not left else "failed",
                      done=done, left=left)
        self.leftovers = left
        obs.event("healed", "everything healed, nothing left" if not left else f"STILL LEFT: {'; '.join(left)}",
                  "ok" if not left else "failed", left=left)

    # -- verification -----------------------------------------------------------------------------------------

    def _watch_convergence(self) -> None:
        """Time from heal until every event acknowledged for an op issued before the heal is applied."""
        assert self.history is not None and self.heal_at_us is not None
        env, dep, heal = self.env, self.target.deployment, self.heal_at_us
        assert dep is not None
        while True:
            target = {op.id for op in list(self.history.ops) if op.outcome == Outcome.OK and op.intended_us < heal}
            try:
                if target <= truth.applied_ids(env, dep):
                    self._converged["s"] = (now_us() - heal) / 1e6
                    return
            except Exception as exc:  # the database may itself be recovering
                log.debug("convergence probe failed: %s", exc)
            if self._stop_watch.wait(self.s.poll_interval_s * 2):
                # one last probe after quiescence, so a convergence at the very end is not missed
                with contextlib.suppress(Exception):
                    if target <= truth.applied_ids(env, dep):
                        self._converged["s"] = (now_us() - heal) / 1e6
                return

    def quiesce(self) -> None:
        """Wait until every consumer group has read everything and the applied rows stop changing (bounded by
        quiesce_timeout_s); what is still missing then counts as lost."""
        from chaos.env import wait_until

        s, env, dep, hist = self.s, self.env, self.target.deployment, self.history
        assert dep is not None and hist is not None
        acked = {op.id for op in hist.ops if op.outcome == Outcome.OK}
        state = {"count": -1, "since": time.monotonic()}
        settle_s = max(2.0, s.consumer_session_timeout_ms / 1000)

        def quiet() -> bool:
            lag = truth.consumer_lag(env, dep, 5, exact=True)
            count = truth.count_applied(env, dep)
            if count != state["count"]:
                state.update(count=count, since=time.monotonic())
            if lag > 0:
                return False
            if acked <= truth.applied_ids(env, dep):
                return True
            return time.monotonic() - state["since"] >= settle_s  # nothing moves: what is missing is lost

        try:
            wait_until(quiet, s.quiesce_timeout_s, "the pipeline to drain (lag 0, applied rows stable)",
                       s.poll_interval_s * 2)
        except TimeoutError as exc:
            log.warning("%s; checking what is there", exc)

    def _verify(self, code: int, before: bool | None, after: bool | None, after_detail: str, reason: str) -> None:
        v, plan = self.verdicts, self.plan
        if plan.probes and before is not None:
            v.append(Verdict("steady_state_before", bool(before),
                             message="every probe passed before the method" if before else reason))
        if after is not None:
            v.append(Verdict("steady_state_after", bool(after), message=after_detail))
        if reason and code != EXIT_NOT_STEADY:
            v.append(Verdict("run", False, message=reason))
        if self.leftovers:
            v.append(Verdict("healed", False, message=f"left after healing: {'; '.join(self.leftovers)}"))
        hist = self.history
        if hist is None:
            return
        if code == EXIT_OK and self.verifies:
            dep = self.target.deployment
            assert dep is not None
            self.observer.event("verify", "waiting for the pipeline to drain, then reading ground truth")
            if plan.method.steps:
                self.env.wait_recovered()
            self.quiesce()
            self._stop_watch.set()
            gt = truth.read_all(self.env, dep, self.s.quiesce_timeout_s)
            self.truth = gt
            p = dep.pipeline
            committed = {t: recs for t, recs in gt.records.items()}
            v += checkers.check_all(hist, gt.applied, gt.kafka, None, order=p.order, committed=committed,
                                    kafka_at_most_once=p.entry_topic.at_most_once)
            v.append(checkers.check_positions(hist, gt.kafka, required=p.positions))
            for t in p.topics:
                if t.at_most_once and t.name != gt.entry_topic:
                    kd = checkers.check_kafka_duplicates(hist, gt.records.get(t.name, []))
                    v.append(Verdict(f"kafka_duplicates:{t.name}", kd.ok, kd.counts, kd.examples, kd.message))
            v.append(checkers.check_decoding(gt.undecodable, {t: len(r) for t, r in gt.records.items()}))
            from chaos.adapter import ModelInput

            try:
                v += p.model(ModelInput(history=hist, applied=gt.applied, records=gt.records, state=gt.state,
                                         adjustments=gt.adjustments))
            except Exception as exc:
                v.append(Verdict("model", False, message=f"the adapter's model raised {exc.__class__.__name__}: "
                                                        f"{exc}"))
            if p.reads is not None:
                v += self._check_reads(p.reads, hist, gt)
            if plan.method.steps and self.heal_at_us is not None:
                if self._watcher is not None:
                    self._watcher.join(timeout=self.s.quiesce_timeout_s)
                conv = self._converged["s"]
                self.convergence_s = conv
                # the plan's bound, else the pipeline's own budget (its adapter's), else the setting
                bound = plan.convergence_bound_s if plan.convergence_bound_s is not None else \
                    p.budget("convergence_s", self.s.convergence_bound_s)
                v.append(checkers.check_convergence(self.heal_at_us, None if conv is None else
                                                    self.heal_at_us + int(conv * 1e6), bound))
        self._stop_watch.set()
        if plan.budgets.phases:
            v.append(checkers.check_availability(hist, plan.budgets.phases))

    def _check_reads(self, reads: Reads, hist: History, gt: truth.GroundTruth) -> list[Verdict]:
        """The read contract the adapter declares: final reads after quiescence (until they return the
        converged state, bounded by ``read_converge_timeout_s``), then the checkers of its promises."""
        out: list[Verdict] = []
        keys = sorted({op.key for op in hist.ops})
        if reads.converge:
            try:
                expected = {k: reads.expected(gt.state, k) for k in keys}
            except Exception as exc:
                return [Verdict("reads_converge", False, message=f"the adapter's Reads.expected raised "
                                                                 f"{exc.__class__.__name__}: {exc}")]
            self.observer.event("verify", f"reading {len(keys)} keys back until they return the converged state")
            final = asyncio.run(self._final_reads(expected))
            hist.reads.extend(final)
            out.append(checkers.check_reads_converge(final, expected))
        if reads.monotonic and hist.reads:
            out.append(checkers.check_reads_monotonic(hist))
        if reads.staleness_s is not None and any(r.phase != "final" for r in hist.reads):
            out.append(checkers.check_reads_staleness(hist, reads.staleness_s, {a.event_id for a in gt.applied}))
        return out

    async def _final_reads(self, expected: Mapping[str, ReadResult]) -> list[Read]:
        """Read every key until its answer equals ``expected`` or the bound passes; every read is kept."""
        client = self.target.pipeline.client()
        await client.open(self.target.entry)
        done: list[Read] = []
        pending = set(expected)
        deadline = time.monotonic() + self.s.read_converge_timeout_s
        sem = asyncio.Semaphore(16)

        async def one(key: str) -> Read:
            async with sem:
                return await read_key(client, key, self.s.rpc_timeout_s, now_us(), "final")

        try:
            while pending:
                got = await asyncio.gather(*(one(k) for k in sorted(pending)))
                done += got
                pending = {r.key for r in got if not _matches(r, expected[r.key])}
                if not pending or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(min(self.s.poll_interval_s, max(0.0, deadline - time.monotonic())))
        finally:
            await client.close()
        return done

    # -- the result and the report ------------------------------------------------------------------------------

    def _result(self, code: int, reason: str) -> RunResult:
        hist = self.history or History(meta={"experiment": self.plan.name})
        return RunResult(name=self.plan.name, defects=tuple(self.plan.defects), history=hist, truth=self.truth,
                         verdicts=self.verdicts, stats=checkers.phase_stats(hist), convergence_s=self.convergence_s,
                         wall_s=self.elapsed(), artefacts=self.artefacts, faults=list(self.fault_windows),
                         samples=list(self.samples), schedule=self.schedule_record,
                         outcome=OUTCOMES.get(code, "failed"), reason=reason, exit_code=code, extra=self.extra)

    def _write(self, result: RunResult) -> None:
        from chaos import report

        if self.history is None:
            return
        try:
            report.write_experiment(result, self.artefacts)
        except Exception as exc:
            log.exception("writing the report of %s", self.plan.name)
            self.observer.event("report", f"could not write the report: {exc}", "failed")


def _matches(got: Read, want: ReadResult) -> bool:
    return got.outcome == Outcome.OK and all(
        getattr(want, f) is None or getattr(want, f) == getattr(got, f) for f in ("found", "value", "count", "version"))


def _resolved(step: Step) -> str:
    from chaos.report.live import fault_label

    return fault_label(step.fault.name, {"resolved": step.fault.resolved})
