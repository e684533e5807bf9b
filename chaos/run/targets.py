"""Where a run happens: the suite's own environment, or an external one (:mod:`chaos.gameday.external`).

Both give the run protocol the same things: the environment the faults act on, the entry point the load
uses, the pipeline's probes (entry serving, brokers, full ISR, consumer lag, rows applied), a bounded
wait for recovery, an inventory of fault traces (``leftovers``: what ``gameday status`` shows as active
faults and what a run checks after healing) and an emergency heal that needs no fault object
(``heal_everything``: what ``gameday heal`` does, from any process). Only the local target deploys a
fresh pipeline and reads ground truth.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chaos import truth
from chaos.adapter import Pipeline
from chaos.config import Settings
from chaos.env import LABEL_ROLE, LABEL_RUN, Deployment, Environment, kafka_client_config, wait_until
from chaos.env import kafka as K
from chaos.env.readiness import grpc_serving
from chaos.faults.container import ensure_running
from chaos.gameday.external import ExternalEnvironment, ExternalTarget

# Deletes every chain of ours (CHAOS*) and the jumps to it, in the filter and mangle tables, with both
# iptables backends: the partition and netem faults put their rules there (chaos.faults.partition).
CLEAN_CHAINS = r"""
for IPT in iptables iptables-legacy; do
  command -v $IPT >/dev/null 2>&1 || continue
  $IPT -w -S >/dev/null 2>&1 || continue
  for t in filter mangle; do
    $IPT -w -t $t -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j CHAOS' | sed 's/^-A/-D/' | while read -r rule; do
      $IPT -w -t $t $rule 2>/dev/null || true
    done
    for c in $($IPT -w -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^CHAOS/ {print $2}'); do
      $IPT -w -t $t -F $c 2>/dev/null || true; $IPT -w -t $t -X $c 2>/dev/null || true
    done
  done
done
echo cleaned
"""


@dataclass
class Watched:
    """What the probes watch: the topics (deployed names) and the consumer groups with their topics."""

    topics: list[str]
    consumers: list[tuple[str, list[str]]]


class LocalTarget:
    kind = "local"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.settings = env.settings
        self.pipeline: Pipeline = env.pipeline
        self.name = f"env {env.run_id}"
        self.bootstrap = env.endpoints.kafka_external
        self.brokers = 3

    @property
    def entry(self) -> str:
        return self.env.endpoints.grpc

    @property
    def deployment(self) -> Deployment | None:
        return self.env.deployment

    @property
    def watched(self) -> Watched | None:
        d = self.env.deployment
        return Watched(list(d.topics.values()), d.consumers()) if d else None

    def deploy(self, name: str, defects: tuple[str, ...]) -> Deployment:
        return self.env.deploy(name, defects)

    def applied(self) -> int | None:
        d = self.env.deployment
        return truth.count_applied(self.env, d) if d is not None else None

    def wait_recovered(self) -> None:
        self.env.wait_recovered()

    def reset_links(self) -> None:
        self.env.toxiproxy.reset()

    def ensure_running(self, nodes: list[str]) -> None:
        for n in resolve_nodes(self.env, nodes):
            ensure_running(self.env, n)

    def containers(self) -> list[Any]:
        assert self.env.client is not None
        return list(self.env.client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={self.env.run_id}"}))

    def leftovers(self) -> list[str]:
        """Traces of faults: toxics, disabled links, nodes not running, fault helpers, disk ballast."""
        out: list[str] = []
        env = self.env
        for name, p in sorted(env.toxiproxy.proxies().items()):
            if not p.enabled:
                out.append(f"link {name} down")
            out += [f"toxic {t.type} ({t.stream}) on {name}" for t in env.toxiproxy.toxics(name)]
        for c in self.containers():
            node = c.name.removeprefix(f"{env.prefix}-")
            role = c.labels.get(LABEL_ROLE)
            if role == "helper":
                if c.labels.get("helper") != "disks":
                    out.append(f"fault helper {node}")
                elif c.status == "running":
                    res = c.exec_run(["sh", "-c", "ls /disks/*/.chaos-ballast 2>/dev/null"])
                    out += [f"disk ballast {p}" for p in (res.output or b"").decode().split()]
            elif c.status != "running":
                out.append(f"{node} {c.status}")
        return out

    def heal_everything(self) -> list[str]:
        """Heal every fault trace without the fault objects (another process may have injected them)."""
        env, done = self.env, []
        with contextlib.suppress(Exception):
            env.toxiproxy.reset()
            done.append("every link enabled, every toxic removed")
        for c in self.containers():
            node = c.name.removeprefix(f"{env.prefix}-")
            role = c.labels.get(LABEL_ROLE)
            try:
                if role == "helper" and c.labels.get("helper") != "disks":
                    c.remove(force=True)
                    done.append(f"removed helper {node}")
                elif role == "helper":
                    c.exec_run(["sh", "-c", "rm -f /disks/*/.chaos-ballast /disks/*/.chaos-ballast.top"])
                elif c.status == "paused":
                    c.unpause()
                    done.append(f"unpaused {node}")
                elif c.status != "running":
                    c.start()
                    done.append(f"started {node}")
            except Exception as exc:
                done.append(f"FAILED on {node}: {exc}")
        nodes = [n for n in env.node_names() if env.container(n).status == "running"]

        def clean(node: str) -> str:
            try:
                env.run_helper(node, CLEAN_CHAINS, purpose="heal")
                return ""
            except Exception as exc:
                return f"FAILED to clean iptables on {node}: {exc}"

        with ThreadPoolExecutor(max_workers=4) as pool:
            errors = [e for e in pool.map(clean, nodes) if e]
        done += errors or [f"no iptables chain of ours left on {len(nodes)} node(s)"]
        return done


class ExternalTargetView:
    kind = "external"

    def __init__(self, ext: ExternalTarget, settings: Settings, pipeline: Pipeline, log: Any = None) -> None:
        self.ext = ext
        self.env = ExternalEnvironment(ext, settings, log, pipeline)
        self.settings = self.env.settings
        self.pipeline = pipeline
        self.name = f"external {ext.name}"
        self.entry = ext.grpc
        self.bootstrap = ext.kafka_bootstrap
        self.brokers = len([n for n in ext.nodes if n.startswith("kafka-")]) or 1
        self.deployment: Deployment | None = None  # nothing of ours is deployed there

    @property
    def watched(self) -> Watched | None:
        if not self.ext.topic:
            return None
        return Watched([self.ext.topic], [(self.ext.group, [self.ext.topic])] if self.ext.group else [])

    def deploy(self, name: str, defects: tuple[str, ...]) -> Deployment:
        raise ValueError("an external target is never deployed to: its pipeline is already running")

    def applied(self) -> int | None:
        return None

    def _allowed_links(self) -> list[str]:
        return [n for n in self.ext.links if self.ext.allowed(n)]

    def _allowed_nodes(self) -> list[str]:
        return [n for n in self.ext.nodes if self.ext.allowed(n)]

    def wait_recovered(self) -> None:
        s = self.settings
        if self.ext.commands.get("status"):
            wait_until(lambda: all(self.env.container(n).status == "running" for n in self._allowed_nodes()),
                       s.gameday_steady_timeout_s, "every allowed node to run again", s.poll_interval_s)
        w = self.watched
        if self.bootstrap and w:
            wait_until(lambda: full_isr(self.bootstrap, w.topics)[0], s.gameday_steady_timeout_s,
                       "a full ISR again", s.poll_interval_s)

    def reset_links(self) -> None:
        for link in self._allowed_links():
            assert self.env.toxiproxy is not None
            for t in self.env.toxiproxy.toxics(link):
                self.env.toxiproxy.remove_toxic(link, t.name)
            self.env.toxiproxy.set_enabled(link, True)

    def ensure_running(self, nodes: list[str]) -> None:
        for n in resolve_nodes(self.env, nodes):
            ensure_running(self.env, n)

    def leftovers(self) -> list[str]:
        out: list[str] = []
        tp = self.env.toxiproxy
        if tp is not None:
            proxies = tp.proxies()
            for link in self._allowed_links():
                p = proxies.get(link)
                if p is None:
                    out.append(f"link {link} missing from the Toxiproxy")
                    continue
                if not p.enabled:
                    out.append(f"link {link} down")
                out += [f"toxic {t.type} ({t.stream}) on {link}" for t in tp.toxics(link)
                        if t.name.startswith("chaos_")]
        if self.ext.commands.get("status"):
            for n in self._allowed_nodes():
                st = self.env.container(n).status
                if st != "running":
                    out.append(f"{n} {st}")
        return out

    def heal_everything(self) -> list[str]:
        """Within the allow-list only: our toxics removed, allowed links enabled, allowed nodes running."""
        done: list[str] = []
        tp = self.env.toxiproxy
        if tp is not None:
            for link in self._allowed_links():
                try:
                    for t in tp.toxics(link):
                        if t.name.startswith("chaos_"):
                            tp.remove_toxic(link, t.name)
                            done.append(f"removed toxic {t.name} from {link}")
                    tp.set_enabled(link, True)
                except Exception as exc:
                    done.append(f"FAILED on link {link}: {exc}")
        if not self.ext.commands.get("status"):
            if self._allowed_nodes():
                done.append("node states unknown (no [commands] status template): nodes not checked")
            return done
        for n in self._allowed_nodes():
            try:
                c = self.env.container(n)
                if c.status == "paused":
                    c.unpause()
                    done.append(f"unpaused {n}")
                elif c.status != "running":
                    c.start()
                    done.append(f"started {n}")
            except Exception as exc:
                done.append(f"FAILED on {n}: {exc}")
        return done


# -- probes of the pipeline (used by the run protocol and by gameday status) --------------------------------


def entry_serving(target: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    import grpc

    try:
        return grpc_serving(target, "", timeout_s)
    except grpc.RpcError as exc:
        return False, exc.code().name if hasattr(exc, "code") else "error"  # type: ignore[attr-defined]


_ADMINS: dict[str, Any] = {}


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    if bootstrap not in _ADMINS:
        _ADMINS[bootstrap] = AdminClient(kafka_client_config(bootstrap))
    return _ADMINS[bootstrap]


def full_isr(bootstrap: str, topics: list[str], timeout_s: float = 3.0) -> tuple[bool, str]:
    full = total = 0
    for topic in topics:
        md = _admin(bootstrap).list_topics(topic, timeout=timeout_s).topics.get(topic)
        if md is None or md.error is not None:
            return False, f"topic {topic} unknown"
        parts = md.partitions.values()
        full += sum(1 for p in parts if p.leader >= 0 and len(p.isrs) == len(p.replicas))
        total += len(parts)
    return full == total, f"{full}/{total} full"


def brokers_registered(bootstrap: str, timeout_s: float = 3.0) -> int:
    return len(_admin(bootstrap).list_topics(timeout=timeout_s).brokers)


def consumer_lag(bootstrap: str, consumers: list[tuple[str, list[str]]], timeout_s: float = 3.0) -> int:
    return sum(K.group_lag(bootstrap, group, topics, timeout_s) for group, topics in consumers)


def resolve_nodes(env: Any, names: list[str]) -> list[str]:
    """Node names as given, or resolved by the one role interpreter (``all:sink``, ``leader:0``)."""
    from chaos.faults.targets import target

    known = set(env.node_names())
    out: list[str] = []
    for n in names:
        out += [n] if n in known else target(n).nodes(env)
    return list(dict.fromkeys(out))


def now_s() -> float:
    return time.monotonic()


Target = LocalTarget | ExternalTargetView
