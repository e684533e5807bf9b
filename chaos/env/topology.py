"""The topology: one table of nodes, links, ports and roles, computed from a pipeline's description.

Pure (no engine, no network), so the rules are visible and unit-tested::

    client --[client-<entry>]--> <entry service>
    <service> --[<service>-kafka-<i>]--> kafka-<i>      (listener SVC_<SERVICE>, advertised as that proxy)
    <service> --[<service>-postgres]--> postgres
    <service> --[<service>-<other>]--> <other service>:<port>
    host --verify--> kafka-<i> EXTERNAL (127.0.0.1:<port i>), postgres (127.0.0.1:<port>)

Kafka clients learn broker addresses from metadata, so a proxy in front of the bootstrap address alone
would be bypassed: each broker has one listener per Kafka-talking service, advertised as the address of
that service's own proxy for that broker. A toxic on ``ingest-kafka-2`` therefore hits exactly the
ingest service's traffic to broker 2. Replicas of a service share its links.

Node names: ``kafka-1..3``, ``postgres``, ``toxiproxy``, and per service ``<service>`` when it has one
replica, ``<service>-1..N`` when it has more. Every replica also answers to the service's name on the
run's network, so a link to a service reaches any of its replicas.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from chaos.adapter import Pipeline, Service

BROKERS = (1, 2, 3)
BROKER_NODES = tuple(f"kafka-{i}" for i in BROKERS)
INFRA_NODES = (*BROKER_NODES, "postgres", "toxiproxy")
TOXI_API = 8474
KAFKA_INTERNAL, KAFKA_CONTROLLER, KAFKA_EXTERNAL = 9092, 9093, 9096
SERVICE_LISTENER_BASE = 9100  # + k: broker port of the k-th Kafka-talking service's listener
KAFKA_PROXY_BASE = 19000  # + 100 k + broker id: Toxiproxy port of service k's link to that broker
POSTGRES_PROXY_BASE = 15400  # + k
SERVICE_PROXY_BASE = 16000  # + n: service-to-service links
CLIENT_PROXY_BASE = 8660  # + k: the client's link to the k-th entry service
POSTGRES_PORT = 5432
MAX_KAFKA_CLIENTS = 90


@dataclass(frozen=True)
class Link:
    """A client->server hop through Toxiproxy; faults name links."""

    name: str
    listen: str  # inside the Toxiproxy container
    upstream: str  # host:port on the run's network
    src: str  # a service name, or "client" (the test process)
    dst: str  # "kafka-<i>", "postgres", or a service name


@dataclass(frozen=True)
class Listener:
    """A broker listener dedicated to one Kafka-talking service."""

    name: str  # SVC_<SERVICE>
    port: int  # on every broker
    service: str
    proxy_base: int  # the proxy for broker i listens on proxy_base + i

    def proxy_port(self, broker: int) -> int:
        return self.proxy_base + broker


class Topology:
    """Nodes, links, listeners and roles of one environment (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, replicas: dict[str, int] | None = None) -> None:
        self.pipeline = pipeline
        overrides = dict(replicas or {})
        unknown = [n for n in overrides if n not in {s.name for s in pipeline.services}]
        if unknown:
            raise ValueError(f"replicas given for unknown service(s) {', '.join(unknown)}; services of "
                             f"{pipeline.name}: {', '.join(s.name for s in pipeline.services)}")
        self.replicas = {s.name: overrides.get(s.name, s.replicas) for s in pipeline.services}
        kafka_clients = [s for s in pipeline.services if "kafka" in s.talks_to]
        if len(kafka_clients) > MAX_KAFKA_CLIENTS:
            raise ValueError(f"at most {MAX_KAFKA_CLIENTS} services may talk to Kafka")
        self.listeners = {s.name: Listener(f"SVC_{re.sub(r'[^A-Z0-9]', '_', s.name.upper())}",
                                           SERVICE_LISTENER_BASE + k, s.name, KAFKA_PROXY_BASE + 100 * k)
                          for k, s in enumerate(kafka_clients, start=1)}
        links: list[Link] = []
        pg_clients = [s for s in pipeline.services if "postgres" in s.talks_to]
        for k, s in enumerate(pg_clients, start=1):
            links.append(Link(f"{s.name}-postgres", f"0.0.0.0:{POSTGRES_PROXY_BASE + k}",
                              f"postgres:{POSTGRES_PORT}", s.name, "postgres"))
        for s in kafka_clients:
            lst = self.listeners[s.name]
            for i in BROKERS:
                links.append(Link(f"{s.name}-kafka-{i}", f"0.0.0.0:{lst.proxy_port(i)}", f"kafka-{i}:{lst.port}",
                                  s.name, f"kafka-{i}"))
        n = 0
        for s in pipeline.services:
            for dst in s.talks_to:
                if dst in ("kafka", "postgres"):
                    continue
                n += 1
                target = pipeline.service(dst)
                links.append(Link(f"{s.name}-{dst}", f"0.0.0.0:{SERVICE_PROXY_BASE + n}",
                                  f"{dst}:{target.port}", s.name, dst))
        self.entries = pipeline.with_role("entry")
        for k, s in enumerate(self.entries, start=1):
            links.append(Link(f"client-{s.name}", f"0.0.0.0:{CLIENT_PROXY_BASE + k}",
                              f"{s.name}:{s.port}", "client", s.name))
        self.links = {link.name: link for link in links}

    # -- nodes -------------------------------------------------------------------------------------

    def nodes_of(self, service: str) -> list[str]:
        n = self.replicas[service]
        return [service] if n == 1 else [f"{service}-{j}" for j in range(1, n + 1)]

    def service_nodes(self) -> list[str]:
        return [node for s in self.pipeline.services for node in self.nodes_of(s.name)]

    def service_of(self, node: str) -> Service | None:
        """The service a node belongs to (a replica, or a node of a second fleet ``<service>-<fleet>-<j>``)."""
        best: Service | None = None
        for s in self.pipeline.services:
            if (node == s.name or node.startswith(s.name + "-")) and (best is None or len(s.name) > len(best.name)):
                best = s
        return best

    def broker_names(self) -> list[str]:
        return list(BROKER_NODES)

    def selector_nodes(self, selector: str) -> list[str]:
        """Every replica of the services a selector (a name or a role) names."""
        return [n for s in self.services(selector) for n in self.nodes_of(s.name)]

    def services(self, selector: str) -> list[Service]:
        """Services named ``selector``, else those with the role ``selector`` (``sink``, ``entry``)."""
        try:
            return [self.pipeline.service(selector)]
        except KeyError:
            return self.pipeline.with_role(selector)

    # -- links -------------------------------------------------------------------------------------

    def entry_link(self, service: str | None = None) -> Link:
        name = service or self.entries[0].name
        return self.links[f"client-{name}"]

    def links_between(self, src: str, dst: str | None = None) -> list[Link]:
        """Links from ``src`` (a service name or role, ``client``, or a glob over link names when ``dst`` is
        None) to ``dst`` (``kafka`` = every broker, ``kafka-2``, ``postgres``, a service name or role)."""
        if dst is None:
            return [link for name, link in self.links.items() if fnmatch.fnmatchcase(name, src)]
        srcs = {"client"} if src == "client" else {s.name for s in self.services(src)}
        if dst == "kafka":
            dsts = set(BROKER_NODES)
        elif dst in BROKER_NODES or dst == "postgres":
            dsts = {dst}
        else:
            dsts = {s.name for s in self.services(dst)}
        return [link for link in self.links.values() if link.src in srcs and link.dst in dsts]

    def link_names(self) -> list[str]:
        return list(self.links)

    def link_globs(self) -> list[str]:
        """Every link name, plus ``<service>-kafka-*`` for each Kafka-talking service (for schedules)."""
        return [*self.links, *(f"{s}-kafka-*" for s in self.listeners)]

    # -- Kafka listeners (see chaos.env.kafka.broker_properties) ---------------------------------------

    def bootstrap_for(self, service: str) -> str:
        lst = self.listeners[service]
        return ",".join(f"toxiproxy:{lst.proxy_port(i)}" for i in BROKERS)

    def proxy_for(self, src: str, dst: str) -> str:
        """``toxiproxy:<port>`` of the link from ``src`` to ``dst`` (``postgres`` or a service)."""
        link = self.links[f"{src}-{dst}"]
        return "toxiproxy:" + link.listen.rsplit(":", 1)[1]
