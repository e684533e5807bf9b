"""Targets: what a fault acts on, named the way the user names things, resolved at injection time.

This module is the one interpreter of names: fault targets, link names, the role strings of scenarios
and schedules, the worst-case candidates that the random schedules and the external allow-list reason
about. A target is a small frozen object; ``validate(env)`` fails before anything is injected (unknown
service, no deployed pipeline, partition out of range), ``nodes(env)`` resolves it to node names when the
fault is injected (so ``LeaderOf(0)`` means the leader *at that moment*), and ``candidates(view)`` lists
every node it could resolve to, without asking anything (for admission rules and allow-lists).

Role strings (parsed by :func:`target`)::

    "kafka-2", "postgres", "toxiproxy"     a node by name; also a replica: "projector-2", "sink"
    "broker" | "brokers"                   any one broker (seeded by the settings' seed) | all three
    "controller"                           the active KRaft controller (the quorum leader)
    "leader:3"  "leader:orders.priced:3"   the leader of partition 3 of the entry topic | of that topic
    "coordinator:transaction:<id>"         the broker coordinating a transactional id ({deployment} in it is
    "coordinator:group:<group>"            the deployment's tag) or a consumer group ({group:<service>})
    "minority" | "majority"                a minority (1 of 3) | a majority (2 of 3) of the brokers
    "<service or role>"                    one replica of a service ("projector", "pricer") or of the
                                           services with a role ("sink", "entry"), at random
    "all:<service or role>"                every replica of it

Links are named ``<service>-kafka-<i>``, ``<service>-postgres``, ``<service>-<other>`` and
``client-<entry service>`` (see :mod:`chaos.env.topology`); a link pattern is a glob over those names
(``"ingest-kafka-*"``) or ``"<from>-><to>"``: ``<from>`` a service, a role or ``client``; ``<to>`` a service,
a role, ``kafka``, a broker (``kafka-2``) or ``postgres`` (``"sink->postgres"``, ``"entry->kafka"``,
``"client->entry"``). Kafka and Postgres are never the ``<from>``: the links are the services' connections.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chaos.env import Environment

BROKER_NODES = ("kafka-1", "kafka-2", "kafka-3")
ROLE_NAMES = ("<node name>", "broker", "brokers", "controller", "leader:<partition>", "leader:<topic>:<partition>",
              "coordinator:transaction|group:<key>", "minority", "majority", "<service or role>",
              "all:<service or role>")


class View(Protocol):
    """What candidates are computed from: the broker nodes, and the nodes a service selector may name."""

    def broker_names(self) -> list[str]: ...

    def selector_nodes(self, selector: str) -> list[str]: ...


def _rng(env: Any, seed: int | None) -> random.Random:
    if seed is not None:
        return random.Random(seed)
    return random.Random(env.settings.seed or None)


def _need_deployment(env: Environment, what: str) -> None:
    if env.deployment is None:
        raise ValueError(f"{what} needs a deployed pipeline; call env.deploy(name) (or use the experiment "
                         "fixture) before injecting")


def deployment_name(env: Environment, text: str, what: str) -> str:
    """``text`` with the deployment's names in place of ``{deployment}`` (its tag) and ``{group:<service>}``
    (a service's consumer group): a transactional id or a group as the deployed services use it. ValueError
    naming the accepted placeholders on any other."""
    _need_deployment(env, what)
    dep = env.deployment
    assert dep is not None
    out = text.replace("{deployment}", dep.tag)
    for service, group in dep.groups.items():
        out = out.replace(f"{{group:{service}}}", group)
    if "{" in out:
        raise ValueError(f"{what} {text!r}: unknown placeholder; accepted: {{deployment}}, {{group:<service>}} "
                         f"(services with groups: {', '.join(dep.groups)})")
    return out


def _services(env: Any, selector: str) -> list[str]:
    """Service names a selector names in ``env`` (a name, or a role); ValueError listing the accepted."""
    topo = getattr(env, "topology", None)
    if topo is None:  # an external target: services are node-name prefixes
        return [selector]
    found = [s.name for s in topo.services(selector)]
    if not found:
        names = [s.name for s in topo.pipeline.services]
        roles = sorted({r for s in topo.pipeline.services for r in s.roles})
        raise ValueError(f"no service or role {selector!r} in pipeline {topo.pipeline.name}; services: "
                         f"{', '.join(names)}; roles: {', '.join(roles)}")
    return found


def _replicas(env: Any, selector: str) -> list[str]:
    if hasattr(env, "service_nodes"):
        return sorted(n for svc in _services(env, selector) for n in env.service_nodes(svc))
    return sorted(n for n in env.node_names() if n == selector or re.fullmatch(rf"{re.escape(selector)}-\d+", n))


class Target:
    """Base class: ``validate`` before injection, ``nodes`` at injection, ``candidates`` without I/O.

    ``str()`` of a target is its role string (``leader:0``, ``projector-1``, ``minority``) when one names
    exactly it, else its repr: what reports, journals and progress lines show."""

    def __str__(self) -> str:
        return role(self)

    def validate(self, env: Environment) -> None:
        pass

    def nodes(self, env: Environment) -> list[str]:
        raise NotImplementedError

    def candidates(self, view: View) -> list[str]:
        """Every node this target could resolve to (the worst case, for admission rules and allow-lists)."""
        return list(view.broker_names())

    def resolve(self, env: Environment) -> str:
        """The single node this target names (ValueError when it names several)."""
        nodes = self.nodes(env)
        if len(nodes) != 1:
            raise ValueError(f"{self!r} names {len(nodes)} nodes ({', '.join(nodes)}), not one")
        return nodes[0]


@dataclass(frozen=True)
class Node(Target):
    """A node by name: kafka-1..3, postgres, toxiproxy, or a replica of a service (``projector-2``)."""

    name: str

    def validate(self, env: Environment) -> None:
        known = env.node_names()
        if self.name not in known:
            hint = ""
            if getattr(env, "deployment", 1) is None:
                hint = " (pipeline services exist only while a pipeline is deployed: env.deploy(name))"
            raise ValueError(f"unknown node {self.name!r}; accepted: {', '.join(sorted(known))}{hint}")

    def nodes(self, env: Environment) -> list[str]:
        return [self.name]

    def candidates(self, view: View) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class Service(Target):
    """One replica of a service (by name: ``Service("pricer")``) or of the services with a role
    (``Service("sink")``): replica ``replica`` (1-based) or, when None, one at random."""

    selector: str
    replica: int | None = None
    seed: int | None = None

    def validate(self, env: Environment) -> None:
        _need_deployment(env, f"Service({self.selector!r})")
        nodes = _replicas(env, self.selector)
        if not nodes:
            raise ValueError(f"no replica of {self.selector!r} is running")
        if self.replica is not None and not 1 <= self.replica <= len(nodes):
            raise ValueError(f"{self.selector} replica {self.replica} out of range; accepted: 1..{len(nodes)}")

    def nodes(self, env: Environment) -> list[str]:
        nodes = _replicas(env, self.selector)
        if not nodes:
            raise ValueError(f"no replica of {self.selector!r} is running")
        if self.replica is not None:
            return [nodes[self.replica - 1]]
        return [_rng(env, self.seed).choice(nodes)]

    def candidates(self, view: View) -> list[str]:
        nodes = view.selector_nodes(self.selector)
        return nodes[self.replica - 1:self.replica] if self.replica is not None else nodes


@dataclass(frozen=True)
class Services(Target):
    """Every replica of a service, or of the services with a role."""

    selector: str

    def validate(self, env: Environment) -> None:
        _need_deployment(env, f"Services({self.selector!r})")
        _services(env, self.selector)

    def nodes(self, env: Environment) -> list[str]:
        return _replicas(env, self.selector)

    def candidates(self, view: View) -> list[str]:
        return view.selector_nodes(self.selector)


@dataclass(frozen=True)
class LeaderOf(Target):
    """The broker leading a partition of a topic: the pipeline's entry topic, or ``topic`` (its logical
    name in the adapter, or a deployed name)."""

    partition: int = 0
    topic: str | None = None

    def validate(self, env: Environment) -> None:
        dep = env.deployment
        if self.topic is None or (dep is not None and self.topic in dep.topics):
            _need_deployment(env, "LeaderOf")
        partitions = env.settings.topic_partitions
        if dep is not None:
            logical = self.topic or dep.pipeline.entry_topic.name
            t = next((t for t in dep.pipeline.topics if t.name == logical), None)
            partitions = (t.partitions if t is not None and t.partitions else partitions)
        if not 0 <= self.partition < partitions:
            raise ValueError(f"partition {self.partition} out of range; accepted: 0..{partitions - 1}")

    def deployed_topic(self, env: Environment) -> str:
        dep = env.deployment
        if self.topic is None:
            if dep is None:
                raise ValueError("LeaderOf needs a deployed pipeline or an explicit topic")
            return dep.topic
        return dep.topics.get(self.topic, self.topic) if dep is not None else self.topic

    def nodes(self, env: Environment) -> list[str]:
        topic = self.deployed_topic(env)
        leader = env.partition_leader(topic, self.partition)
        if leader < 0:
            raise RuntimeError(f"partition {self.partition} of {topic} has no leader right now")
        return [f"kafka-{leader}"]


@dataclass(frozen=True)
class CoordinatorOf(Target):
    """The broker coordinating a transactional id (``kind="transaction"``) or a consumer group
    (``kind="group"``) at injection time. ``key`` may name the deployment: ``"pricer-{deployment}-1"`` (the
    transactional id the orders example's first pricer uses), ``"{group:sink}"`` (a service's group)."""

    key: str
    kind: str = "transaction"

    def validate(self, env: Environment) -> None:
        if self.kind not in ("transaction", "group"):
            raise ValueError(f"CoordinatorOf kind {self.kind!r}; accepted: transaction, group")
        _need_deployment(env, "CoordinatorOf")
        self.resolved_key(env)

    def resolved_key(self, env: Environment) -> str:
        return deployment_name(env, self.key, "CoordinatorOf key")

    def nodes(self, env: Environment) -> list[str]:
        return [f"kafka-{env.coordinator(self.resolved_key(env), self.kind)}"]


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


def Postgres() -> Node:
    return Node("postgres")


def Toxiproxy() -> Node:
    return Node("toxiproxy")


_SIMPLE: dict[str, Target] = {
    "broker": AnyBroker(), "brokers": Brokers(), "controller": ActiveController(), "minority": Minority(),
    "majority": Majority(),
}
_INFRA = ("kafka-1", "kafka-2", "kafka-3", "postgres", "toxiproxy")


def role(t: Target) -> str:
    """The role string that ``target`` parses back to ``t``; the repr when none does (a seed, an include)."""
    for name, simple in _SIMPLE.items():
        if t == simple:
            return name
    if isinstance(t, LeaderOf):
        return f"leader:{t.partition}" if t.topic is None else f"leader:{t.topic}:{t.partition}"
    if isinstance(t, CoordinatorOf):
        return f"coordinator:{t.kind}:{t.key}"
    if isinstance(t, Node):
        return t.name
    if isinstance(t, Service) and t.seed is None:
        return t.selector if t.replica is None else f"{t.selector}-{t.replica}"
    if isinstance(t, Services):
        return f"all:{t.selector}"
    return repr(t)


def target(spec: Target | str) -> Target:
    """A Target from a Target or a role string; ValueError naming the accepted roles otherwise."""
    if isinstance(spec, Target):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a target is a Target or a role string, not {spec!r}; accepted roles: "
                         f"{', '.join(ROLE_NAMES)}")
    s = spec.strip()
    if s in _SIMPLE:
        return _SIMPLE[s]
    if s in _INFRA:
        return Node(s)
    if re.fullmatch(r"kafka-\d+", s):
        raise ValueError(f"unknown role {spec!r}: the brokers are kafka-1, kafka-2 and kafka-3")
    m = re.fullmatch(r"leader:(?:([A-Za-z0-9._-]+):)?(\d+)", s)
    if m:
        return LeaderOf(int(m.group(2)), m.group(1))
    m = re.fullmatch(r"coordinator:(transaction|group):(.+)", s)
    if m:
        return CoordinatorOf(m.group(2), m.group(1))
    if s.startswith("all:") and re.fullmatch(r"[a-z][a-z0-9-]*", s[4:]):
        return Services(s[4:])
    m = re.fullmatch(r"([a-z][a-z0-9-]*?)-([1-9][0-9]*)", s)
    if m:
        return Service(m.group(1), int(m.group(2)))
    if re.fullmatch(r"[a-z][a-z0-9-]*", s):
        return Service(s)
    raise ValueError(f"unknown role {spec!r}; accepted: {', '.join(ROLE_NAMES)}")


# -- links ---------------------------------------------------------------------------------------------


def link_patterns(links: str | Sequence[str]) -> list[str]:
    pats = [links] if isinstance(links, str) else list(links)
    if not pats or not all(isinstance(p, str) and p for p in pats):
        raise ValueError(f"links must be a non-empty pattern or list of patterns (a glob such as "
                         f"'ingest-kafka-*', or 'sink->postgres'), not {links!r}")
    return pats


def links_matching(env: Any, patterns: str | Sequence[str]) -> list[str]:
    """Link names matching each pattern (a glob over link names, or ``<from>-><to>``); ValueError naming the
    links when a pattern matches none."""
    names: set[str] = set()
    for pat in link_patterns(patterns):
        if "->" in pat:
            topo = getattr(env, "topology", None)
            if topo is None:
                raise ValueError(f"{pat!r}: '<from>-><to>' needs the suite's own environment; name links by glob "
                                 "on an external target")
            src, _, dst = (x.strip() for x in pat.partition("->"))
            found = {link.name for link in topo.links_between(src, dst)}
        else:
            found = {n for n in env.links if fnmatch.fnmatchcase(n, pat)}
        if not found:
            raise ValueError(f"no link matches {pat!r}; links: {', '.join(sorted(env.links))}")
        names |= found
    return sorted(names)
