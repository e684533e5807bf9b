"""Randomised fault schedules: serialisable fault specs, recoverability rules, Hypothesis strategies,
Hypothesis profiles, the state machine and the replay-file format. Pure: no I/O except reading and
writing replay files; the state machine runs the schedules it builds through an executor it is given.

A **fault spec** is plain JSON: the fault's catalogue name plus its constructor's keyword arguments,
with role strings for targets and globs for links::

    {"fault": "latency", "links": "ingest-kafka-*", "latency_ms": 200, "jitter_ms": 20}
    {"fault": "link_down", "links": "sink->postgres"}
    {"fault": "kill", "target": "kafka-2"}
    {"fault": "split", "side": "kafka-1"}

:func:`build_fault` (the one fault catalogue, :mod:`chaos.faults.catalogue`) turns one into a fresh
:class:`~chaos.faults.Fault`. The names drawn from (links, service replicas) come from the environment's
topology (:class:`Shape`), so the schedules fit whatever pipeline the adapter describes. A **schedule**
is a list of :class:`PlannedStep` (``at_s``, ``duration_s``, ``spec``) and
becomes a :class:`~chaos.faults.Schedule` with :func:`to_schedule`.

**Recoverability** (:class:`Limits`, :class:`Planner`, :func:`check_steps`): two faults never hold the
same node at once (a paused broker is not also killed), a link that is down carries nothing else, and
at most ``max_brokers_impaired`` brokers (default 1: a minority of 3) are impaired at any instant. A
fault on a role (``controller``, ``leader:N``) may resolve to any broker, so it excludes every other
broker fault while it is active; ``bridge`` and ``rolling_restart`` touch the whole cluster and use the
whole budget. Raising ``max_brokers_impaired`` to 2 or 3 lets schedules take the quorum away.

**Profiles** (:data:`PROFILES`, registered once at import as ``chaos-dev``, ``chaos-ci``,
``chaos-nightly`` so they never replace Hypothesis's own ``ci`` profile that other tests load when
``CI`` is set): examples, steps per example, the schedule's horizon; deadlines off, no example
database (the replay file is the reproduction), the ``explain`` phase off (it re-runs examples).

**Replay file** (``replay.json``, :func:`replay_document` / :func:`load_replay`)::

    {"format": "pipeline-chaos-replay", "format_version": 1, "seed": 123, "profile": "nightly",
     "defects": ["commit_before_write"], "workload_seed": 42, "example": 3, "max_brokers_impaired": 1,
     "phases": {"warmup_s": 3, "before_s": 3, "after_s": 5},
     "steps": [{"at_s": 0, "duration_s": 4, "spec": {"fault": "link_down", "links": "projector-postgres"}}],
     "outcome": {"ok": false, "failed": ["lost", "convergence"]}}
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, assume, note, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chaos.faults import Schedule, Step
from chaos.faults import targets as T
from chaos.faults.catalogue import LINK_FAULTS, TARGET_KEYS, build_fault, describe_spec

if TYPE_CHECKING:
    from chaos.env import Topology

REPLAY_FORMAT = "pipeline-chaos-replay"
REPLAY_VERSION = 1
MIN_STEP_S = 1.0  # Schedule sorts a heal before an inject at the same instant: a step must last > 0
CI_SEED = 20261126  # the ci profile's seed when none is given: same examples on every run

# --- the shape of the topology the schedules draw from ------------------------------------------------

EVENT_FAULTS = ("restart", "rolling_restart")  # done when inject returns; the step holds the budget meanwhile
BROKERS = T.BROKER_NODES


@dataclass(frozen=True)
class Shape:
    """The names the schedules draw from and reason about: the links, the service replicas (and postgres),
    the brokers, and which nodes each service selector (a name or a role) may name. Made from the
    environment's topology (:meth:`of`), so the schedules fit whatever pipeline the adapter describes."""

    links: tuple[str, ...]
    link_globs: tuple[str, ...]
    nodes: tuple[str, ...]
    selectors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    brokers: tuple[str, ...] = BROKERS

    @classmethod
    def of(cls, topology: Topology) -> Shape:
        services = topology.pipeline.services
        sels = {s.name: tuple(topology.nodes_of(s.name)) for s in services}
        for r in sorted({r for s in services for r in s.roles}):
            sels[r] = tuple(topology.selector_nodes(r))
        return cls(links=tuple(topology.link_names()), link_globs=tuple(topology.link_globs()),
                   nodes=(*topology.service_nodes(), "postgres"), selectors=tuple(sels.items()))

    def broker_names(self) -> list[str]:
        return list(self.brokers)

    def selector_nodes(self, selector: str) -> list[str]:
        return list(dict(self.selectors).get(selector, ()))


