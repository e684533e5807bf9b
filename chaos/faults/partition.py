"""Network partitions with iptables, and netem-style packet faults, inside the targets' namespaces.

Everything here runs in helper containers (``Environment.run_helper``/``start_helper``) that share a
target's network namespace (``network_mode=container:<id>``) with only CAP_NET_ADMIN: never
``--privileged``, never a rule in the host's namespace.

Partitions (Jepsen's nemesis vocabulary): ``Isolate`` one node from every other, ``Split`` a minority
of brokers from the majority, ``Bridge`` (two halves that cannot see each other, one node that sees
both), ``OneWay`` (packets from A to B are dropped, B to A pass), and ``Partition`` between any two
sides. Rules are plain ``DROP``s by IP address (resolved from the engine when the fault is injected):
silence, not refusal, as a real partition. They live in a chain of the fault's own
(``CHAOS<n>I``/``CHAOS<n>O``) jumped to from INPUT/OUTPUT, so heal deletes exactly that chain and two
faults on one node never undo each other; a container that restarts gets a fresh namespace and loses
them anyway. The host (the network's gateway) is never cut, so the test process keeps its view.
As with Jepsen, a one-way cut of TCP breaks connections in both directions (the handshake needs both
ways); what stays asymmetric is the packets: B's datagrams still reach A.

iptables backend: the helper image has Debian's ``iptables`` (nf_tables backend) and
``iptables-legacy``. Both work inside a container's namespace on a kernel with nf_tables and ip_tables
(Linux 5.x and 6.x); the scripts use ``iptables`` (nft) and fall back to ``iptables-legacy``
where nf_tables is missing, and heal cleans up with both.

``NetEm`` degrades a container's egress: loss, delay with jitter, duplication, corruption. With
``backend="auto"`` it uses the kernel's netem qdisc (``tc qdisc ... netem``) when the kernel has it;
kernels without ``sch_netem`` (minimal VM kernels often lack it)
get the same effects in user space: ``chaos-netem`` (a helper running ``recipes/chaos-netem.c``) holds,
drops or corrupts the packets that an iptables ``NFQUEUE`` rule hands it, and the iptables ``TEE``
target duplicates them. The ``NFQUEUE`` rule has ``--queue-bypass``: if the helper dies, packets flow.
"""

from __future__ import annotations

import itertools
import logging
import re
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault
from chaos.faults.targets import AnyBroker, Brokers, LeaderOf, Minority, Node, Target, target

if TYPE_CHECKING:
    from docker.models.containers import Container

    from chaos.env import Environment

log = logging.getLogger("chaos.faults")
_IDS = itertools.count(1)
CHAIN_PREFIX = "CHAOS"
PICK_IPTABLES = "IPT=iptables; $IPT -w -S >/dev/null 2>&1 || IPT=iptables-legacy"
NETEM_BACKENDS = ("auto", "tc", "nfqueue")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


# ------------------------------------------------------------------------------------------------
# Pure planning and script construction (unit-tested)


def plan_partition(cuts: Iterable[tuple[str, str, bool]],
                   down: Iterable[str] = ()) -> dict[str, dict[str, set[str]]]:
    """Turn cuts ``(a, b, both_ways)`` into per-node drop sets (by node name).

    A one-way cut a -> b: b drops what comes from a. A two-way cut is placed on one side only, with
    both an INPUT and an OUTPUT drop (one helper run per node instead of two): on ``a`` unless ``a`` is
    ``down`` (not running: no namespace to put rules in)."""
    plan: dict[str, dict[str, set[str]]] = {}
    stopped = set(down)
    for a, b, both in cuts:
        if a == b:
            continue
        if both:
            if a in stopped:
                a, b = b, a
            p = plan.setdefault(a, {"from": set(), "to": set()})
            p["from"].add(b)
            p["to"].add(b)
        else:
            plan.setdefault(b, {"from": set(), "to": set()})["from"].add(a)
    return plan


