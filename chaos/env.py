"""Starts and stops the topology, hands out endpoints, and labels everything it owns.

Topology (one private network per session; every hop a fault may touch goes through Toxiproxy)::

    host --grpc--> [toxiproxy: grpc] --> ingest --[toxiproxy: ingest-kafka-i]--> kafka-i (listener INGEST)
    projector-j --[toxiproxy: projector-kafka-i]--> kafka-i (listener PROJECTOR)
    projector-j --[toxiproxy: projector-pg]--> postgres;  ingest --[toxiproxy: ingest-pg]--> postgres
    host --verify--> kafka-i EXTERNAL listener (127.0.0.1:<port i>), postgres (127.0.0.1:<port>)

Each broker has five listeners: CONTROLLER (quorum), INTERNAL (replication), INGEST and PROJECTOR
(advertised as the address of that client's own proxy for this broker, so a toxic on one proxy hits
exactly one client->broker link), and EXTERNAL (advertised as a fixed loopback port of the host,
published on 127.0.0.1 only, used by the test process for admin and verification without toxics).

Everything carries ``org.pipeline-chaos.run=<run id>`` and the owner's host and pid. At start a sweep
removes what earlier runs on this host left behind when their owner process is gone. ``stop()``
removes every container, volume and network of the run, whatever state they are in. An environment
started with ``keep=True`` (``gameday up``) also carries ``org.pipeline-chaos.keep``: the sweep leaves it
alone although its owner has exited, and later processes reach it with ``Environment.attach``.

Each broker's log dir is its own small filesystem (``kafka_log_disk_mb``, default 256 MB) so that the
DiskFull fault can fill it: a labelled tmpfs volume per broker, mounted at the log dir. A tmpfs volume
is unmounted (and its content lost) when the last container using it stops, which would wipe a broker
on every kill or restart; so one helper container, ``disks`` (role ``helper``), mounts all three
volumes and runs for the whole session, keeping them mounted while brokers die and come back. This
needs no root on the host and no host mount to clean up (a host tmpfs per broker would): removing
the run's containers and then its labelled volumes frees everything, and the start-up sweep does the
same for runs whose owner is gone.

Fault helpers (``run_helper``, ``start_helper``) are short-lived containers of the ``nethelper`` image
that share a target's network namespace (``network_mode=container:<id>``) with only CAP_NET_ADMIN,
carry the run's labels and are removed after use.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import psycopg
from confluent_kafka.admin import AdminClient, NewTopic
from docker.models.containers import Container
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from chaos.config import Settings
from chaos.images import ImageSet
from chaos.toxiproxy_client import ToxiproxyClient

log = logging.getLogger("chaos.env")

LABEL_RUN = "org.pipeline-chaos.run"
LABEL_ROLE = "org.pipeline-chaos.role"
LABEL_OWNER = "org.pipeline-chaos.owner"  # "<hostname>:<pid>"
LABEL_DEPLOYMENT = "org.pipeline-chaos.deployment"
# Set on everything of an environment kept alive on purpose (``gameday up``): the start-up sweep of other
# runs leaves it alone although its owner process is gone; ``gameday down`` (``stop``) removes it.
LABEL_KEEP = "org.pipeline-chaos.keep"

BROKERS = (1, 2, 3)
GRPC_PORT = 50051
TOXI_API = 8474
TOXI_GRPC_LISTEN = 8666
KAFKA_INTERNAL, KAFKA_CONTROLLER, KAFKA_INGEST, KAFKA_PROJECTOR, KAFKA_EXTERNAL = 9092, 9093, 9094, 9095, 9096
INGEST_KAFKA_PROXY = 19100  # + broker id
PROJECTOR_KAFKA_PROXY = 19200  # + broker id
PROJECTOR_PG_PROXY = 15432
INGEST_PG_PROXY = 15433
KAFKA_LOG_DIR = "/var/tmp/kafka-logs"
DISKS_MOUNT = "/disks"  # where the ``disks`` keeper mounts broker i's log volume: /disks/kafka-<i>
QUORUM_STATE = f"{KAFKA_LOG_DIR}/__cluster_metadata-0/quorum-state"
EXIT_LOG_LINES = 20  # log lines quoted when a container exits while the environment starts

# testcontainers' reaper image cannot be pulled on air-gapped machines: cleanup by label is ours.
testcontainers_config.ryuk_disabled = True

T = TypeVar("T")


class EnvironmentError_(RuntimeError):
    """The environment cannot start; the message says what to do."""


def wait_until(cond: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.2, *,
               abort: Callable[[], None] | None = None) -> T:
    """Poll ``cond`` until it returns a truthy value; raise TimeoutError naming ``what`` after ``timeout_s``.

    Exceptions from ``cond`` count as "not yet" (the last one is named on timeout). ``abort`` is called
    before each poll and its exceptions propagate at once: it says when waiting on is pointless (a
    container that should answer has exited), so the error names the cause within one interval."""
    deadline = time.monotonic() + timeout_s
    last_exc: BaseException | None = None
    while True:
        if abort is not None:
            abort()
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
        time.sleep(interval_s)


def connect_engine(settings: Settings) -> docker.DockerClient:
    """A client for the container engine, or one clear error saying how to get one."""
    try:
        client = docker.from_env(timeout=int(settings.docker_timeout_s))
        client.ping()
        return client
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise EnvironmentError_(
            f"no container engine answers at {where} ({exc.__class__.__name__}). Run `make setup` "
            "(installs Debian's docker.io and starts dockerd when you are root), or start your engine "
            "and set DOCKER_HOST."
        ) from None


def kafka_client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """Config for the test process's own Kafka clients: quiet, bounded, IPv4 loopback."""
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, "broker.address.family": "v4",
            "log.connection.close": False, "logger": logging.getLogger("chaos.kafka.client"), **extra}


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def sweep(client: docker.DockerClient, *, run_id: str | None = None, only_orphans: bool = True) -> int:
    """Remove containers and networks of earlier runs whose owner process is gone (or of ``run_id``)."""
    filters = {"label": f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN}
    removed = 0
    for c in client.containers.list(all=True, filters=filters):
        if only_orphans and not run_id and (_owner_alive(c.labels.get(LABEL_OWNER, "")) or LABEL_KEEP in c.labels):
            continue
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True, v=True)
            removed += 1
    for n in client.networks.list(filters=filters):
        labels = n.attrs.get("Labels") or {}
        if only_orphans and not run_id and (_owner_alive(labels.get(LABEL_OWNER, "")) or LABEL_KEEP in labels):
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            n.remove()
            removed += 1
    # Volumes last: a volume in use by a container cannot be removed.
    for v in client.volumes.list(filters=filters):
        labels = v.attrs.get("Labels") or {}
        if only_orphans and not run_id and (_owner_alive(labels.get(LABEL_OWNER, "")) or LABEL_KEEP in labels):
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            v.remove(force=True)
            removed += 1
    return removed


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
    grpc: str  # host:port of the gRPC entry point, through Toxiproxy
    toxiproxy_api: tuple[str, int]
    kafka_external: str  # bootstrap list for the test process (no toxics)
    kafka_external_by_broker: dict[int, str]
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_db: str

    def pg_conninfo(self, schema: str | None = None) -> str:
        opts = f" options='-c search_path={schema}'" if schema else ""
        return (f"host={self.pg_host} port={self.pg_port} user={self.pg_user} password={self.pg_password} "
                f"dbname={self.pg_db} connect_timeout=5{opts}")