# --- recoverability --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What one active fault holds: nodes (exclusive), links (exclusive for link_down), broker budget."""

    nodes: frozenset[str] = frozenset()
    shared_links: frozenset[str] = frozenset()
    exclusive_links: frozenset[str] = frozenset()
    brokers: frozenset[str] = frozenset()  # named brokers impaired
    wildcard_brokers: int = 0  # role targets: some broker, unknown until injection
    whole_cluster: bool = False  # uses the whole broker budget


def _expand_links(links: Any, shape: Shape) -> frozenset[str]:
    pats = [links] if isinstance(links, str) else list(links or [])
    return frozenset(n for n in shape.links for p in pats if fnmatch.fnmatchcase(n, str(p)))


def _role_nodes(role: Any, shape: Shape) -> tuple[frozenset[str], int]:
    """(named nodes, number of unknown brokers) a role string may touch (the one role interpreter decides)."""
    t = T.target(str(role))
    if isinstance(t, T.Majority):
        return frozenset(), 2
    if isinstance(t, T.AnyBroker | T.ActiveController | T.LeaderOf | T.CoordinatorOf | T.Minority):
        return frozenset(), 1
    nodes = frozenset(t.candidates(shape))
    if not nodes:
        raise ValueError(f"unknown role {role!r}: no node of this topology; accepted: {', '.join(T.ROLE_NAMES)} "
                         f"(services and roles: {', '.join(name for name, _ in shape.selectors)})")
    return nodes, 0


_IMPAIRS = {"split": "side", "one_way": "dst"}  # which target a fault impairs (default: "target")


def claim_of(spec: Mapping[str, Any], shape: Shape) -> Claim:
    """What a spec holds while active (see the module docstring for the rules)."""
    name = spec.get("fault")
    if name in LINK_FAULTS:
        links = _expand_links(spec.get("links"), shape)
        return Claim(exclusive_links=links) if name == "link_down" else Claim(shared_links=links)
    if name == "leader_loss_after_isr_shrink":  # some broker (the leader at injection), cut from the others
        return Claim(nodes=frozenset(shape.brokers), wildcard_brokers=1)
    if name in ("terminate_backends", "hold_row_locks", "competing_writer"):
        return Claim(nodes=frozenset({"postgres-sessions"}))
    if name == "rolling_restart":
        return Claim(nodes=frozenset(BROKERS), brokers=frozenset(BROKERS), whole_cluster=True)
    if name == "bridge":
        return Claim(nodes=frozenset(BROKERS), whole_cluster=True)
    nodes: set[str] = set()
    impaired: set[str] = set()
    wild = 0
    for key in TARGET_KEYS:
        value = spec.get(key, "broker" if (name, key) == ("disk_full", "target") else None)
        if value is None:
            continue
        named, w = _role_nodes(value, shape)
        nodes |= named | (set(BROKERS) if w else set())  # a role may resolve to any broker: hold them all
        if key == _IMPAIRS.get(str(name), "target"):
            impaired |= named & set(BROKERS)
            wild += w
    if "postgres" in nodes:
        nodes.add("postgres-sessions")  # host-side sessions need the database up
    return Claim(nodes=frozenset(nodes), brokers=frozenset(impaired), wildcard_brokers=wild)


@dataclass(frozen=True)
class Limits:
    """Bounds that keep the cluster recoverable (and the example short)."""

    max_brokers_impaired: int = 1  # a minority of 3; 2 or 3 lets a schedule take the quorum away
    max_active: int = 3  # faults active at once
    horizon_s: float = 20.0  # no injection at or after this offset
    max_wait_s: int = 5  # one "let time pass" step


def _touches_brokers(c: Claim) -> bool:
    return bool(c.brokers or c.wildcard_brokers or c.whole_cluster)