def partition_script(chain: str, drop_from: Iterable[str], drop_to: Iterable[str], port: int | None = None) -> str:
    """Shell script (run in the target's namespace) that installs one fault's DROP rules. With ``port``,
    only TCP to or from that port is dropped (one service of the node, not the whole node)."""
    cin, cout = f"{chain}I", f"{chain}O"
    lines = ["set -e", PICK_IPTABLES, f"$IPT -w -N {cin}", f"$IPT -w -N {cout}"]
    ports = [""] if port is None else [f" -p tcp --dport {int(port)}", f" -p tcp --sport {int(port)}"]
    lines += [f"$IPT -w -A {cin} -s {shlex.quote(ip)}{p} -j DROP" for ip in sorted(drop_from) for p in ports]
    lines += [f"$IPT -w -A {cout} -d {shlex.quote(ip)}{p} -j DROP" for ip in sorted(drop_to) for p in ports]
    lines += [f"$IPT -w -I INPUT 1 -j {cin}", f"$IPT -w -I OUTPUT 1 -j {cout}", 'echo "backend=$IPT"']
    return "\n".join(lines)


def remove_chains_script(table: str, jumps: Sequence[tuple[str, str]]) -> str:
    """Idempotent clean-up: delete the jumps ``(builtin chain, our chain)`` and our chains, in both
    iptables backends; never fails (what is not there is already healed)."""
    body = []
    for builtin, chain in jumps:
        body.append(f"while $IPT -w -t {table} -D {builtin} -j {chain} 2>/dev/null; do :; done")
    for chain in dict.fromkeys(c for _, c in jumps):
        body.append(f"$IPT -w -t {table} -F {chain} 2>/dev/null || true")
        body.append(f"$IPT -w -t {table} -X {chain} 2>/dev/null || true")
    return ("for IPT in iptables iptables-legacy; do\n  $IPT -w -S >/dev/null 2>&1 || continue\n  "
            + "\n  ".join(body) + "\ndone\ntrue")


def netem_tc_args(delay_ms: int, jitter_ms: int, loss_pct: float, duplicate_pct: float,
                  corrupt_pct: float) -> list[str]:
    args = ["netem"]
    if delay_ms or jitter_ms:
        args += ["delay", f"{delay_ms}ms"] + ([f"{jitter_ms}ms"] if jitter_ms else [])
    if loss_pct:
        args += ["loss", f"{loss_pct:g}%"]
    if duplicate_pct:
        args += ["duplicate", f"{duplicate_pct:g}%"]
    if corrupt_pct:
        args += ["corrupt", f"{corrupt_pct:g}%"]
    return args


def netem_iptables_script(chain: str, interface: str, queue: int | None, duplicate_pct: float,
                          destinations: Iterable[str]) -> str:
    """mangle/OUTPUT rules of the user-space backend: TEE duplicates (one rule per destination on the
    network: TEE needs a next hop), then NFQUEUE to chaos-netem (bypassed when it is gone)."""
    lines = ["set -e", PICK_IPTABLES, f"$IPT -w -t mangle -N {chain}"]
    if duplicate_pct:
        p = f"{duplicate_pct / 100:.6f}"
        for ip in sorted(destinations):
            q = shlex.quote(ip)
            lines.append(f"$IPT -w -t mangle -A {chain} -o {interface} -d {q} -m statistic --mode random "
                         f"--probability {p} -j TEE --gateway {q}")
    if queue is not None:
        lines.append(f"$IPT -w -t mangle -A {chain} -o {interface} -j NFQUEUE --queue-num {queue} --queue-bypass")
    lines += [f"$IPT -w -t mangle -I OUTPUT 1 -j {chain}", 'echo "backend=$IPT"']
    return "\n".join(lines)


def _new_chain() -> str:
    return f"{CHAIN_PREFIX}{next(_IDS)}"


