"""Targets: which container(s) a fault acts on, resolved by role at injection time.

A target is a small frozen object; ``validate(env)`` fails before anything is injected (unknown node,
no deployed pipeline, partition out of range) and ``nodes(env)`` resolves it to node names when the
fault is injected, so ``LeaderOf(0)`` means the leader *at that moment*. Faults also accept a role
string, parsed by :func:`target`::

    "kafka-2"        a node by name (also "postgres", "toxiproxy", "ingest", "projector-1", ...)
    "broker"         any one broker (random; seeded by the settings' seed when it is set)
    "brokers"        all three brokers
    "controller"     the active KRaft controller (the quorum leader)
    "leader:3"       the leader of partition 3 of the deployed pipeline's topic
    "minority"       a minority of the brokers (1 of 3); "majority": a majority (2 of 3)
    "projector"      one projector replica (random); "projectors": all of them
    "ingest", "postgres"
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.env import Environment

BROKER_NODES = ("kafka-1", "kafka-2", "kafka-3")
ROLE_NAMES = ("broker", "brokers", "controller", "leader:<partition>", "minority", "majority", "projector",
              "projectors", "ingest", "postgres", "toxiproxy", "<node name>")


def _rng(env: Environment, seed: int | None) -> random.Random:
    if seed is not None:
        return random.Random(seed)
    return random.Random(env.settings.seed or None)


def _need_deployment(env: Environment, what: str) -> None:
    if env.deployment is None:
        raise ValueError(f"{what} needs a deployed pipeline; call env.deploy(name) (or use the experiment "
                         "fixture) before injecting")


class Target:
    """Base class: ``validate`` before injection, ``nodes`` at injection.

    ``str()`` of a target is its role string (``leader:0``, ``projector-1``, ``minority``) when one names
    exactly it, else its repr: what reports, journals and progress lines show.
    """

    def __str__(self) -> str:
        return role(self)

    def validate(self, env: Environment) -> None:
        pass

    def nodes(self, env: Environment) -> list[str]:
        raise NotImplementedError

    def resolve(self, env: Environment) -> str:
        """The single node this target names (ValueError when it names several)."""
        nodes = self.nodes(env)
        if len(nodes) != 1:
            raise ValueError(f"{self!r} names {len(nodes)} nodes ({', '.join(nodes)}), not one")
        return nodes[0]


@dataclass(frozen=True)
class Node(Target):
    """A node by name: kafka-1..3, postgres, toxiproxy, ingest, projector-N."""

    name: str

    def validate(self, env: Environment) -> None:
        known = env.node_names()
        if self.name not in known:
            hint = ""
            if self.name == "ingest" or self.name.startswith("projector"):
                hint = " (pipeline services exist only while a pipeline is deployed: env.deploy(name))"
            raise ValueError(f"unknown node {self.name!r}; accepted: {', '.join(sorted(known))}{hint}")

    def nodes(self, env: Environment) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class LeaderOf(Target):
    """The broker leading a partition of the deployed pipeline's topic (or of ``topic``)."""

    partition: int = 0
    topic: str | None = None

    def validate(self, env: Environment) -> None:
        if self.topic is None:
            _need_deployment(env, "LeaderOf")
        if not 0 <= self.partition < env.settings.topic_partitions:
            last = env.settings.topic_partitions - 1
            raise ValueError(f"partition {self.partition} out of range; accepted: 0..{last}")

    def nodes(self, env: Environment) -> list[str]:
        topic = self.topic or (env.deployment.topic if env.deployment else None)
        if topic is None:
            raise ValueError("LeaderOf needs a deployed pipeline or an explicit topic")
        leader = env.partition_leader(topic, self.partition)
        if leader < 0:
            raise RuntimeError(f"partition {self.partition} of {topic} has no leader right now")
        return [f"kafka-{leader}"]


@dataclass(frozen=True)
class ActiveController(Target):
    """The active KRaft controller: the quorum leader (read from the brokers' quorum-state files)."""

    def nodes(self, env: Environment) -> list[str]:
        return [f"kafka-{env.active_controller()}"]


@dataclass(frozen=True)
class AnyBroker(Target):
    """One broker chosen at random (``seed`` fixes the choice; None: the settings' seed, else random)."""

    seed: int | None = None

    def nodes(self, env: Environment) -> list[str]:
        return [_rng(env, self.seed).choice(BROKER_NODES)]


@dataclass(frozen=True)
class Brokers(Target):
    """All three brokers."""

    def nodes(self, env: Environment) -> list[str]:
        return list(BROKER_NODES)