def brokers_impaired(claims: Sequence[Claim], budget: int) -> int:
    """Brokers impaired at once, counting each role target as a distinct broker (the worst case) and a
    whole-cluster fault as the whole budget (more than the budget when anything else touches a broker)."""
    if any(c.whole_cluster for c in claims):
        return max(budget, 1) + sum(1 for c in claims if _touches_brokers(c)) - 1
    named = frozenset().union(*(c.brokers for c in claims)) if claims else frozenset()
    return len(named) + sum(c.wildcard_brokers for c in claims)


def conflicts(a: Claim, b: Claim) -> bool:
    return bool(a.nodes & b.nodes or a.exclusive_links & (b.exclusive_links | b.shared_links)
                or b.exclusive_links & a.shared_links)


def admissible(active: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], limits: Limits,
               shape: Shape) -> str | None:
    """None when ``spec`` may be injected while ``active`` are; else why not (one line)."""
    new = claim_of(spec, shape)
    claims = [claim_of(s, shape) for s in active]
    for s, c in zip(active, claims, strict=True):
        if conflicts(new, c):
            return f"{describe_spec(spec)} overlaps {describe_spec(s)} on the same node or link"
    n = brokers_impaired([*claims, new], limits.max_brokers_impaired)
    if _touches_brokers(new) and n > limits.max_brokers_impaired:
        return (f"{describe_spec(spec)} would impair {n} broker(s) at once; at most "
                f"{limits.max_brokers_impaired} allowed (max_brokers_impaired)")
    return None


@dataclass
class PlannedStep:
    at_s: float
    duration_s: float | None  # None while active in a Planner
    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        spec = {"fault": self.spec.get("fault"), **{k: v for k, v in self.spec.items() if k != "fault"}}
        return {"at_s": self.at_s, "duration_s": self.duration_s, "spec": spec}


@dataclass
class Planner:
    """A schedule built step by step on a virtual clock (what the state machine's rules drive)."""

    shape: Shape
    limits: Limits = field(default_factory=Limits)
    now: float = 0.0
    steps: list[PlannedStep] = field(default_factory=list)

    def active(self) -> list[int]:
        return [i for i, s in enumerate(self.steps) if s.duration_s is None]

    def healable(self) -> list[int]:
        return [i for i in self.active() if self.now - self.steps[i].at_s >= MIN_STEP_S]

    def why_not(self, spec: Mapping[str, Any]) -> str | None:
        if self.now >= self.limits.horizon_s:
            return f"the schedule's horizon ({self.limits.horizon_s} s) is reached"
        if len(self.active()) >= self.limits.max_active:
            return f"{self.limits.max_active} faults already active"
        return admissible([self.steps[i].spec for i in self.active()], spec, self.limits, self.shape)

    def broker_budget_left(self) -> int:
        claims = [claim_of(self.steps[i].spec, self.shape) for i in self.active()]
        return self.limits.max_brokers_impaired - brokers_impaired(claims, self.limits.max_brokers_impaired)

    def inject(self, spec: Mapping[str, Any]) -> int:
        why = self.why_not(spec)
        if why:
            raise ValueError(why)
        self.steps.append(PlannedStep(self.now, None, dict(spec)))
        return len(self.steps) - 1

    def heal(self, index: int) -> None:
        step = self.steps[index]
        if step.duration_s is not None:
            raise ValueError(f"step {index} is already healed")
        step.duration_s = max(MIN_STEP_S, self.now - step.at_s)

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def finish(self) -> list[PlannedStep]:
        """The final heal: every active fault healed at the current time (each lasting >= MIN_STEP_S).
        The schedule starts with its first fault: time that passed before it is only more "before" load."""
        for i in self.active():
            self.heal(i)
        start = min((s.at_s for s in self.steps), default=0.0)
        return [PlannedStep(s.at_s - start, s.duration_s, dict(s.spec)) for s in self.steps]


def check_steps(steps: Sequence[PlannedStep], limits: Limits, shape: Shape) -> None:
    """ValueError unless every step builds, lasts >= MIN_STEP_S and no instant breaks the rules."""
    for i, s in enumerate(steps):
        if not isinstance(s.at_s, int | float) or isinstance(s.at_s, bool) or s.at_s < 0:
            raise ValueError(f"step {i}: at_s={s.at_s!r} must be a number >= 0")
        if not isinstance(s.duration_s, int | float) or isinstance(s.duration_s, bool) or s.duration_s < MIN_STEP_S:
            raise ValueError(f"step {i}: duration_s={s.duration_s!r} must be a number >= {MIN_STEP_S} "
                             "(a heal at the instant of its inject would run first)")
        try:
            build_fault(s.spec)
        except ValueError as exc:
            raise ValueError(f"step {i}: {exc}") from None
    for i, s in enumerate(steps):
        # active when step i is injected: started no later, not yet healed (heals run before injects)
        active = [t.spec for j, t in enumerate(steps) if j != i and (t.at_s, j) < (s.at_s, i)
                  and t.at_s + (t.duration_s or 0) > s.at_s]
        why = admissible(active, s.spec, limits, shape)
        if why:
            raise ValueError(f"step {i} at {s.at_s} s: {why}")