def _nodes(env: Environment, t: Target) -> list[str]:
    nodes = t.nodes(env)
    for n in nodes:
        env.container(n)  # unknown or foreign containers fail here
    return nodes


# ------------------------------------------------------------------------------------------------
# Partitions


class Partition(Fault):
    """Nodes of side ``a`` and side ``b`` cannot exchange packets (both ways, or ``a`` -> ``b`` only
    with ``one_way``). Sides are targets or role strings, resolved when injected."""

    name = "partition"

    def __init__(self, a: Target | str, b: Target | str, *, one_way: bool = False, port: int | None = None) -> None:
        super().__init__()
        self.a, self.b = target(a), target(b)
        self.one_way = one_way
        if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError(f"port={port!r} must be a TCP port (1..65535), or None: every packet")
        self.port = port  # only TCP to or from this port is cut (None: everything)
        self.chain = _new_chain()

    def validate(self, env: Environment) -> None:
        self.a.validate(env)
        self.b.validate(env)

    def _sides(self, env: Environment) -> tuple[list[str], list[str]]:
        a = _nodes(env, self.a)
        b = [n for n in _nodes(env, self.b) if n not in a]
        return a, b

    def _cuts(self, env: Environment) -> list[tuple[str, str, bool]]:
        a, b = self._sides(env)
        if not a or not b:
            raise ValueError(f"{self.name}: one side is empty (a={a}, b={b}); nothing to cut")
        self.resolved = {"a": a, "b": b, "one_way": self.one_way}
        return [(x, y, not self.one_way) for x in a for y in b]

    def _inject(self, env: Environment) -> None:
        cuts = self._cuts(env)
        ips = env.node_ips()
        down = {n for cut in cuts for n in cut[:2] if env.container(n).status not in ("running", "paused")}
        plan = plan_partition(cuts, down)
        self.resolved["rules"] = {}
        self.resolved["chain"] = self.chain
        for node, p in sorted(plan.items()):
            drop_from = sorted(ips[n] for n in p["from"] if n in ips)
            drop_to = sorted(ips[n] for n in p["to"] if n in ips)
            if (not drop_from and not drop_to) or node in down:
                continue  # nothing to drop, or no namespace: a stopped node talks to nobody anyway
            self.resolved["rules"][node] = {"drop_from": drop_from, "drop_to": drop_to}
            out = env.run_helper(node, partition_script(self.chain, drop_from, drop_to, self.port),
                                 purpose="partition")
            self.resolved.setdefault("backend", out.strip().rpartition("backend=")[2] or None)

    def _heal(self, env: Environment) -> None:
        script = remove_chains_script("filter", [("INPUT", f"{self.chain}I"), ("OUTPUT", f"{self.chain}O")])
        _heal_on_nodes(env, self.resolved.get("rules", {}), script, "partition")

    def params(self) -> dict[str, Any]:
        return {"a": str(self.a), "b": str(self.b), "one_way": self.one_way,
                **({"port": self.port} if self.port is not None else {})}


def _heal_on_nodes(env: Environment, nodes: Iterable[str], script: str, purpose: str) -> None:
    errors = []
    for node in nodes:
        try:
            c = env.container(node)
        except KeyError:
            continue  # removed (undeployed): its namespace and rules are gone
        if c.status not in ("running", "paused"):
            continue  # stopped: the namespace went with it; a restart gets a fresh one
        try:
            env.run_helper(node, script, purpose=f"{purpose}-heal")
        except Exception as exc:
            errors.append(f"{node}: {exc}")
    if errors:
        raise RuntimeError(f"{purpose} heal failed on {'; '.join(errors)}")


class Isolate(Partition):
    """``target`` cannot exchange packets with any other node of the run (or only with ``from_``).

    Models a node cut off by a failed switch or a network split around one machine; the node itself
    keeps running and believes it is fine."""

    name = "isolate"

    def __init__(self, target_: Target | str, from_: Target | str | None = None) -> None:
        super().__init__(target_, from_ if from_ is not None else _Everyone())