@dataclass(frozen=True)
class Link:
    """A client->server hop through Toxiproxy; faults name links."""

    name: str
    listen: str
    upstream: str


@dataclass
class Deployment:
    """One deployment of the pipeline services for one experiment (own topic, group and schema)."""

    name: str
    topic: str
    group: str
    schema: str
    defects: tuple[str, ...]
    containers: dict[str, Container] = field(default_factory=dict)


class Environment:
    """The whole topology for one session. Use as a context manager or call start()/stop()."""

    def __init__(self, settings: Settings, images: ImageSet, run_id: str | None = None, *,
                 keep: bool = False) -> None:
        self.settings = settings
        self.images = images
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
        self.ports = {
            "grpc": free_loopback_port(), "toxiproxy": free_loopback_port(), "postgres": free_loopback_port(),
            **{f"kafka-{i}": free_loopback_port() for i in BROKERS},
        }
        self.endpoints = self._endpoints()
        self.toxiproxy = ToxiproxyClient("127.0.0.1", self.ports["toxiproxy"], settings.toxiproxy_api_timeout_s)
        self.links: dict[str, Link] = self._links()
        self.deployment: Deployment | None = None
        self._admin: AdminClient | None = None
        self.started_s: float | None = None

    def _endpoints(self) -> Endpoints:
        return Endpoints(
            grpc=f"127.0.0.1:{self.ports['grpc']}",
            toxiproxy_api=("127.0.0.1", self.ports["toxiproxy"]),
            kafka_external=",".join(f"127.0.0.1:{self.ports[f'kafka-{i}']}" for i in BROKERS),
            kafka_external_by_broker={i: f"127.0.0.1:{self.ports[f'kafka-{i}']}" for i in BROKERS},
            pg_host="127.0.0.1", pg_port=self.ports["postgres"], pg_user="chaos",
            pg_password=self.pg_password, pg_db="pipeline",
        )

    @classmethod
    def attach(cls, settings: Settings, images: ImageSet, run_id: str, *, ports: dict[str, int], pg_password: str,
               cluster_id: str, deployment: Deployment | None = None) -> Environment:
        """An environment kept running by another process (``gameday up``), found by its run id.

        Its containers are looked up by label; ``deployment`` (name, topic, group, schema, defects) is the
        pipeline deployed in it, whose containers are found by their deployment label. Whatever this
        process starts in it (deployments, helpers) carries the keep label too."""
        env = cls(settings, images, run_id=run_id, keep=True)
        env.ports, env.pg_password, env.cluster_id = dict(ports), pg_password, cluster_id
        env.endpoints = env._endpoints()
        env.toxiproxy = ToxiproxyClient("127.0.0.1", env.ports["toxiproxy"], settings.toxiproxy_api_timeout_s)
        env.links = env._links()
        env.client = connect_engine(settings)
        try:
            docker_net = env.client.networks.get(env.prefix)
        except docker.errors.NotFound:
            raise EnvironmentError_(f"no environment with run id {run_id} is running (network {env.prefix} "
                                    "not found)") from None
        env.network = Network(docker_network_kw={"labels": env.labels("network")})
        env.network.name = env.prefix
        env.network._network = docker_net
        for c in env.client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}):
            node, role = c.name.removeprefix(f"{env.prefix}-"), c.labels.get(LABEL_ROLE)
            if role in ("kafka", "postgres", "toxiproxy"):
                env._containers[node] = c
            elif role == "helper" and c.labels.get("helper") == "disks":
                env._helpers["disks"] = c
            elif role in ("ingest", "projector") and deployment is not None \
                    and c.labels.get(LABEL_DEPLOYMENT) == deployment.name:
                deployment.containers[node] = c
        env.deployment = deployment
        return env

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
        for link in self.links.values():
            self.toxiproxy.create_proxy(link.name, link.listen, link.upstream)
        wait_until(self._postgres_ready, bound, "Postgres to accept connections", every, abort=alive)
        wait_until(self._kafka_ready, bound, "all three Kafka brokers to register", every, abort=alive)
        self.started_s = time.monotonic() - started
        log.info("environment %s up in %.1f s", self.run_id, self.started_s)

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

    # -- containers ----------------------------------------------------------------------------------

    def _links(self) -> dict[str, Link]:
        links = [Link("grpc", f"0.0.0.0:{TOXI_GRPC_LISTEN}", f"ingest:{GRPC_PORT}"),
                 Link("projector-pg", f"0.0.0.0:{PROJECTOR_PG_PROXY}", "postgres:5432"),
                 Link("ingest-pg", f"0.0.0.0:{INGEST_PG_PROXY}", "postgres:5432")]
        for i in BROKERS:
            links.append(Link(f"ingest-kafka-{i}", f"0.0.0.0:{INGEST_KAFKA_PROXY + i}", f"kafka-{i}:{KAFKA_INGEST}"))
            links.append(Link(f"projector-kafka-{i}", f"0.0.0.0:{PROJECTOR_KAFKA_PROXY + i}",
                              f"kafka-{i}:{KAFKA_PROJECTOR}"))
        return {link.name: link for link in links}

    def _toxiproxy(self) -> _Container:
        return (_Container(self.images["toxiproxy"]).with_kwargs(labels=self.labels("toxiproxy"))
                .with_command(["-host=0.0.0.0"])
                .with_loopback_port(TOXI_API, self.ports["toxiproxy"])
                .with_loopback_port(TOXI_GRPC_LISTEN, self.ports["grpc"]))

    def _postgres(self) -> _Container:
        e = self.endpoints
        return (_Container(self.images["postgres"]).with_kwargs(labels=self.labels("postgres"))
                .with_env("POSTGRES_USER", e.pg_user).with_env("POSTGRES_PASSWORD", e.pg_password)
                .with_env("POSTGRES_DB", e.pg_db)
                .with_command(["postgres", "-c", "fsync=off", "-c", "max_connections=200",
                               "-c", "shared_buffers=64MB"])
                .with_loopback_port(5432, self.ports["postgres"]))

    def kafka_properties(self, i: int) -> str:
        s = self.settings
        voters = ",".join(f"{b}@kafka-{b}:{KAFKA_CONTROLLER}" for b in BROKERS)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(i),
            "controller.quorum.voters": voters,
            "listeners": (f"INTERNAL://:{KAFKA_INTERNAL},CONTROLLER://:{KAFKA_CONTROLLER},"
                          f"INGEST://:{KAFKA_INGEST},PROJECTOR://:{KAFKA_PROJECTOR},"
                          f"EXTERNAL://:{KAFKA_EXTERNAL}"),
            "advertised.listeners": (f"INTERNAL://kafka-{i}:{KAFKA_INTERNAL},"
                                     f"INGEST://toxiproxy:{INGEST_KAFKA_PROXY + i},"
                                     f"PROJECTOR://toxiproxy:{PROJECTOR_KAFKA_PROXY + i},"
                                     f"EXTERNAL://127.0.0.1:{self.ports[f'kafka-{i}']}"),
            "listener.security.protocol.map": ("INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,INGEST:PLAINTEXT,"
                                               "PROJECTOR:PLAINTEXT,EXTERNAL:PLAINTEXT"),
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": KAFKA_LOG_DIR,
            # Durable defaults for the correct pipeline.
            "default.replication.factor": "3",
            "min.insync.replicas": "2",
            "offsets.topic.replication.factor": "3",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.replication.factor": "3",
            "share.coordinator.state.topic.min.isr": "2",
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",
            # Test-cluster timings (see chaos.config): faster fencing, ISR shrink and group start.
            "broker.session.timeout.ms": str(s.kafka_broker_session_timeout_ms),
            "broker.heartbeat.interval.ms": str(s.kafka_broker_heartbeat_ms),
            "replica.lag.time.max.ms": str(s.kafka_replica_lag_time_max_ms),
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.check.interval.ms": "600000",
        }
        return "\n".join(f"{k}={v}" for k, v in props.items())

    def _kafka(self, i: int) -> _Container:
        heap = self.settings.kafka_heap
        script = (
            'printf "%s\\n" "$KAFKA_PROPERTIES" > /tmp/server.properties && '
            'printf "%s\\n" "$KAFKA_LOG4J" > /tmp/log4j2.properties && '
            'CP="/opt/kafka/libs/*"; LOG="-Dlog4j2.configurationFile=/tmp/log4j2.properties"; '
            'java -Xmx96m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC $LOG -cp "$CP" kafka.tools.StorageTool '
            'format -t "$KAFKA_CLUSTER_ID" -c /tmp/server.properties --ignore-formatted >/dev/null && '
            f'exec java -Xms{heap} -Xmx{heap} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError '
            '-Djava.awt.headless=true $LOG -cp "$CP" kafka.Kafka /tmp/server.properties'
        )
        tc = (_Container(self.images["kafka"]).with_kwargs(labels=self.labels("kafka", broker=str(i)))
                .with_env("KAFKA_PROPERTIES", self.kafka_properties(i))
                .with_env("KAFKA_LOG4J", KAFKA_LOG4J).with_env("KAFKA_CLUSTER_ID", self.cluster_id)
                .with_command(["sh", "-c", script])
                .with_loopback_port(KAFKA_EXTERNAL, self.ports[f"kafka-{i}"]))
        if self.settings.kafka_log_disk_mb:
            tc.with_volume_mapping(self.disk_volume(i), KAFKA_LOG_DIR, "rw")
        return tc

    # -- broker disks and fault helpers ----------------------------------------------------------------

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

    # -- addresses and roles used by faults -----------------------------------------------------------

    def node_ip(self, name: str) -> str | None:
        """``name``'s IPv4 address on the run's network, or None when it has none (not running)."""
        c = self.container(name)
        nets = c.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
        ip = (nets.get(self.prefix) or {}).get("IPAddress") or None
        return ip

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

    def broker_names(self) -> list[str]:
        return [f"kafka-{i}" for i in BROKERS]

    def quorum_state(self, broker: str) -> dict[str, Any]:
        """The KRaft quorum state as ``broker`` last wrote it (``leaderId``, ``leaderEpoch``, ...)."""
        out = self.exec_checked(self.container(broker), ["cat", QUORUM_STATE], f"reading {QUORUM_STATE}")
        return dict(json.loads(out))

    def active_controller(self) -> int:
        """Node id of the active KRaft controller (the quorum leader).

        The Metadata response's controller id is not it under KRaft (brokers hand clients a random live
        broker), so this reads each running broker's ``quorum-state`` file and takes the leader of the
        highest epoch that a majority of voters agrees on (a partitioned node may hold a stale view)."""
        views: list[tuple[int, int]] = []
        for b in self.broker_names():
            try:
                c = self.container(b)
                if c.status != "running":
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
        epoch, leader = max(views)
        agreeing = sum(1 for v in views if v == (epoch, leader))
        if agreeing < len(BROKERS) // 2 + 1 and len(views) > 1:
            log.info("active controller %d (epoch %d) is the view of %d broker(s) only", leader, epoch, agreeing)
        return leader

    def broker_metadata(self, broker: int, topic: str | None = None, timeout_s: float = 3.0) -> BrokerView:
        """What ``broker`` itself says: the live brokers it knows and, with ``topic``, each partition's
        leader and ISR. A Metadata request (v4) sent on a socket to that broker's EXTERNAL listener.

        librdkafka cannot be pinned to one broker (a client bootstrapped on broker 1 answers from
        whichever broker it likes), and a partitioned or paused broker keeps serving a stale view; this
        asks exactly the broker named. Raises OSError / ValueError when it does not answer properly."""
        host, port = self.endpoints.kafka_external_by_broker[broker].rsplit(":", 1)
        return request_metadata(host, int(port), topic, timeout_s, broker)

    def topic_metadata(self, topic: str, avoid: tuple[int, ...] = (), timeout_s: float | None = None) -> TopicView:
        """``topic``'s partitions (leader, ISR) as the first answering broker outside ``avoid`` sees them
        (a partitioned broker keeps answering with its stale view). Bounded by ``fault_step_timeout_s``."""
        bound = self.settings.fault_step_timeout_s if timeout_s is None else timeout_s
        allowed = [b for b in BROKERS if b not in avoid]

        def ask() -> TopicView | None:
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

    # -- readiness ------------------------------------------------------------------------------------

    def _postgres_ready(self) -> bool:
        with psycopg.connect(self.endpoints.pg_conninfo(), autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True

    def admin(self) -> AdminClient:
        """One admin client per environment, on the EXTERNAL listener (no toxics)."""
        if self._admin is None:
            self._admin = AdminClient(kafka_client_config(self.endpoints.kafka_external))
        return self._admin

    def _kafka_ready(self) -> bool:
        md = self.admin().list_topics(timeout=3)
        return len(md.brokers) == len(BROKERS) and md.controller_id in BROKERS

    # -- access ------------------------------------------------------------------------------------------

    def container(self, name: str) -> Container:
        """The docker-py container for a node name (``kafka-1``, ``postgres``, ``ingest``, ``projector-2``)."""
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

    def collect_logs(self, dest: Path, tail: int = 5000) -> list[Path]:
        """Write every container's log of this run into ``dest``; returns the files written."""
        dest.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        if self.client is None:
            return written
        for c in self.client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}):
            path = dest / f"{c.name}.log"
            with contextlib.suppress(docker.errors.APIError):
                path.write_bytes(c.logs(tail=tail, timestamps=True))
                written.append(path)
        return written

    # -- pipeline deployments ---------------------------------------------------------------------------

    def deploy(self, name: str, defects: tuple[str, ...] = ()) -> Deployment:
        """Start a fresh ingest and projector group on their own topic, group and schema; stop the last one."""
        self.undeploy()
        slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower())[:40]
        tag = f"{slug}_{secrets.token_hex(3)}"
        dep = Deployment(name=name, topic=f"events.{tag}", group=f"projector.{tag}", schema=f"exp_{tag}",
                         defects=tuple(defects))
        self.create_topic(dep.topic)
        self.toxiproxy.reset()
        self.deployment = dep
        specs = {"ingest": self._ingest(dep)}
        for j in range(1, self.settings.projector_replicas + 1):
            specs[f"projector-{j}"] = self._projector(dep, j)
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            futures = {n: pool.submit(self._start_service, n, tc) for n, tc in specs.items()}
            for n, f in futures.items():
                dep.containers[n] = f.result()
        bound = self.settings.pipeline_ready_timeout_s

        def alive() -> None:
            self.fail_if_exited(list(dep.containers))

        wait_until(lambda: self._ingest_serving(), bound, "the ingest service to report SERVING",
                   self.settings.poll_interval_s, abort=alive)
        wait_until(lambda: self._group_members(dep.group) >= self.settings.projector_replicas, bound,
                   f"{self.settings.projector_replicas} projector(s) to join group {dep.group}",
                   self.settings.poll_interval_s, abort=alive)
        return dep

    def undeploy(self) -> None:
        dep, self.deployment = self.deployment, None
        if dep is None:
            return
        for c in dep.containers.values():
            with contextlib.suppress(docker.errors.APIError):
                c.stop(timeout=self.settings.container_stop_timeout_s)
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)

    def _start_service(self, name: str, tc: _Container) -> Container:
        tc.with_name(f"{self.prefix}-{name}").with_network(self.network).with_network_aliases(name)  # type: ignore[arg-type]
        tc.start()
        return tc.get_wrapped_container()

    def _service_env(self, dep: Deployment) -> dict[str, str]:
        return {"KAFKA_TOPIC": dep.topic, "PG_SCHEMA": dep.schema, "PIPELINE_DEFECTS": ",".join(dep.defects),
                "LOG_LEVEL": "INFO", "METRICS_PORT": "9100"}

    def _pg_dsn(self, proxy_port: int) -> str:
        e = self.endpoints
        return f"postgresql://{e.pg_user}:{e.pg_password}@toxiproxy:{proxy_port}/{e.pg_db}?connect_timeout=5"

    def _ingest(self, dep: Deployment) -> _Container:
        s = self.settings
        env = {**self._service_env(dep),
               "KAFKA_BOOTSTRAP": ",".join(f"toxiproxy:{INGEST_KAFKA_PROXY + i}" for i in BROKERS),
               "PG_DSN": self._pg_dsn(INGEST_PG_PROXY), "INGEST_LISTEN": f"0.0.0.0:{GRPC_PORT}",
               "PRODUCER_DELIVERY_TIMEOUT_MS": str(s.producer_delivery_timeout_ms),
               "PRODUCER_REQUEST_TIMEOUT_MS": str(s.producer_request_timeout_ms)}
        tc = _Container(self.images["pipeline"]).with_kwargs(
            labels=self.labels("ingest", **{LABEL_DEPLOYMENT: dep.name}))
        tc.with_envs(**env).with_command(["python", "-m", "refpipe.ingest"])
        return tc

    def start_projector_fleet(self, fleet: str, replicas: int) -> list[str]:
        """Start ``replicas`` more projectors of the deployment in their own consumer group
        (``<group>.<fleet>``, from the earliest offset) writing into the same schema; returns their node
        names (``projector-<fleet>-<j>``). They belong to the deployment: ``stop_nodes`` or
        ``undeploy`` removes them."""
        dep = self.deployment
        if dep is None:
            raise ValueError("a second projector fleet needs a deployed pipeline; call env.deploy(name) first")
        if not fleet.isidentifier():
            raise ValueError(f"fleet name {fleet!r} must be a plain identifier")
        group = f"{dep.group}.{fleet}"
        specs = {f"projector-{fleet}-{j}": self._projector(dep, j, group=group, node=f"projector-{fleet}-{j}")
                 for j in range(1, replicas + 1)}
        for name in specs:
            if name in dep.containers:
                raise ValueError(f"{name} is already running")
        for name, tc in specs.items():
            dep.containers[name] = self._start_service(name, tc)
        wait_until(lambda: self._group_members(group) >= replicas, self.settings.pipeline_ready_timeout_s,
                   f"{replicas} projector(s) to join group {group}", self.settings.poll_interval_s)
        return list(specs)

    def stop_nodes(self, names: list[str]) -> None:
        """Stop and remove deployment containers started by ``start_projector_fleet``."""
        dep = self.deployment
        for name in names:
            c = dep.containers.pop(name, None) if dep else None
            if c is None:
                continue
            with contextlib.suppress(docker.errors.APIError):
                c.stop(timeout=self.settings.container_stop_timeout_s)
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)

    def _projector(self, dep: Deployment, j: int, group: str | None = None, node: str | None = None) -> _Container:
        s = self.settings
        env = {**self._service_env(dep),
               "KAFKA_BOOTSTRAP": ",".join(f"toxiproxy:{PROJECTOR_KAFKA_PROXY + i}" for i in BROKERS),
               "KAFKA_GROUP": group or dep.group, "PG_DSN": self._pg_dsn(PROJECTOR_PG_PROXY),
               "PROJECTOR_ID": node or f"projector-{j}",
               "CONSUMER_SESSION_TIMEOUT_MS": str(s.projector_session_timeout_ms)}
        tc = _Container(self.images["pipeline"]).with_kwargs(
            labels=self.labels("projector", **{LABEL_DEPLOYMENT: dep.name}))
        tc.with_envs(**env).with_command(["python", "-m", "refpipe.projector"])
        return tc

    def create_topic(self, topic: str) -> None:
        futures = self.admin().create_topics(
            [NewTopic(topic, num_partitions=self.settings.topic_partitions, replication_factor=3,
                      config={"min.insync.replicas": "2", "unclean.leader.election.enable": "false"})],
            operation_timeout=30, request_timeout=30)
        futures[topic].result(timeout=self.settings.env_start_timeout_s)
        wait_until(lambda: self._topic_has_leaders(topic), self.settings.env_start_timeout_s,
                   f"leaders for every partition of {topic}", self.settings.poll_interval_s)

    def _topic_has_leaders(self, topic: str) -> bool:
        md = self.admin().list_topics(topic, timeout=3).topics.get(topic)
        return bool(md and not md.error and len(md.partitions) == self.settings.topic_partitions
                    and all(p.leader >= 0 for p in md.partitions.values()))

    def _ingest_serving(self) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.endpoints.grpc) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    def _group_members(self, group: str) -> int:
        # The result bound exceeds the request bound: librdkafka must time the request out itself, never
        # have the handle torn down under an outstanding group request (librdkafka issue 4605).
        fut = self.admin().describe_consumer_groups([group], request_timeout=10)[group]
        desc = fut.result(timeout=20)
        return sum(1 for m in desc.members if m.assignment and m.assignment.topic_partitions)

    def wait_recovered(self) -> None:
        """After a heal: every node running, all brokers registered, the topic fully replicated again."""
        s = self.settings

        def nodes_running() -> bool:
            for name in self.node_names():
                c = self.container(name)
                if c.status != "running":
                    return False
            return True

        wait_until(nodes_running, s.env_start_timeout_s, "every node to run again", s.poll_interval_s)
        wait_until(self._kafka_ready, s.env_start_timeout_s, "all brokers to register again", s.poll_interval_s)
        if self.deployment is not None:
            topic = self.deployment.topic

            def replicated() -> bool:
                md = self.admin().list_topics(topic, timeout=3).topics[topic]
                return all(len(p.isrs) == len(BROKERS) and p.leader >= 0 for p in md.partitions.values())

            wait_until(replicated, s.env_start_timeout_s, f"every partition of {topic} back to a full ISR",
                       s.poll_interval_s)

    # -- Kafka metadata helpers used by faults ---------------------------------------------------------

    def partition_leader(self, topic: str, partition: int) -> int:
        md = self.admin().list_topics(topic, timeout=5)
        return int(md.topics[topic].partitions[partition].leader)

    def partition_isr(self, topic: str, partition: int) -> list[int]:
        md = self.admin().list_topics(topic, timeout=5)
        return list(md.topics[topic].partitions[partition].isrs)

    def describe(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "images": self.images.refs, "image_source": self.images.source,
                "ports": self.ports, "start_s": self.started_s}