@dataclass(frozen=True)
class Minority(Target):
    """A minority of the brokers (1 of 3); ``include`` forces a node into it (e.g. the controller)."""

    seed: int | None = None
    include: Target | None = None

    def validate(self, env: Environment) -> None:
        if self.include is not None:
            self.include.validate(env)

    def size(self) -> int:
        return (len(BROKER_NODES) - 1) // 2

    def nodes(self, env: Environment) -> list[str]:
        return _pick(env, self.size(), self.seed, self.include)


@dataclass(frozen=True)
class Majority(Target):
    """A majority of the brokers (2 of 3); ``include`` forces a node into it."""

    seed: int | None = None
    include: Target | None = None

    def validate(self, env: Environment) -> None:
        if self.include is not None:
            self.include.validate(env)

    def size(self) -> int:
        return len(BROKER_NODES) // 2 + 1

    def nodes(self, env: Environment) -> list[str]:
        return _pick(env, self.size(), self.seed, self.include)


def _pick(env: Environment, n: int, seed: int | None, include: Target | None) -> list[str]:
    chosen: list[str] = []
    if include is not None:
        chosen = [x for x in include.nodes(env) if x in BROKER_NODES][:n]
    rest = [b for b in BROKER_NODES if b not in chosen]
    chosen += _rng(env, seed).sample(rest, n - len(chosen))
    return sorted(chosen)


@dataclass(frozen=True)
class Projector(Target):
    """A projector replica: ``replica`` N (1-based) or, when None, one at random."""

    replica: int | None = None
    seed: int | None = None

    def validate(self, env: Environment) -> None:
        _need_deployment(env, "Projector")
        if self.replica is not None and not 1 <= self.replica <= env.settings.projector_replicas:
            raise ValueError(f"projector replica {self.replica} out of range; accepted: "
                             f"1..{env.settings.projector_replicas}")

    def nodes(self, env: Environment) -> list[str]:
        if self.replica is not None:
            return [f"projector-{self.replica}"]
        names = sorted(n for n in env.node_names() if n.startswith("projector-"))
        if not names:
            raise ValueError("no projector is deployed")
        return [_rng(env, self.seed).choice(names)]


@dataclass(frozen=True)
class Projectors(Target):
    """Every projector replica of the deployed pipeline."""

    def validate(self, env: Environment) -> None:
        _need_deployment(env, "Projectors")

    def nodes(self, env: Environment) -> list[str]:
        return sorted(n for n in env.node_names() if n.startswith("projector-"))


@dataclass(frozen=True)
class Ingest(Target):
    """The ingest service of the deployed pipeline."""

    def validate(self, env: Environment) -> None:
        _need_deployment(env, "Ingest")

    def nodes(self, env: Environment) -> list[str]:
        return ["ingest"]


@dataclass(frozen=True)
class Postgres(Target):
    def nodes(self, env: Environment) -> list[str]:
        return ["postgres"]


@dataclass(frozen=True)
class Toxiproxy(Target):
    def nodes(self, env: Environment) -> list[str]:
        return ["toxiproxy"]


_SIMPLE: dict[str, Target] = {
    "broker": AnyBroker(), "brokers": Brokers(), "controller": ActiveController(), "minority": Minority(),
    "majority": Majority(), "projector": Projector(), "projectors": Projectors(), "ingest": Ingest(),
    "postgres": Postgres(), "toxiproxy": Toxiproxy(),
}
_NODE_RE = re.compile(r"^(kafka-[1-3]|projector-[1-9][0-9]*)$")


def role(t: Target) -> str:
    """The role string that ``target`` parses back to ``t``; the repr when none does (a seed, an include)."""
    for name, simple in _SIMPLE.items():
        if t == simple:
            return name
    if isinstance(t, LeaderOf) and t.topic is None:
        return f"leader:{t.partition}"
    if isinstance(t, Projector) and t.replica is not None and t.seed is None:
        return f"projector-{t.replica}"
    if isinstance(t, Node):
        return t.name
    return repr(t)


def target(spec: Target | str) -> Target:
    """A Target from a Target or a role string; ValueError naming the accepted roles otherwise."""
    if isinstance(spec, Target):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"a target is a Target or a role string, not {type(spec).__name__}; "
                         f"accepted roles: {', '.join(ROLE_NAMES)}")
    s = spec.strip()
    if s in _SIMPLE:
        return _SIMPLE[s]
    m = re.fullmatch(r"leader:(\d+)", s)
    if m:
        return LeaderOf(int(m.group(1)))
    m = re.fullmatch(r"projector-([1-9][0-9]*)", s)
    if m:
        return Projector(int(m.group(1)))
    if _NODE_RE.match(s):
        return Node(s)
    raise ValueError(f"unknown role {spec!r}; accepted: {', '.join(ROLE_NAMES)} "
                     "(node names: kafka-1..3, postgres, toxiproxy, ingest, projector-N)")