@dataclass(frozen=True)
class _Everyone(Target):
    """Every node of the run (the host is never part of it)."""

    def nodes(self, env: Environment) -> list[str]:
        return env.node_names()


class LeaderLossAfterIsrShrink(Fault):
    """Jepsen's classic Kafka loss, as one fault: the followers of a partition are cut from its leader on
    the replication path only (the brokers' INTERNAL listener; the controller quorum still reaches every
    broker, so nobody is fenced), writes go on until the ISR has shrunk to the leader alone (waited for,
    bounded by ``fault_step_timeout_s``), then the leader is killed. Heal starts it again (its namespace, and
    with it the cut, went with the kill).

    With ``min.insync.replicas`` 2 and unclean elections off, the partition takes no write the leader alone
    would acknowledge and stays without a leader until the old one is back: nothing acknowledged is lost.
    With ``min.insync.replicas`` 1 and unclean elections on, the leader alone acknowledges, a follower that
    missed those writes becomes leader, and the old leader truncates them when it returns: acknowledged, lost.
    """

    name = "leader_loss_after_isr_shrink"

    def __init__(self, partition: int = 0, topic: str | None = None) -> None:
        super().__init__()
        self.leader_of = LeaderOf(partition, topic)
        self._cut: Partition | None = None

    def validate(self, env: Environment) -> None:
        self.leader_of.validate(env)

    def _inject(self, env: Environment) -> None:
        from chaos.env import wait_until
        from chaos.env.topology import KAFKA_INTERNAL

        topic = self.leader_of.deployed_topic(env)
        leader = self.leader_of.resolve(env)
        broker = int(leader.split("-")[1])
        others = [b for b in env.broker_names() if b != leader]
        self.resolved = {"node": leader, "topic": topic, "partition": self.leader_of.partition,
                         "isr_before": env.partition_isr(topic, self.leader_of.partition)}
        self._cut = Partition(Node(leader), _Named(tuple(others)), port=KAFKA_INTERNAL)
        self._cut.inject(env)
        started = time.monotonic()
        s = env.settings

        def shrunk() -> bool:
            return env.partition_isr(topic, self.leader_of.partition) == [broker]

        wait_until(shrunk, s.fault_step_timeout_s, f"the ISR of {topic}-{self.leader_of.partition} to shrink to "
                   f"its leader {leader} alone (replica.lag.time.max.ms)", s.poll_interval_s)
        self.resolved["isr_shrunk_after_s"] = round(time.monotonic() - started, 2)
        env.container(leader).kill(signal="SIGKILL")
        self.resolved["killed"] = True

    def _heal(self, env: Environment) -> None:
        errors = []
        node = self.resolved.get("node")
        if self.resolved.get("killed") and node:
            try:
                from chaos.faults.container import ensure_running

                ensure_running(env, node)
            except Exception as exc:
                errors.append(f"starting {node}: {exc}")
        if self._cut is not None:
            try:
                self._cut.heal(env)
            except Exception as exc:
                errors.append(f"removing the cut: {exc}")
        if errors:
            raise RuntimeError(f"{self.name}: {'; '.join(errors)}")

    def params(self) -> dict[str, Any]:
        return {"partition": self.leader_of.partition, "topic": self.leader_of.topic}


@dataclass(frozen=True)
class _Named(Target):
    """Nodes named at injection time by the fault itself."""

    names: tuple[str, ...]

    def nodes(self, env: Environment) -> list[str]:
        return list(self.names)


class Split(Partition):
    """``side`` (default: a minority of the brokers) against the rest of ``among`` (default: the
    brokers); other nodes (clients, proxies, database) keep talking to both sides.

    Models the classic split brain: the minority must stop acting as leader or controller."""

    name = "split"

    def __init__(self, side: Target | str | None = None, among: Target | str | None = None) -> None:
        self.among = target(among) if among is not None else Brokers()
        super().__init__(side if side is not None else Minority(), self.among)