def to_schedule(steps: Sequence[PlannedStep]) -> Schedule:
    """A fresh Schedule (new Fault objects) for the steps."""
    return Schedule([Step(at_s=float(s.at_s), fault=build_fault(s.spec), duration_s=float(s.duration_s or 0),
                          spec=dict(s.spec)) for s in steps])


# --- strategies ----------------------------------------------------------------------------------

_streams = st.sampled_from(["downstream", "upstream"])
_toxicity = st.sampled_from([1.0, 0.5])


def link_fault_specs(links: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Toxiproxy faults on a link glob."""
    ln = st.sampled_from(list(links))

    def toxic(name: str, **params: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({"fault": st.just(name), "links": ln, **params, "stream": _streams,
                                      "toxicity": _toxicity})

    slicer = st.integers(1, 1024).flatmap(lambda avg: st.fixed_dictionaries({
        "fault": st.just("slicer"), "links": ln, "average_size": st.just(avg), "size_variation": st.integers(0, avg),
        "delay_us": st.integers(0, 10_000), "stream": _streams}))
    return st.one_of(
        st.fixed_dictionaries({"fault": st.just("link_down"), "links": ln}),
        toxic("latency", latency_ms=st.integers(20, 1000), jitter_ms=st.integers(0, 100)),
        toxic("black_hole", timeout_ms=st.sampled_from([0, 1000, 5000])),
        toxic("reset_peer", timeout_ms=st.integers(0, 2000)),
        toxic("bandwidth", rate_kbps=st.integers(1, 1000)),
        toxic("slow_close", delay_ms=st.integers(100, 3000)),
        toxic("limit_data", bytes=st.integers(1, 100_000)),
        slicer,
    )


def node_fault_specs(nodes: Sequence[str], brokers: Sequence[str] = BROKERS,
                     broker_roles: Sequence[str] = ("controller", "leader:0", "leader:1")
                     ) -> st.SearchStrategy[dict[str, Any]]:
    """Engine, iptables, netem and disk faults on nodes (brokers by name or by role)."""
    every = [*nodes, *brokers, *broker_roles]
    any_node = st.sampled_from(every) if every else st.nothing()
    out: list[st.SearchStrategy[dict[str, Any]]] = [
        st.fixed_dictionaries({"fault": st.just("kill"), "target": any_node,
                               "signal": st.sampled_from(["SIGKILL", "SIGTERM"])}),
        st.fixed_dictionaries({"fault": st.just("pause"), "target": any_node}),
        st.fixed_dictionaries({"fault": st.just("stop"), "target": any_node}),
        st.fixed_dictionaries({"fault": st.just("restart"), "target": any_node, "hard": st.booleans()}),
        st.fixed_dictionaries({"fault": st.just("isolate"), "target": any_node}),
        st.one_of(
            st.fixed_dictionaries({"fault": st.just("netem"), "target": any_node,
                                   "delay_ms": st.integers(10, 200), "jitter_ms": st.integers(0, 50)}),
            st.fixed_dictionaries({"fault": st.just("netem"), "target": any_node,
                                   "loss_pct": st.integers(1, 30)}),
            st.fixed_dictionaries({"fault": st.just("netem"), "target": any_node,
                                   "duplicate_pct": st.integers(1, 30)}),
            st.fixed_dictionaries({"fault": st.just("netem"), "target": any_node,
                                   "corrupt_pct": st.integers(1, 20)}),
        ),
    ]
    if brokers:
        b = st.sampled_from(list(brokers))
        out += [
            st.fixed_dictionaries({"fault": st.just("split"), "side": b}),
            st.fixed_dictionaries({"fault": st.just("disk_full"), "target": st.sampled_from([*brokers, *broker_roles]),
                                   "leave_bytes": st.sampled_from([0, 262_144])}),
            st.lists(b, min_size=2, max_size=2, unique=True).map(
                lambda p: {"fault": "one_way", "src": p[0], "dst": p[1]}),
            st.fixed_dictionaries({"fault": st.just("bridge"), "bridge": b}),
            st.fixed_dictionaries({"fault": st.just("rolling_restart"), "hard": st.booleans()}),
            st.fixed_dictionaries({"fault": st.just("leader_loss_after_isr_shrink"), "partition": st.integers(0, 1)}),
        ]
    return st.one_of(out)


def database_fault_specs() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries({"fault": st.just("terminate_backends"),
                               "interval_s": st.one_of(st.none(), st.sampled_from([0.5, 1.0, 3.0]))}),
        st.fixed_dictionaries({"fault": st.just("hold_row_locks"), "write": st.booleans()}),
        st.fixed_dictionaries({"fault": st.just("competing_writer"), "rate": st.sampled_from([5.0, 25.0])}),
    )


def fault_specs(shape: Shape, *, brokers: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Any fault of the catalogue on the shape's topology (``brokers=False``: none that impairs a broker)."""
    return st.one_of(
        link_fault_specs(shape.link_globs),
        node_fault_specs(list(shape.nodes), shape.brokers if brokers else (),
                         ("controller", "leader:0", "leader:1") if brokers else ()),
        database_fault_specs(),
    )


@st.composite
def schedules(draw: st.DrawFn, shape: Shape, limits: Limits = Limits(), *, max_steps: int = 12,
              overlap: bool = True) -> list[PlannedStep]:
    """A timed schedule within ``limits``: the same moves as the state machine (inject, heal, wait).
    ``overlap=False``: a fault is healed before the next is injected."""
    plan = Planner(shape, limits)
    for _ in range(draw(st.integers(0, max_steps))):
        move = draw(st.sampled_from(["inject", "heal", "wait"]))
        if move == "inject" and (overlap or not plan.active()):
            spec = draw(fault_specs(shape, brokers=plan.broker_budget_left() > 0))
            if plan.why_not(spec) is None:
                plan.inject(spec)
        elif move == "heal" and plan.healable():
            plan.heal(draw(st.sampled_from(plan.healable())))
        elif move == "wait" or (not overlap and plan.active()):
            plan.wait(draw(st.integers(1, limits.max_wait_s)))
            if not overlap and plan.healable():
                plan.heal(plan.healable()[0])
    return plan.finish()


# --- profiles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    stateful_step_count: int
    derandomize: bool
    limits: Limits

    @property
    def hypothesis_name(self) -> str:
        return f"chaos-{self.name}"


PROFILES: dict[str, Profile] = {
    # a few short examples while writing or debugging
    "dev": Profile("dev", max_examples=3, stateful_step_count=6, derandomize=False,
                   limits=Limits(max_active=2, horizon_s=12, max_wait_s=4)),
    # deterministic and small: a fixed seed, the same two examples on every run
    "ci": Profile("ci", max_examples=2, stateful_step_count=6, derandomize=True,
                  limits=Limits(max_active=2, horizon_s=10, max_wait_s=4)),
    # many, longer examples, a fresh seed each night
    "nightly": Profile("nightly", max_examples=40, stateful_step_count=16, derandomize=False,
                       limits=Limits(max_active=3, horizon_s=40, max_wait_s=8)),
}
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)  # no "explain": it re-runs


