"""Starts and stops the environment, deploys a pipeline into it, and hands out endpoints.

One private network per session; three KRaft brokers, Postgres, Toxiproxy (every link of the topology,
see :mod:`chaos.env.topology`) and a ``disks`` keeper. A pipeline is then *deployed* once per
experiment: its topics ``<topic>.<tag>``, a schema ``exp_<tag>`` set up with the adapter's SQL, and its
service containers, started with their environment templated from the endpoints, and waited for by
their readiness checks (:mod:`chaos.env.readiness`). ``deploy`` removes the previous deployment first.

Each broker's log dir is its own small filesystem (``kafka_log_disk_mb``, default 256 MB) so that the
DiskFull fault can fill it: a labelled tmpfs volume per broker, mounted at the log dir. A tmpfs volume
is unmounted (and its content lost) when the last container using it stops, which would wipe a broker
on every kill or restart; so one helper container, ``disks`` (role ``helper``), mounts all three
volumes and runs for the whole session, keeping them mounted while brokers die and come back.

Fault helpers (``run_helper``, ``start_helper``) are short-lived containers of the ``nethelper`` image
that share a target's network namespace (``network_mode=container:<id>``) with only CAP_NET_ADMIN,
carry the run's labels and are removed after use.

Everything carries the run's labels (:mod:`chaos.env.janitor`); ``stop()`` removes every container,
volume and network of the run, whatever state they are in, and a start sweeps what earlier runs whose
owner is gone left behind. Published ports bind to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic
from docker.models.containers import Container
from psycopg import sql
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from chaos import redact
from chaos.adapter import Pipeline, Readiness, Service, ServiceContext
from chaos.config import Settings
from chaos.env import kafka as K
from chaos.env import readiness
from chaos.env.janitor import (
    LABEL_DEPLOYMENT,
    LABEL_KEEP,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_RUN,
    EnvironmentError_,
    connect_engine,
    owner_id,
    sweep,
)
from chaos.env.topology import BROKER_NODES, BROKERS, KAFKA_EXTERNAL, POSTGRES_PORT, TOXI_API, Link, Topology
from chaos.env.wait import wait_until
from chaos.images import ImageSet
from chaos.toxiproxy_client import ToxiproxyClient

log = logging.getLogger("chaos.env")

LABEL_SERVICE = "org.pipeline-chaos.service"
DISKS_MOUNT = "/disks"  # where the ``disks`` keeper mounts broker i's log volume: /disks/kafka-<i>
EXIT_LOG_LINES = 20  # log lines quoted when a container exits while the environment starts
SUITE_APPLICATION = "pipeline-chaos"  # application_name of the suite's own Postgres sessions


def kraft_cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, base64url without padding (22 characters).

    Like Kafka's own ``Uuid.randomUuid()``, never one that begins with ``-``: ``kafka-storage format -t
    <id>`` would read it as an option and the broker would exit (1 random id in 64 does)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Container(DockerContainer):
    def with_loopback_port(self, container_port: int, host_port: int) -> _Container:
        """Publish on 127.0.0.1 only (testcontainers' own binding listens on every address)."""
        self.ports[f"{container_port}/tcp"] = ("127.0.0.1", host_port)  # type: ignore[assignment]
        return self


@dataclass(frozen=True)
class Endpoints:
    """What the test process reaches, all on 127.0.0.1: entry links (through Toxiproxy), the Toxiproxy API,
    the brokers' EXTERNAL listeners and Postgres (direct, no toxics)."""

    entries: dict[str, str]  # entry service -> host:port of its client link
    toxiproxy_api: tuple[str, int]
    kafka_external: str  # bootstrap list (no toxics)
    kafka_external_by_broker: dict[int, str]
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_db: str

    @property
    def grpc(self) -> str:
        """The (first) entry service's address: where the load goes."""
        return next(iter(self.entries.values()))

    def pg_conninfo(self, schema: str | None = None) -> str:
        opts = f" options='-c search_path={schema}'" if schema else ""
        return (f"host={self.pg_host} port={self.pg_port} user={self.pg_user} password={self.pg_password} "
                f"dbname={self.pg_db} connect_timeout=5 application_name={SUITE_APPLICATION}{opts}")


@dataclass
class Deployment:
    """One deployment of the pipeline's services (own topics, consumer groups and schema)."""

    name: str
    tag: str
    topics: dict[str, str]  # logical -> deployed name
    groups: dict[str, str]  # consuming service -> its consumer group
    schema: str
    defects: tuple[str, ...]
    pipeline: Pipeline
    containers: dict[str, Container] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        """The deployed name of the entry topic (where acknowledged writes land)."""
        return self.topics[self.pipeline.entry_topic.name]

    def consumers(self) -> list[tuple[str, list[str]]]:
        """(group, deployed topics it reads) of every consuming service: quiescence waits on each."""
        out = []
        for s in self.pipeline.services:
            if s.consumes:
                out.append((self.groups[s.name], [self.topics[t] for t in s.consumes]))
        return out


class Environment:
    """The whole topology for one session. Use as a context manager or call start()/stop()."""

    def __init__(self, settings: Settings, images: ImageSet, pipeline: Pipeline, run_id: str | None = None, *,
                 keep: bool = False) -> None:
        self.settings = settings
        self.images = images
        self.pipeline = pipeline
        self.topology = Topology(pipeline, settings.replica_overrides())
        self.run_id = run_id or uuid.uuid4().hex[:10]
        self.keep = keep  # labelled LABEL_KEEP: survives other runs' sweeps (gameday up); stop() removes it
        self.prefix = f"pc-{self.run_id}"
        self.client: docker.DockerClient | None = None
        self.network: Network | None = None
        self._containers: dict[str, Container] = {}
        self._helpers: dict[str, Container] = {}  # long-lived helpers (the disks keeper); not fault targets
        self._lock = threading.Lock()
        self.cluster_id = kraft_cluster_id()
        self.pg_password = secrets.token_urlsafe(18)
        redact.register(self.pg_password)
        self.ports = {"toxiproxy": free_loopback_port(), "postgres": free_loopback_port(),
                      **{f"kafka-{i}": free_loopback_port() for i in BROKERS},
                      **{self.topology.entry_link(s.name).name: free_loopback_port() for s in self.topology.entries}}
        self.endpoints = self._endpoints()
        self.toxiproxy = ToxiproxyClient("127.0.0.1", self.ports["toxiproxy"], settings.toxiproxy_api_timeout_s)
        self.links: dict[str, Link] = self.topology.links
        self.deployment: Deployment | None = None
        self._admin: AdminClient | None = None
        self.started_s: float | None = None

    def _endpoints(self) -> Endpoints:
        return Endpoints(
            entries={s.name: f"127.0.0.1:{self.ports[self.topology.entry_link(s.name).name]}"
                     for s in self.topology.entries},
            toxiproxy_api=("127.0.0.1", self.ports["toxiproxy"]),
            kafka_external=",".join(f"127.0.0.1:{self.ports[f'kafka-{i}']}" for i in BROKERS),
            kafka_external_by_broker={i: f"127.0.0.1:{self.ports[f'kafka-{i}']}" for i in BROKERS},
            pg_host="127.0.0.1", pg_port=self.ports["postgres"], pg_user="chaos",
            pg_password=self.pg_password, pg_db="pipeline",
        )

    def entry_address(self, service: str | None = None) -> str:
        """host:port (127.0.0.1) where the client reaches an entry service, through its link."""
        return f"127.0.0.1:{self.ports[self.topology.entry_link(service).name]}"

    @classmethod
    def attach(cls, settings: Settings, images: ImageSet, pipeline: Pipeline, run_id: str, *, ports: dict[str, int],
               cluster_id: str, deployment: dict[str, Any] | None = None) -> Environment:
        """An environment kept running by another process (``gameday up``), found by its run id.

        Its containers are looked up by label; ``deployment`` (name, tag, topics, groups, schema, defects, as
        ``Deployment`` has them) is the pipeline deployed in it. The Postgres password is read from the
        Postgres container itself (it is written nowhere else). Whatever this process starts in it carries
        the keep label too."""
        env = cls(settings, images, pipeline, run_id=run_id, keep=True)
        env.ports, env.cluster_id = dict(ports), cluster_id
        env.client = connect_engine(settings)
        try:
            docker_net = env.client.networks.get(env.prefix)
        except docker.errors.NotFound:
            raise EnvironmentError_(f"no environment with run id {run_id} is running (network {env.prefix} "
                                    "not found)") from None
        env.network = Network(docker_network_kw={"labels": env.labels("network")})
        env.network.name = env.prefix
        env.network._network = docker_net
        dep = None
        if deployment is not None:
            dep = Deployment(name=deployment["name"], tag=deployment["tag"], topics=dict(deployment["topics"]),
                             groups=dict(deployment["groups"]), schema=deployment["schema"],
                             defects=tuple(deployment.get("defects") or ()), pipeline=pipeline)
        for c in env.client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}):
            node, role = c.name.removeprefix(f"{env.prefix}-"), c.labels.get(LABEL_ROLE)
            if role in ("kafka", "postgres", "toxiproxy"):
                env._containers[node] = c
                if role == "postgres":
                    pw = [e.split("=", 1)[1] for e in c.attrs["Config"]["Env"] if e.startswith("POSTGRES_PASSWORD=")]
                    env.pg_password = pw[0] if pw else env.pg_password
                    redact.register(env.pg_password)
            elif role == "helper" and c.labels.get("helper") == "disks":
                env._helpers["disks"] = c
            elif role == "service" and dep is not None and c.labels.get(LABEL_DEPLOYMENT) == dep.name:
                dep.containers[node] = c
        env.endpoints = env._endpoints()
        env.toxiproxy = ToxiproxyClient("127.0.0.1", env.ports["toxiproxy"], settings.toxiproxy_api_timeout_s)
        env.deployment = dep
        return env

    def describe_deployment(self) -> dict[str, Any] | None:
        """What ``attach`` needs to find the current deployment again."""
        d = self.deployment
        if d is None:
            return None
        return {"name": d.name, "tag": d.tag, "topics": d.topics, "groups": d.groups, "schema": d.schema,
                "defects": list(d.defects)}

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Environment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def labels(self, role: str, **extra: str) -> dict[str, str]:
        keep = {LABEL_KEEP: "gameday"} if self.keep else {}
        return {LABEL_RUN: self.run_id, LABEL_ROLE: role, LABEL_OWNER: owner_id(), **keep, **extra}

    def start(self) -> None:
        started = time.monotonic()
        self.client = connect_engine(self.settings)
        swept = sweep(self.client)
        if swept:
            log.warning("removed %d leftover container(s)/network(s) of earlier runs", swept)
        self.network = Network(docker_network_kw={"labels": self.labels("network"), "internal": False})
        self.network.name = self.prefix
        self.network.create()
        self._start_disks()
        builders: dict[str, Callable[[], _Container]] = {
            "toxiproxy": self._toxiproxy, "postgres": self._postgres,
            **{f"kafka-{i}": (lambda i=i: self._kafka(i)) for i in BROKERS},  # type: ignore[misc]
        }
        with ThreadPoolExecutor(max_workers=len(builders)) as pool:
            futures = {name: pool.submit(self._start, name, b) for name, b in builders.items()}
            for f in futures.values():
                f.result()
        bound, every = self.settings.env_start_timeout_s, self.settings.poll_interval_s
        alive = self.fail_if_exited
        wait_until(self.toxiproxy.version, bound, "the Toxiproxy API", every, abort=alive)
        self.create_links()
        wait_until(self._postgres_ready, bound, "Postgres to accept connections", every, abort=alive)
        wait_until(self._kafka_ready, bound, "all three Kafka brokers to register", every, abort=alive)
        self.started_s = time.monotonic() - started
        log.info("environment %s up in %.1f s", self.run_id, self.started_s)

    def create_links(self) -> None:
        """Every link of the topology as a Toxiproxy proxy (after ``reset`` they are all enabled again)."""
        for link in self.links.values():
            self.toxiproxy.create_proxy(link.name, link.listen, link.upstream)

    def stop(self) -> None:
        """Remove every container and the network of this run. Safe to call more than once."""
        client = self.client
        if client is None:
            with contextlib.suppress(Exception):
                client = connect_engine(self.settings)
        if client is None:
            return
        sweep(client, run_id=self.run_id, only_orphans=False)
        self._containers.clear()
        self._helpers.clear()
        self.deployment = None

    def fail_if_exited(self, names: list[str] | None = None) -> None:
        """Raise EnvironmentError_ naming the first container (of ``names``, default all the environment's
        own) that has exited, with its exit status and last log lines; a wait for it to answer is pointless."""
        for name in names if names is not None else list(self._containers):
            c = self._containers.get(name) or (self.deployment.containers.get(name) if self.deployment else None)
            if c is None:
                continue
            with contextlib.suppress(docker.errors.NotFound):
                c.reload()
            if c.status in ("exited", "dead"):
                code = (c.attrs.get("State") or {}).get("ExitCode")
                tail = c.logs(tail=EXIT_LOG_LINES).decode(errors="replace").rstrip()
                raise EnvironmentError_(
                    f"{name} ({c.name}) exited with status {code} while it was starting; "
                    f"its last {EXIT_LOG_LINES} log lines:\n{tail}")

    def _start(self, name: str, build: Callable[[], _Container]) -> None:
        tc = build()
        tc.with_name(f"{self.prefix}-{name}").with_network(self.network).with_network_aliases(name)  # type: ignore[arg-type]
        tc.start()
        with self._lock:
            self._containers[name] = tc.get_wrapped_container()

    # -- infrastructure containers -----------------------------------------------------------------

    def _toxiproxy(self) -> _Container:
        tc = (_Container(self.images["toxiproxy"]).with_kwargs(labels=self.labels("toxiproxy"))
              .with_command(["-host=0.0.0.0"]).with_loopback_port(TOXI_API, self.ports["toxiproxy"]))
        for s in self.topology.entries:
            link = self.topology.entry_link(s.name)
            tc.with_loopback_port(int(link.listen.rsplit(":", 1)[1]), self.ports[link.name])
        return tc

    def _postgres(self) -> _Container:
        e = self.endpoints
        return (_Container(self.images["postgres"]).with_kwargs(labels=self.labels("postgres"))
                .with_env("POSTGRES_USER", e.pg_user).with_env("POSTGRES_PASSWORD", e.pg_password)
                .with_env("POSTGRES_DB", e.pg_db)
                .with_command(["postgres", "-c", "fsync=off", "-c", "max_connections=200",
                               "-c", "shared_buffers=64MB"])
                .with_loopback_port(POSTGRES_PORT, self.ports["postgres"]))

    def kafka_properties(self, i: int) -> str:
        return K.broker_properties(i, self.topology, self.settings, self.ports[f"kafka-{i}"])

    def _kafka(self, i: int) -> _Container:
        tc = (_Container(self.images["kafka"]).with_kwargs(labels=self.labels("kafka", broker=str(i)))
              .with_env("KAFKA_PROPERTIES", self.kafka_properties(i))
              .with_env("KAFKA_LOG4J", K.KAFKA_LOG4J).with_env("KAFKA_CLUSTER_ID", self.cluster_id)
              .with_command(["sh", "-c", K.broker_script(self.settings.kafka_heap)])
              .with_loopback_port(KAFKA_EXTERNAL, self.ports[f"kafka-{i}"]))
        if self.settings.kafka_log_disk_mb:
            tc.with_volume_mapping(self.disk_volume(i), K.KAFKA_LOG_DIR, "rw")
        return tc

    def disk_volume(self, i: int) -> str:
        """Name of broker ``i``'s log volume (a tmpfs of ``kafka_log_disk_mb``)."""
        return f"{self.prefix}-kafka-{i}-logs"

    def _start_disks(self) -> None:
        """Create the brokers' log volumes and the ``disks`` keeper that holds them mounted all session."""
        mb = self.settings.kafka_log_disk_mb
        if not mb:
            return
        assert self.client is not None
        volumes = {}
        for i in BROKERS:
            name = self.disk_volume(i)
            self.client.volumes.create(name=name, driver="local", labels=self.labels("disk", broker=str(i)),
                                       driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={mb}m,mode=1777"})
            volumes[name] = {"bind": f"{DISKS_MOUNT}/kafka-{i}", "mode": "rw"}
        keeper = self.client.containers.run(
            self.images["nethelper"], ["sleep", "infinity"], name=f"{self.prefix}-disks", detach=True,
            labels=self.labels("helper", helper="disks"), volumes=volumes, network_mode="none",
            cap_drop=["ALL"], init=True)
        self._helpers["disks"] = keeper

    def disks_keeper(self) -> Container:
        """The helper that keeps the brokers' log volumes mounted (DiskFull fills them through it)."""
        c = self._helpers.get("disks")
        if c is None:
            raise ValueError("this environment has no broker disks (kafka_log_disk_mb=0); set "
                             "CHAOS_KAFKA_LOG_DISK_MB (e.g. 256) to give each broker its own log filesystem")
        c.reload()
        if c.labels.get(LABEL_RUN) != self.run_id:
            raise PermissionError(f"container {c.name} does not carry this run's label; refusing to touch it")
        return c

    # -- access ------------------------------------------------------------------------------------

    def container(self, name: str) -> Container:
        """The docker-py container of a node (``kafka-1``, ``postgres``, ``ingest``, ``projector-2``)."""
        c = self._containers.get(name)
        if c is None and self.deployment is not None:
            c = self.deployment.containers.get(name)
        if c is None:
            raise KeyError(f"no container named {name!r}; known: {', '.join(self.node_names())}")
        c.reload()
        if c.labels.get(LABEL_RUN) != self.run_id:
            raise PermissionError(f"container {c.name} does not carry this run's label; refusing to touch it")
        return c

    def node_names(self) -> list[str]:
        names = list(self._containers)
        if self.deployment:
            names += list(self.deployment.containers)
        return names

    def service_nodes(self, service: str) -> list[str]:
        """The running replicas of a service in the current deployment (not its second fleets)."""
        if self.deployment is None:
            return []
        return [n for n in self.topology.nodes_of(service) if n in self.deployment.containers]

    def broker_names(self) -> list[str]:
        return list(BROKER_NODES)

    def selector_nodes(self, selector: str) -> list[str]:
        """Every node a service selector (a name or a role) may name (see chaos.faults.targets)."""
        return self.topology.selector_nodes(selector)

    def collect_logs(self, dest: Path, tail: int = 5000) -> list[Path]:
        """Write every container's log of this run into ``dest`` (known secrets redacted)."""
        dest.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        if self.client is None:
            return written
        for c in self.client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}):
            path = dest / f"{c.name}.log"
            with contextlib.suppress(docker.errors.APIError):
                path.write_bytes(redact.redact_bytes(c.logs(tail=tail, timestamps=True)))
                written.append(path)
        return written

    # -- pipeline deployments ------------------------------------------------------------------------

    def deploy(self, name: str, defects: tuple[str, ...] = ()) -> Deployment:
        """Start a fresh deployment of the pipeline (own topics, groups and schema); remove the last one."""
        p = self.pipeline
        p.check_defects(defects)
        self.undeploy()
        slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower())[:40]
        tag = f"{slug}_{secrets.token_hex(3)}"
        dep = Deployment(name=name, tag=tag, topics={t.name: f"{t.name}.{tag}" for t in p.topics},
                         groups={s.name: f"{s.name}.{tag}" for s in p.services if s.consumes},
                         schema=f"exp_{tag}", defects=tuple(defects), pipeline=p)
        for t in p.topics:
            config = dict(t.config)
            for d in defects:
                config.update(p.defect(d).topic_config.get(t.name, {}))
            self.create_topic(dep.topics[t.name], t.partitions or self.settings.topic_partitions, t.replication,
                              config)
        self._setup_schema(dep)
        self.toxiproxy.reset()
        self.deployment = dep
        specs = {node: self._service_container(dep, s, node, j)
                 for s in p.services for j, node in enumerate(self.topology.nodes_of(s.name), start=1)}
        self._start_services(dep, specs)
        self._wait_ready(dep, {s.name: self.topology.nodes_of(s.name) for s in p.services})
        return dep

    def _start_services(self, dep: Deployment, specs: dict[str, _Container]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
            futures = {n: pool.submit(self._start_service, n, tc) for n, tc in specs.items()}
            for n, f in futures.items():
                dep.containers[n] = f.result()

    def _wait_ready(self, dep: Deployment, nodes: dict[str, list[str]], groups: dict[str, str] | None = None) -> None:
        bound, every = self.settings.pipeline_ready_timeout_s, self.settings.poll_interval_s
        names = [n for ns in nodes.values() for n in ns]

        def alive() -> None:
            self.fail_if_exited(names)

        target = dep if groups is None else _with_groups(dep, groups)
        for svc_name, svc_nodes in nodes.items():
            s = self.pipeline.service(svc_name)
            for check in s.ready:
                def ready(s: Service = s, check: Readiness = check, svc_nodes: list[str] = svc_nodes) -> bool:
                    return readiness.probe(self, target, s, check, svc_nodes)

                wait_until(ready, bound, f"{', '.join(svc_nodes)}: {check.describe()}", every, abort=alive)

    def undeploy(self) -> None:
        dep, self.deployment = self.deployment, None
        if dep is None:
            return
        for c in dep.containers.values():
            with contextlib.suppress(docker.errors.APIError):
                c.stop(timeout=self.settings.container_stop_timeout_s)
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)

    def _setup_schema(self, dep: Deployment) -> None:
        with psycopg.connect(self.endpoints.pg_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(dep.schema)))
            setup = self.pipeline.database.setup_sql.strip()
            if setup:
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(dep.schema)))
                    conn.execute(setup.encode())

    def _start_service(self, name: str, tc: _Container) -> Container:
        tc.with_name(f"{self.prefix}-{name}").with_network(self.network)  # type: ignore[arg-type]
        service = self.topology.service_of(name)
        aliases = [name] + ([service.name] if service is not None and service.name != name
                            and not name.startswith(f"{service.name}-fleet") else [])
        tc.with_network_aliases(*aliases)
        tc.start()
        return tc.get_wrapped_container()

    def service_context(self, dep: Deployment, s: Service, node: str, replica: int,
                        group: str | None = None) -> ServiceContext:
        e, t = self.endpoints, self.topology
        pg_host, pg_port = "postgres", POSTGRES_PORT
        if "postgres" in s.talks_to:
            pg_host, port = t.proxy_for(s.name, "postgres").split(":")
            pg_port = int(port)
        return ServiceContext(
            kafka=t.bootstrap_for(s.name) if "kafka" in s.talks_to else "",
            postgres_host=pg_host, postgres_port=pg_port, postgres_user=e.pg_user, postgres_password=e.pg_password,
            postgres_db=e.pg_db, schema=dep.schema, topic=dep.topics,
            group=group or dep.groups.get(s.name, f"{s.name}.{dep.tag}"), node=node, replica=replica,
            defects=",".join(d for d in dep.defects if dep.pipeline.defect(d).in_services), deployment=dep.tag,
            service={d: t.proxy_for(s.name, d) for d in s.talks_to if d not in ("kafka", "postgres")},
            port=s.port, settings=self.settings)

    def _service_container(self, dep: Deployment, s: Service, node: str, replica: int,
                           group: str | None = None) -> _Container:
        ctx = self.service_context(dep, s, node, replica, group)
        try:
            env = {k: ctx.render(v) for k, v in s.env.items()}
        except (KeyError, AttributeError, IndexError) as exc:
            raise ValueError(f"service {s.name}: environment template: {exc}") from None
        image = self.images.service_image(s.image)
        tc = _Container(image).with_kwargs(labels=self.labels("service", **{LABEL_DEPLOYMENT: dep.name,
                                                                            LABEL_SERVICE: s.name}))
        tc.with_envs(**env)
        if s.command:
            tc.with_command(list(s.command))
        return tc

    def start_fleet(self, service: str, fleet: str, replicas: int) -> list[str]:
        """Start ``replicas`` more replicas of a consuming ``service`` in their own consumer group
        (``<group>.<fleet>``, from the earliest offset) writing into the same schema; returns their node
        names (``<service>-<fleet>-<j>``). They belong to the deployment: ``stop_nodes`` or ``undeploy``
        removes them."""
        dep = self.deployment
        if dep is None:
            raise ValueError("a second fleet needs a deployed pipeline; call env.deploy(name) first")
        s = self.pipeline.service(service)
        if not s.consumes:
            raise ValueError(f"a second fleet of {service} makes sense only for a consuming service")
        if not fleet.isidentifier():
            raise ValueError(f"fleet name {fleet!r} must be a plain identifier")
        group = f"{dep.groups[service]}.{fleet}"
        nodes = [f"{service}-{fleet}-{j}" for j in range(1, replicas + 1)]
        for name in nodes:
            if name in dep.containers:
                raise ValueError(f"{name} is already running")
        specs = {n: self._service_container(dep, s, n, j, group=group) for j, n in enumerate(nodes, start=1)}
        self._start_services(dep, specs)
        self._wait_ready(dep, {service: nodes}, groups={service: group})
        return nodes

    def stop_nodes(self, names: list[str]) -> None:
        """Stop and remove deployment containers started by ``start_fleet``."""
        dep = self.deployment
        for name in names:
            c = dep.containers.pop(name, None) if dep else None
            if c is None:
                continue
            with contextlib.suppress(docker.errors.APIError):
                c.stop(timeout=self.settings.container_stop_timeout_s)
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)

    def create_topic(self, topic: str, partitions: int, replication: int, config: dict[str, str]) -> None:
        futures = self.admin().create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=replication, config=config)],
            operation_timeout=30, request_timeout=30)
        futures[topic].result(timeout=self.settings.env_start_timeout_s)
        wait_until(lambda: self._topic_has_leaders(topic, partitions), self.settings.env_start_timeout_s,
                   f"leaders for every partition of {topic}", self.settings.poll_interval_s)

    def _topic_has_leaders(self, topic: str, partitions: int) -> bool:
        md = self.admin().list_topics(topic, timeout=3).topics.get(topic)
        return bool(md and not md.error and len(md.partitions) == partitions
                    and all(p.leader >= 0 for p in md.partitions.values()))

    def group_members(self, group: str) -> int:
        """Members of ``group`` that have partitions assigned."""
        # The result bound exceeds the request bound: librdkafka must time the request out itself, never
        # have the handle torn down under an outstanding group request (librdkafka issue 4605).
        fut = self.admin().describe_consumer_groups([group], request_timeout=10)[group]
        desc = fut.result(timeout=20)
        return sum(1 for m in desc.members if m.assignment and m.assignment.topic_partitions)

    def wait_recovered(self) -> None:
        """After a heal: every node running, all brokers registered, the topics fully replicated again."""
        s = self.settings

        def nodes_running() -> bool:
            return all(self.container(name).status == "running" for name in self.node_names())

        wait_until(nodes_running, s.env_start_timeout_s, "every node to run again", s.poll_interval_s)
        wait_until(self._kafka_ready, s.env_start_timeout_s, "all brokers to register again", s.poll_interval_s)
        if self.deployment is not None:
            for topic in self.deployment.topics.values():
                wait_until(lambda topic=topic: self.fully_replicated(topic), s.env_start_timeout_s,  # type: ignore[misc]
                           f"every partition of {topic} back to a full ISR", s.poll_interval_s)

    def fully_replicated(self, topic: str) -> bool:
        md = self.admin().list_topics(topic, timeout=3).topics[topic]
        return all(len(p.isrs) == len(p.replicas) and p.leader >= 0 for p in md.partitions.values())

    # -- Kafka introspection (EXTERNAL listener, no toxics) --------------------------------------------

    def admin(self) -> AdminClient:
        """One admin client per environment, on the EXTERNAL listener (no toxics)."""
        if self._admin is None:
            self._admin = K.admin_client(self.endpoints.kafka_external)
        return self._admin

    def _kafka_ready(self) -> bool:
        md = self.admin().list_topics(timeout=3)
        return len(md.brokers) == len(BROKERS) and md.controller_id in BROKERS

    def partition_leader(self, topic: str, partition: int) -> int:
        md = self.admin().list_topics(topic, timeout=5)
        return int(md.topics[topic].partitions[partition].leader)

    def partition_isr(self, topic: str, partition: int) -> list[int]:
        md = self.admin().list_topics(topic, timeout=5)
        return list(md.topics[topic].partitions[partition].isrs)

    def quorum_state(self, broker: str) -> dict[str, Any]:
        """The KRaft quorum state as ``broker`` last wrote it (``leaderId``, ``leaderEpoch``, ...)."""
        out = self.exec_checked(self.container(broker), ["cat", K.QUORUM_STATE], f"reading {K.QUORUM_STATE}")
        return dict(json.loads(out))

    def active_controller(self) -> int:
        """Node id of the active KRaft controller (the quorum leader).

        The Metadata response's controller id is not it under KRaft (brokers hand clients a random live
        broker), so this reads each running broker's ``quorum-state`` file and takes the leader of the
        highest epoch (a partitioned node may hold a stale view)."""
        views: list[tuple[int, int]] = []
        for b in self.broker_names():
            try:
                if self.container(b).status != "running":
                    continue
                st = self.quorum_state(b)
            except Exception as exc:
                log.debug("quorum state of %s unreadable: %s", b, exc)
                continue
            leader, epoch = int(st.get("leaderId", -1)), int(st.get("leaderEpoch", -1))
            if leader >= 0:
                views.append((epoch, leader))
        if not views:
            raise RuntimeError("no running broker knows a KRaft quorum leader")
        return max(views)[1]

    def broker_metadata(self, broker: int, topic: str | None = None, timeout_s: float = 3.0) -> K.BrokerView:
        """What ``broker`` itself says (see :func:`chaos.env.kafka.request_metadata`)."""
        host, port = self.endpoints.kafka_external_by_broker[broker].rsplit(":", 1)
        return K.request_metadata(host, int(port), topic, timeout_s, broker)

    def coordinator(self, key: str, kind: str = "transaction") -> int:
        """The broker coordinating a transactional id (``kind="transaction"``) or a consumer group, as the
        first answering broker says."""
        errors = []
        for b in BROKERS:
            host, port = self.endpoints.kafka_external_by_broker[b].rsplit(":", 1)
            try:
                return K.find_coordinator(host, int(port), key, kind, 3.0)
            except (OSError, ValueError) as exc:
                errors.append(f"broker {b}: {exc}")
        raise RuntimeError(f"no broker named the coordinator of {kind} {key!r}: {'; '.join(errors)}")

    def open_transactions(self, pattern: str = "*") -> list[str]:
        """The transactional ids matching the glob ``pattern`` whose transaction is open (``Ongoing``: records
        may be in the log, not yet committed or aborted), asked of every broker (each names the transactions it
        coordinates); a broker that does not answer (killed, paused, cut off) is passed over."""
        found = []
        for b in BROKERS:
            host, port = self.endpoints.kafka_external_by_broker[b].rsplit(":", 1)
            try:
                listed = K.list_transactions(host, int(port), ("Ongoing",), 1.0)
            except (OSError, ValueError) as exc:
                log.debug("broker %s listed no transactions: %s", b, exc)
                continue
            found += [tid for tid, _ in listed if fnmatch.fnmatchcase(tid, pattern)]
        return sorted(found)

    def topic_metadata(self, topic: str, avoid: tuple[int, ...] = (), timeout_s: float | None = None) -> K.TopicView:
        """``topic``'s partitions (leader, ISR) as the first answering broker outside ``avoid`` sees them.
        Bounded by ``fault_step_timeout_s``."""
        bound = self.settings.fault_step_timeout_s if timeout_s is None else timeout_s
        allowed = [b for b in BROKERS if b not in avoid]

        def ask() -> K.TopicView | None:
            for b in allowed:
                try:
                    view = self.broker_metadata(b, topic)
                except (OSError, ValueError) as exc:
                    log.debug("metadata from broker %d: %s", b, exc)
                    continue
                if view.topic is not None and view.topic.error == 0:
                    return view.topic
            return None

        return wait_until(ask, bound, f"metadata of {topic} from a broker outside {list(avoid)}",
                          self.settings.poll_interval_s / 2)

    # -- fault helpers ------------------------------------------------------------------------------

    def exec_checked(self, container: Container, cmd: list[str], what: str) -> str:
        """Run ``cmd`` in a running container; its output, or RuntimeError naming ``what`` on failure."""
        result = container.exec_run(cmd, demux=False)
        out = (result.output or b"").decode(errors="replace")
        if result.exit_code != 0:
            raise RuntimeError(f"{what} failed in {container.name} (exit {result.exit_code}): {out.strip()[-500:]}")
        return out

    def _helper_kwargs(self, node: str, purpose: str) -> dict[str, Any]:
        target = self.container(node)  # refuses anything without this run's label
        if target.status not in ("running", "paused"):
            raise RuntimeError(f"cannot reach the network namespace of {node}: it is {target.status}")
        return {"network_mode": f"container:{target.id}", "cap_drop": ["ALL"], "cap_add": ["NET_ADMIN"],
                "labels": self.labels("helper", helper=purpose, target=node), "init": True}

    def run_helper(self, node: str, script: str, *, purpose: str = "net") -> str:
        """Run ``sh -c script`` in ``node``'s network namespace with only NET_ADMIN; its output.

        The helper container carries the run's labels and is removed afterwards; the run is bounded by
        ``helper_timeout_s``. RuntimeError with the output when the script fails."""
        assert self.client is not None
        c = self.client.containers.run(self.images["nethelper"], ["sh", "-c", script], detach=True,
                                       name=f"{self.prefix}-{purpose}-{node}-{secrets.token_hex(3)}",
                                       **self._helper_kwargs(node, purpose))
        try:
            try:
                status = c.wait(timeout=self.settings.helper_timeout_s)
            except Exception as exc:  # requests' ReadTimeout / ConnectionError
                raise TimeoutError(f"helper on {node} did not finish within {self.settings.helper_timeout_s:.0f} s "
                                   f"(helper_timeout_s): {script[:200]}") from exc
            out = c.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        if status.get("StatusCode") != 0:
            raise RuntimeError(f"helper on {node} failed (exit {status.get('StatusCode')}): {out.strip()[-800:]}")
        return out

    def start_helper(self, node: str, command: list[str], *, purpose: str, ready: str | None = None) -> Container:
        """Start a long-running helper in ``node``'s network namespace; wait for ``ready`` in its output."""
        assert self.client is not None
        c = self.client.containers.run(self.images["nethelper"], command, detach=True,
                                       name=f"{self.prefix}-{purpose}-{node}-{secrets.token_hex(3)}",
                                       **self._helper_kwargs(node, purpose))
        if ready:
            def is_ready() -> bool:
                c.reload()
                logs = c.logs().decode(errors="replace")
                if c.status == "exited":
                    raise RuntimeError(f"helper {c.name} exited: {logs.strip()[-500:]}")
                return ready in logs

            try:
                wait_until(is_ready, self.settings.helper_timeout_s, f"helper {c.name} to be ready",
                           self.settings.poll_interval_s / 2)
            except BaseException:
                self.stop_helper(c)
                raise
        return c

    def stop_helper(self, c: Container) -> str:
        """Stop (SIGTERM, then the stop timeout) and remove a helper; returns its output. Idempotent."""
        out = ""
        with contextlib.suppress(docker.errors.APIError):
            c.stop(timeout=self.settings.container_stop_timeout_s)
        with contextlib.suppress(docker.errors.APIError):
            out = c.logs().decode(errors="replace")
        with contextlib.suppress(docker.errors.APIError):
            c.remove(force=True)
        return out

    # -- addresses ----------------------------------------------------------------------------------

    def node_ip(self, name: str) -> str | None:
        """``name``'s IPv4 address on the run's network, or None when it has none (not running)."""
        c = self.container(name)
        nets = c.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
        return (nets.get(self.prefix) or {}).get("IPAddress") or None

    def node_ips(self) -> dict[str, str]:
        """Every node's address on the run's network (nodes that are not running are left out)."""
        out = {}
        for name in self.node_names():
            ip = self.node_ip(name)
            if ip:
                out[name] = ip
        return out

    def gateway_ip(self) -> str:
        """The network's gateway: the host side (published ports, the test process's own traffic)."""
        assert self.client is not None
        net = self.client.networks.get(self.prefix)
        return str(net.attrs["IPAM"]["Config"][0]["Gateway"])

    # -- readiness of the infrastructure ------------------------------------------------------------

    def _postgres_ready(self) -> bool:
        with psycopg.connect(self.endpoints.pg_conninfo(), autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True

    def describe(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "pipeline": self.pipeline.name, "images": self.images.refs,
                "image_source": self.images.source, "ports": self.ports, "start_s": self.started_s}


def _with_groups(dep: Deployment, groups: dict[str, str]) -> Deployment:
    """A view of ``dep`` whose consumer groups are ``groups`` (a second fleet's readiness)."""
    return Deployment(name=dep.name, tag=dep.tag, topics=dep.topics, groups={**dep.groups, **groups},
                      schema=dep.schema, defects=dep.defects, pipeline=dep.pipeline, containers=dep.containers)


__all__ = ["LABEL_SERVICE", "Deployment", "Endpoints", "Environment", "kraft_cluster_id"]
_ = (LABEL_OWNER,)