class Bridge(Partition):
    """``among`` (default: the brokers) split in two halves that cannot see each other, with
    ``bridge`` (default: a random broker) seeing both, as in Jepsen's bridge partition. With three
    brokers: the two non-bridge brokers are cut from each other and both still reach the bridge.

    Models a partial partition (a flapping link between two racks): no majority-minority split, and
    the bridge node can carry messages between sides that otherwise disagree."""

    name = "bridge"

    def __init__(self, bridge: Target | str | None = None, among: Target | str | None = None) -> None:
        self.bridge = target(bridge) if bridge is not None else AnyBroker()
        self.among = target(among) if among is not None else Brokers()
        super().__init__(self.bridge, self.among)

    def _cuts(self, env: Environment) -> list[tuple[str, str, bool]]:
        bridge = _nodes(env, self.bridge)
        rest = [n for n in _nodes(env, self.among) if n not in bridge]
        half = (len(rest) + 1) // 2
        left, right = rest[:half], rest[half:]
        if not left or not right:
            raise ValueError(f"bridge: need at least two nodes besides the bridge {bridge}, have {rest}")
        self.resolved = {"bridge": bridge, "left": left, "right": right}
        return [(x, y, True) for x in left for y in right]

    def params(self) -> dict[str, Any]:
        return {"bridge": str(self.bridge), "among": str(self.among)}


class OneWay(Partition):
    """Packets from ``src`` to ``dst`` are dropped; ``dst`` to ``src`` pass.

    Models an asymmetric failure (a one-way firewall rule, a broken transmit queue). TCP connections
    between the two fail in both directions, datagrams only in one."""

    name = "one_way"

    def __init__(self, src: Target | str, dst: Target | str) -> None:
        super().__init__(src, dst, one_way=True)

    def params(self) -> dict[str, Any]:
        return {"src": str(self.a), "dst": str(self.b)}


# ------------------------------------------------------------------------------------------------
# netem