def register_profiles() -> None:
    for p in PROFILES.values():
        settings.register_profile(p.hypothesis_name, max_examples=p.max_examples,
                                  stateful_step_count=p.stateful_step_count, derandomize=p.derandomize,
                                  deadline=None, database=None, suppress_health_check=list(HealthCheck),
                                  phases=PHASES, print_blob=False, report_multiple_bugs=False)


register_profiles()


def profile_named(name: str, environ: Mapping[str, str] | None = None) -> Profile:
    """The profile for a setting value: ``dev``, ``ci``, ``nightly``; empty: ``ci`` when ``CI`` is set, else ``dev``."""
    env = os.environ if environ is None else environ
    key = name.strip() or ("ci" if env.get("CI") else "dev")
    if key not in PROFILES:
        raise ValueError(f"hypothesis profile {name!r} unknown; accepted: {', '.join(PROFILES)}")
    return PROFILES[key]


def hypothesis_settings(profile: Profile, **overrides: Any) -> settings:
    return settings(settings.get_profile(profile.hypothesis_name), **overrides)


@contextlib.contextmanager
def shrink_time_bound(seconds: float) -> Iterator[None]:
    """Bound Hypothesis's shrinking in wall time. Hypothesis has no setting for it: the engine stops
    shrinking after ``hypothesis.internal.conjecture.engine.MAX_SHRINKING_SECONDS`` (300 s), a module
    constant its source documents as monkeypatchable. Checked between shrink steps, so the bound may be
    overshot by one example."""
    from hypothesis.internal.conjecture import engine

    old = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = old