# -- a minimal Kafka Metadata request (v4), to ask one broker exactly ------------------------------------


@dataclass(frozen=True)
class PartitionView:
    leader: int
    replicas: list[int]
    isrs: list[int]


@dataclass(frozen=True)
class TopicView:
    error: int
    partitions: dict[int, PartitionView]


@dataclass(frozen=True)
class BrokerView:
    answered_by: int
    brokers: list[int]
    controller_id: int
    topic: TopicView | None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        out = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return out

    def ints(self) -> list[int]:
        return [self.take(">i") for _ in range(max(0, self.take(">i")))]


def request_metadata(host: str, port: int, topic: str | None, timeout_s: float, broker: int = -1) -> BrokerView:
    """Send Metadata v4 for ``topic`` (or no topic) to host:port (broker id ``broker``); parse the answer."""
    client = b"chaos"
    topics = struct.pack(">i", 0) if topic is None else struct.pack(">ih", 1, len(topic.encode())) + topic.encode()
    body = struct.pack(">hhih", 3, 4, 1, len(client)) + client + topics + b"\x00"  # no auto-creation
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        r = _Reader(_recv_exact(sock, size))
    if r.take(">i") != 1:
        raise ValueError("Metadata answer with a foreign correlation id")
    r.take(">i")  # throttle
    brokers = []
    for _ in range(r.take(">i")):
        brokers.append(r.take(">i"))
        r.string()
        r.take(">i")
        r.string()
    r.string()  # cluster id
    controller = r.take(">i")
    view: TopicView | None = None
    for _ in range(r.take(">i")):
        err = r.take(">h")
        name = r.string()
        r.take(">b")  # internal
        parts = {}
        for _ in range(r.take(">i")):
            r.take(">h")
            pid = r.take(">i")
            leader = r.take(">i")
            parts[pid] = PartitionView(leader=leader, replicas=r.ints(), isrs=r.ints())
        if name == topic:
            view = TopicView(error=err, partitions=parts)
    return BrokerView(answered_by=broker, brokers=sorted(brokers), controller_id=controller, topic=view)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


KAFKA_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""