class NetEm(Fault):
    """Degrade the egress of the target(s): ``delay_ms`` with ``jitter_ms``, ``loss_pct`` packet loss,
    ``duplicate_pct`` duplication, ``corrupt_pct`` corruption (a flipped bit; the receiver drops the
    packet on its checksum, as with netem). Every packet the target sends on ``interface`` is affected
    (to other nodes and to the host).

    Models a lossy, slow or flaky network card, cable or path: TCP retransmits and slows down rather
    than fails."""

    name = "netem"

    def __init__(self, target_: Target | str, *, delay_ms: int = 0, jitter_ms: int = 0, loss_pct: float = 0.0,
                 duplicate_pct: float = 0.0, corrupt_pct: float = 0.0, interface: str = "eth0",
                 backend: str = "auto") -> None:
        super().__init__()
        self.target = target(target_)
        for k, v in (("delay_ms", delay_ms), ("jitter_ms", jitter_ms)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"netem {k}={v!r} must be a non-negative integer (milliseconds)")
        for k, pct in (("loss_pct", loss_pct), ("duplicate_pct", duplicate_pct), ("corrupt_pct", corrupt_pct)):
            if not isinstance(pct, int | float) or isinstance(pct, bool) or not 0 <= pct <= 100:
                raise ValueError(f"netem {k}={pct!r} must be a percentage between 0 and 100")
        if not (delay_ms or jitter_ms or loss_pct or duplicate_pct or corrupt_pct):
            raise ValueError("netem needs at least one of delay_ms, jitter_ms, loss_pct, duplicate_pct, corrupt_pct")
        if backend not in NETEM_BACKENDS:
            raise ValueError(f"netem backend {backend!r} not accepted; accepted: {', '.join(NETEM_BACKENDS)}")
        if not _IFACE_RE.match(interface):
            raise ValueError(f"interface {interface!r} is not an interface name")
        self.delay_ms, self.jitter_ms = delay_ms, jitter_ms
        self.loss_pct, self.duplicate_pct, self.corrupt_pct = float(loss_pct), float(duplicate_pct), float(corrupt_pct)
        self.interface, self.backend = interface, backend
        self.chain = _new_chain()
        self.queue = 100 + int(self.chain[len(CHAIN_PREFIX):]) % 60000
        self._daemons: dict[str, Container] = {}

    def validate(self, env: Environment) -> None:
        self.target.validate(env)

    def _tc_args(self) -> list[str]:
        return netem_tc_args(self.delay_ms, self.jitter_ms, self.loss_pct, self.duplicate_pct, self.corrupt_pct)

    def _inject(self, env: Environment) -> None:
        nodes = _nodes(env, self.target)
        self.resolved = {"nodes": [], "backend": {}}
        for node in nodes:
            self.resolved["nodes"].append(node)
            self.resolved["backend"][node] = self._inject_one(env, node)

    def _inject_one(self, env: Environment, node: str) -> str:
        if self.backend in ("auto", "tc"):
            tc = shlex.join(["tc", "qdisc", "add", "dev", self.interface, "root", *self._tc_args()])
            try:
                env.run_helper(node, tc, purpose="netem")
                return "tc"
            except RuntimeError as exc:
                if self.backend == "tc":
                    raise RuntimeError(f"tc netem failed on {node} (does the kernel have sch_netem?): {exc}") from exc
                log.info("tc netem unavailable on %s, using the NFQUEUE backend: %s", node, str(exc)[-200:])
        queue: int | None = None
        if self.delay_ms or self.jitter_ms or self.loss_pct or self.corrupt_pct:
            cmd = ["chaos-netem", "-q", str(self.queue), "-d", str(self.delay_ms), "-j", str(self.jitter_ms),
                   "-l", f"{self.loss_pct:g}", "-c", f"{self.corrupt_pct:g}"]
            if env.settings.seed:
                cmd += ["-s", str(env.settings.seed)]
            self._daemons[node] = env.start_helper(node, cmd, purpose="netem", ready="ready")
            queue = self.queue
        me = env.node_ip(node)
        destinations = [ip for ip in env.node_ips().values() if ip != me] + [env.gateway_ip()]
        env.run_helper(node, netem_iptables_script(self.chain, self.interface, queue, self.duplicate_pct,
                                                   destinations), purpose="netem")
        return "nfqueue"

    def _heal(self, env: Environment) -> None:
        backends: dict[str, str] = self.resolved.get("backend", {})
        tc_nodes = [n for n, b in backends.items() if b == "tc"]
        nfq_nodes = [n for n in self.resolved.get("nodes", []) if backends.get(n) != "tc"]
        errors = []
        try:
            _heal_on_nodes(env, tc_nodes, f"tc qdisc del dev {self.interface} root 2>/dev/null; true", "netem")
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            # rules first (packets stop entering the queue), then the daemon (releases what it holds)
            _heal_on_nodes(env, nfq_nodes, remove_chains_script("mangle", [("OUTPUT", self.chain)]), "netem")
        except RuntimeError as exc:
            errors.append(str(exc))
        stats = {}
        for node, daemon in list(self._daemons.items()):
            out = env.stop_helper(daemon)
            m = re.search(r"stats (.*)", out)
            if m:
                stats[node] = dict(kv.split("=", 1) for kv in m.group(1).split())
            del self._daemons[node]
        if stats:
            self.resolved["stats"] = stats
        if errors:
            raise RuntimeError("; ".join(errors))

    def params(self) -> dict[str, Any]:
        return {"target": str(self.target), "delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms,
                "loss_pct": self.loss_pct, "duplicate_pct": self.duplicate_pct, "corrupt_pct": self.corrupt_pct,
                "interface": self.interface, "backend": self.backend}