# --- replay files --------------------------------------------------------------------------------


class ReplayError(ValueError):
    """A replay file that cannot be replayed; the message names the file and what is wrong."""


@dataclass
class Replay:
    steps: list[PlannedStep]
    seed: int | None = None
    profile: str = ""
    defects: tuple[str, ...] = ()
    workload_seed: int | None = None
    example: int | None = None
    max_brokers_impaired: int = 1
    phases: dict[str, float] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)


def replay_document(replay: Replay) -> dict[str, Any]:
    return {"format": REPLAY_FORMAT, "format_version": REPLAY_VERSION, "seed": replay.seed,
            "profile": replay.profile, "defects": list(replay.defects), "workload_seed": replay.workload_seed,
            "example": replay.example, "max_brokers_impaired": replay.max_brokers_impaired,
            "phases": dict(replay.phases), "steps": [s.to_dict() for s in replay.steps],
            "outcome": dict(replay.outcome)}


def write_replay(replay: Replay, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(replay_document(replay), indent=2) + "\n", encoding="utf-8")
    return p


def parse_replay(doc: Any, shape: Shape, source: str = "replay") -> Replay:
    """A Replay from a parsed document; ReplayError with one message otherwise."""
    def bad(what: str) -> ReplayError:
        return ReplayError(f"{source}: {what}")

    if not isinstance(doc, dict) or doc.get("format") != REPLAY_FORMAT:
        raise bad(f"not a replay file (no \"format\": \"{REPLAY_FORMAT}\")")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad(f"format_version {version!r} is not a positive integer")
    if version > REPLAY_VERSION:
        raise bad(f"format_version {version} is newer than this suite reads ({REPLAY_VERSION}); update the suite")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list):
        raise bad("\"steps\" must be a list of {at_s, duration_s, spec}")
    steps = []
    for i, s in enumerate(raw_steps):
        if not isinstance(s, dict) or set(s) - {"at_s", "duration_s", "spec"} or "spec" not in s:
            raise bad(f"step {i} must be an object with at_s, duration_s and spec only")
        steps.append(PlannedStep(s.get("at_s"), s.get("duration_s"), s["spec"]))  # type: ignore[arg-type]
    defects = doc.get("defects") or []
    if not isinstance(defects, list) or not all(isinstance(d, str) for d in defects):
        raise bad("\"defects\" must be a list of defect names")
    budget = doc.get("max_brokers_impaired", 1)
    if not isinstance(budget, int) or isinstance(budget, bool) or not 0 <= budget <= len(BROKERS):
        raise bad(f"max_brokers_impaired={budget!r} must be an integer 0..{len(BROKERS)}")
    for key in ("seed", "workload_seed", "example"):
        v = doc.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise bad(f"{key}={v!r} must be an integer or null")
    phases = doc.get("phases") or {}
    if not isinstance(phases, dict) or not all(isinstance(v, int | float) and v >= 0 for v in phases.values()):
        raise bad("\"phases\" must map phase names to seconds >= 0")
    try:
        check_steps(steps, Limits(max_brokers_impaired=budget), shape)
    except ValueError as exc:
        raise bad(str(exc)) from None
    return Replay(steps=steps, seed=doc.get("seed"), profile=str(doc.get("profile") or ""), defects=tuple(defects),
                  workload_seed=doc.get("workload_seed"), example=doc.get("example"), max_brokers_impaired=budget,
                  phases={k: float(v) for k, v in phases.items()}, outcome=dict(doc.get("outcome") or {}))


def load_replay(path: str | Path, shape: Shape) -> Replay:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"{p}: no such replay file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"{p}: not readable JSON ({exc})") from None
    return parse_replay(doc, shape, str(p))


def format_steps(steps: Sequence[PlannedStep]) -> str:
    """The schedule, one step a line: ``  +0.0s for 4.0s  link_down projector-pg``."""
    if not steps:
        return "  (no fault)"
    return "\n".join(f"  +{float(s.at_s):.1f}s for {float(s.duration_s or 0):.1f}s  {describe_spec(s.spec)}"
                     for s in steps)


# --- the state machine ---------------------------------------------------------------------------

Executor = Callable[[list[PlannedStep], int], object]  # raises when the run fails


def schedule_machine(limits: Limits, execute: Executor, shape: Shape) -> type[RuleBasedStateMachine]:
    """A rule-based state machine whose rules inject and heal faults and let time pass on the schedule's
    clock, within ``limits``; its teardown is the final heal: it hands the finished schedule (and a drawn
    workload seed) to ``execute``, which runs it under load and raises when an invariant fails.

    The rules act on a :class:`Planner` rather than on the live system so that an example and its replay
    go through one executor (``Schedule.run`` under ``Experiment.run``) with the same step times: what a
    replay file records is exactly what ran, and shrinking removes rules, not wall-clock accidents."""

    class RandomSchedule(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.plan = Planner(shape, limits)
            self.workload_seed = 1

        @initialize(workload_seed=st.integers(1, 2**31 - 1))
        def choose_workload(self, workload_seed: int) -> None:
            self.workload_seed = workload_seed

        @precondition(lambda self: self.plan.now < limits.horizon_s and len(self.plan.active()) < limits.max_active)
        @rule(data=st.data())
        def inject(self, data: st.DataObject) -> None:
            # None first: the shrinker turns an inject that does not matter into "no fault this step"
            spec = data.draw(st.none() | fault_specs(shape, brokers=self.plan.broker_budget_left() > 0),
                             label="spec")
            if spec is None:
                return
            why = self.plan.why_not(spec)
            if why is None:
                self.plan.inject(spec)
                note(f"+{self.plan.now:.0f}s inject {describe_spec(spec)}")
            else:
                note(f"+{self.plan.now:.0f}s skipped {describe_spec(spec)}: {why}")

        @precondition(lambda self: bool(self.plan.healable()))
        @rule(data=st.data())
        def heal(self, data: st.DataObject) -> None:
            i = data.draw(st.sampled_from(self.plan.healable()), label="step")
            self.plan.heal(i)
            note(f"+{self.plan.now:.0f}s heal {describe_spec(self.plan.steps[i].spec)}")

        @rule(seconds=st.integers(1, limits.max_wait_s))
        def let_time_pass(self, seconds: int) -> None:
            # the clock stops max_wait_s past the horizon: no fault outlives it by more
            self.plan.wait(max(0.0, min(seconds, limits.horizon_s + limits.max_wait_s - self.plan.now)))

        @invariant()
        def recoverable(self) -> None:
            claims = [claim_of(self.plan.steps[i].spec, shape) for i in self.plan.active()]
            impaired = brokers_impaired(claims, limits.max_brokers_impaired)
            assert impaired <= limits.max_brokers_impaired, f"{impaired} brokers impaired at once"

        def teardown(self) -> None:
            if sys.exc_info()[0] is not None:  # a rule failed or Hypothesis abandoned the example: run nothing
                return
            steps = self.plan.finish()
            # no fault is only the steady state (tested elsewhere): not worth a live example
            assume(bool(steps))
            execute(steps, self.workload_seed)

    return RandomSchedule


def run_machine(machine: type[RuleBasedStateMachine], profile: Profile, seed: int, shrink_time_s: float) -> None:
    """Run ``machine`` under ``profile`` with ``seed`` and shrinking bounded by ``shrink_time_s``."""

    def factory() -> RuleBasedStateMachine:
        return machine()

    with shrink_time_bound(shrink_time_s):
        # a factory function, not the class: @seed marks the function (the documented way for state machines)
        run_state_machine_as_test(hypothesis_seed(seed)(factory),  # type: ignore[arg-type]
                                  settings=hypothesis_settings(profile))


def choose_seed(profile: Profile, given: int = 0) -> int:
    """The run's seed: ``given``; else the ci profile's fixed seed; else a fresh random one."""
    if given:
        return given
    return CI_SEED if profile.derandomize else random.SystemRandom().randrange(1, 2**63)
