"""The adapter API: the one place where a pipeline is described to the suite.

The suite knows a pipeline only through a :class:`Pipeline` (Jepsen's split: a client, the system's
services, a checker; testcontainers' modules for how services are described):

* **services** (:class:`Service`): image, command, environment (templated with the endpoints the suite
  assigns), replicas, which of ``kafka``, ``postgres`` and the other services each talks to (every such
  link gets its own Toxiproxy proxy, so a toxic on one hits exactly one link), the entry port that load
  goes to, readiness (:class:`GrpcHealth`, :class:`Http`, :class:`ConsumerGroup`, :class:`LogLine`), an
  optional metrics port, and roles (``entry``, ``sink``, ``stage``) that the shipped experiments name;
* **topics** (:class:`Topic`) and the **database** set-up (:class:`Database`), which the suite creates for
  each deployment (a topic ``<name>.<tag>`` and a schema ``exp_<tag>`` of their own);
* a **client** (:class:`Client`): invoke writes (and reads) and get ``ok`` / ``fail`` / ``unknown`` for
  each, from the pipeline's own error contract, with the position an acknowledgement reports;
* a **truth reader** (:class:`TruthReader`): what was applied in Postgres, and what each topic's records
  are, decoded by the adapter (JSON, Protobuf, Avro); a record it cannot decode is counted in a verdict;
* a **model** of correct final state (a pure function returning verdicts; :func:`chaos.checkers.per_key_sums`
  for a projection of per-key sums), and what the pipeline **promises** of the generic invariants;
* optional **defects** (:class:`Defect`), which drive the detection matrix, and **images** to build.

Service environments are ``str.format`` templates over :class:`ServiceContext`::

    env={"KAFKA_BOOTSTRAP": "{kafka}", "PG_DSN": "{postgres_dsn}", "KAFKA_TOPIC": "{topic[events]}",
         "KAFKA_GROUP": "{group}", "PIPELINE_DEFECTS": "{defects}", "ID": "{node}",
         "TIMEOUT_MS": "{settings.producer_delivery_timeout_ms}"}

A pipeline's services never import the suite; its adapter imports only this module (and
``chaos.checkers`` for verdicts), which the wheel exports as the public API.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chaos.checkers import AppliedRow, KafkaRecord, Verdict
from chaos.history import Outcome

if TYPE_CHECKING:
    from chaos.history import History

__all__ = [
    "ENTRY_POINT_GROUP",
    "GRPC_RECONNECT_OPTIONS",
    "ROLES",
    "AppliedRow",
    "BuildContext",
    "Client",
    "ConsumerGroup",
    "Database",
    "Defect",
    "Event",
    "GrpcClient",
    "GrpcHealth",
    "Http",
    "ImageRecipe",
    "KafkaRecord",
    "LogLine",
    "ModelInput",
    "Outcome",
    "Pipeline",
    "ReadResult",
    "Readiness",
    "Reads",
    "RecordRef",
    "Service",
    "ServiceContext",
    "Topic",
    "TruthReader",
    "UndecodableRecord",
    "Verdict",
    "WriteResult",
    "load_pipeline",
]

ENTRY_POINT_GROUP = "pipeline_chaos.pipelines"
# Roles the shipped experiments name. A service may have several; a pipeline needs one "entry" (load
# goes there) and at least one "sink" (a consumer that writes the projection to Postgres).
ROLES = {
    "entry": "takes the client's writes and acknowledges them (load goes here)",
    "sink": "consumes a topic and writes the projection to Postgres",
    "stage": "consumes a topic and produces to another (consume-transform-produce)",
}
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_TOPIC_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,180}$")


# ---------------------------------------------------------------------------------------------------
# Readiness


class Readiness:
    """Base class of the readiness checks; the environment evaluates them (``chaos.env.readiness``)."""

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class GrpcHealth(Readiness):
    """The standard gRPC health service answers SERVING for ``service`` on the entry port."""

    service: str = ""

    def describe(self) -> str:
        return f"gRPC health SERVING{f' ({self.service})' if self.service else ''}"


@dataclass(frozen=True)
class Http(Readiness):
    """``GET path`` on ``port`` (default: the metrics port, else the service's port) answers 2xx; asked from
    inside each replica's network namespace with the fault helper image (``nc``), so no port is published."""

    path: str = "/"
    port: int | None = None

    def describe(self) -> str:
        return f"HTTP GET {self.path} answers 2xx"


@dataclass(frozen=True)
class ConsumerGroup(Readiness):
    """Every replica of the service has joined its consumer group and been assigned partitions."""

    def describe(self) -> str:
        return "consumer group formed (every replica assigned)"


@dataclass(frozen=True)
class LogLine(Readiness):
    """A line matching ``pattern`` (a regular expression) appeared in the log of every replica."""

    pattern: str

    def describe(self) -> str:
        return f"log line /{self.pattern}/"


# ---------------------------------------------------------------------------------------------------
# Services, topics, database, defects, images


@dataclass(frozen=True)
class Topic:
    """A topic the pipeline uses; each deployment creates ``<name>.<tag>`` with these settings.

    ``entry``: acknowledged writes land here (the default ``LeaderOf`` topic; "lost: never reached Kafka"
    is judged on it); the first topic when none says so. ``at_most_once``: the pipeline promises each
    event at most once in this topic (an idempotent or transactional producer, read committed)."""

    name: str
    partitions: int | None = None  # None: the ``topic_partitions`` setting
    replication: int = 3
    config: Mapping[str, str] = field(default_factory=lambda: {
        "min.insync.replicas": "2", "unclean.leader.election.enable": "false"})
    entry: bool = False
    at_most_once: bool = True


@dataclass(frozen=True)
class Database:
    """The database set-up: SQL run in each deployment's own schema (``search_path`` set to it) before
    the services start; empty when the services create their tables themselves.

    ``contended_table``: the projection's table (with its key and version columns) that another writer
    would lock or update (``HoldRowLocks`` defaults to it); ``value_column``: the column of it that a
    competing writer adds to (``CompetingWriter``; its adjustments reach the model as
    :attr:`ModelInput.adjustments`)."""

    setup_sql: str = ""
    contended_table: str = ""
    key_column: str = "key"
    version_column: str = "version"
    value_column: str = ""


@dataclass(frozen=True)
class Defect:
    """A switch that turns one real, well-known bug on. Services see the names in ``{defects}`` (unless
    ``in_services`` is false: a defect of the topics' configuration only); ``topic_config`` overrides topic
    settings when the defect is on (``{"events": {"min.insync.replicas": "1"}}``). ``catches``: the
    experiments (module names without ``test_``) that must catch it."""

    name: str
    description: str
    topic_config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    catches: tuple[str, ...] = ()
    in_services: bool = True


@dataclass(frozen=True)
class BuildContext:
    """What an image recipe gets: an empty ``dir`` to fill as the build context, a ``cache_dir`` of its
    own that survives between builds (downloads), a ``log_dir`` for long outputs, a time bound, and
    ``log`` for one-line progress messages."""

    dir: Path
    cache_dir: Path
    log_dir: Path
    timeout_s: float
    log: Callable[[str], None]


@dataclass(frozen=True)
class ImageRecipe:
    """How to build one of the pipeline's images on this machine, with no container registry.

    ``prepare(ctx)`` fills the build context: a ``Dockerfile`` that starts ``ARG BASE`` / ``FROM ${BASE}``
    (the suite passes a Debian bookworm base: its own, made with debootstrap, or ``debian:bookworm-slim``
    where a registry answers) and whatever it copies. Fetch downloads on the host, not inside the build.
    ``inputs()`` lists the files whose contents decide the image's tag, so the image is rebuilt exactly
    when one of them changes. ``tools``: host commands ``prepare`` needs (``mvn``), checked before building."""

    prepare: Callable[[BuildContext], None]
    inputs: Callable[[], Sequence[Path]]
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    """One service of the pipeline (see the module docstring for the ``env`` templates).

    ``image`` is a key of :attr:`Pipeline.images` (built locally) or an image reference. ``replicas`` may
    be overridden per run (the ``replicas`` setting). ``talks_to``: ``kafka``, ``postgres`` and the names
    of other services it calls; each becomes a link ``<name>-kafka-<broker>``, ``<name>-postgres`` or
    ``<name>-<other>`` through Toxiproxy. ``port``: the port it listens on; with the ``entry`` role the
    client's load reaches it through the link ``client-<name>``. ``consumes``: the topics its consumer
    group reads (the suite waits for that group's lag to reach 0 before it reads ground truth)."""

    name: str
    image: str
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    talks_to: tuple[str, ...] = ()
    port: int | None = None
    roles: tuple[str, ...] = ()
    ready: tuple[Readiness, ...] = ()
    metrics_port: int | None = None
    consumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceContext:
    """What a service's environment templates may name (``{kafka}``, ``{topic[events]}``, ...)."""

    kafka: str  # bootstrap list through this service's own proxies
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_db: str
    schema: str
    topic: Mapping[str, str]  # logical name -> deployed name
    group: str  # this service's consumer group in this deployment
    node: str  # this replica's node name (``projector-2``)
    replica: int
    defects: str  # comma-separated names
    deployment: str  # the deployment's tag
    service: Mapping[str, str]  # other service -> host:port through this service's proxy to it
    port: int | None
    settings: Any  # chaos.config.Settings

    @property
    def postgres_dsn(self) -> str:
        return (f"postgresql://{self.postgres_user}:{self.postgres_password}@{self.postgres_host}:"
                f"{self.postgres_port}/{self.postgres_db}?connect_timeout=5")

    @property
    def postgres_jdbc(self) -> str:
        return f"jdbc:postgresql://{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"

    def render(self, template: str) -> str:
        return template.format_map(_Namespace(self))


class _Namespace(dict[str, Any]):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__()
        self.ctx = ctx

    def __missing__(self, key: str) -> Any:
        try:
            return getattr(self.ctx, key)
        except AttributeError:
            raise KeyError(f"unknown placeholder {{{key}}}; accepted: kafka, postgres_host, postgres_port, "
                           "postgres_user, postgres_password, postgres_db, postgres_dsn, postgres_jdbc, schema, "
                           "topic[<name>], group, node, replica, defects, deployment, service[<name>], port, "
                           "settings.<name>") from None


# ---------------------------------------------------------------------------------------------------
# Client and truth


@dataclass(frozen=True, slots=True)
class Event:
    """One write the workload invokes: a unique id, a key, the key's sequence number, an amount."""

    id: str
    key: str
    seq: int
    amount: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the pipeline told the client about one write, from its own error contract."""

    outcome: Outcome
    error: str | None = None
    partition: int | None = None  # the position an acknowledgement reports, where the contract gives one
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a read of one key returned: ``found`` with the key's ``value`` (the projection's total) and
    ``version`` where the read model gives them; ``outcome`` FAIL/UNKNOWN when the read itself failed."""

    outcome: Outcome
    found: bool = False
    value: int | None = None
    count: int | None = None
    version: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Reads:
    """What the pipeline's read API promises its clients; the suite checks exactly these (``docs/invariants.md``).

    ``expected(state, key)``: what a read of ``key`` returns once the pipeline has converged, from
    :meth:`TruthReader.state` (its ``outcome`` is ignored; ``found``, ``value``, ``count`` and ``version`` are
    compared where not None). ``converge``: after quiescence, a read of every key written returns that.
    ``monotonic``: a read of a key that starts after another read of it completed never returns a lower
    ``count`` or ``version`` (nor "not found" after "found"). ``staleness_s``: a read that starts more than
    this many seconds after a write to its key was acknowledged reflects it (``count`` is at least the
    number of such writes that were applied), checked while the pipeline is healthy: before the first fault,
    or throughout a run without one; None: not promised. ``count`` is the number of distinct events the
    answer reflects; a read that returns none where a promise needs it is a violation."""

    expected: Callable[[Any, str], ReadResult]
    converge: bool = True
    monotonic: bool = True
    staleness_s: float | None = None

    def __post_init__(self) -> None:
        if self.staleness_s is not None and not self.staleness_s > 0:
            raise ValueError(f"Reads.staleness_s must be positive or None, got {self.staleness_s!r}")


@runtime_checkable
class Client(Protocol):
    """A Jepsen-style client over the pipeline's entry point. One per run, used from one asyncio loop.

    ``max_batch``: events per ``write`` call at most (1: no batching). ``write`` returns one result per
    event, in order; it must not raise for a failure of the pipeline (map it to FAIL or UNKNOWN: FAIL only
    where the contract says the write was definitely not applied)."""

    max_batch: int

    async def open(self, target: str) -> None: ...

    async def write(self, events: Sequence[Event], timeout_s: float) -> Sequence[WriteResult]: ...

    async def read(self, key: str, timeout_s: float) -> ReadResult: ...

    async def close(self) -> None: ...


# gRPC's default reconnect backoff grows to 120 s: after a fault on the entry link a client would keep failing
# fast long after the heal, and the run would measure the client's backoff instead of the service.
GRPC_RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500))


class GrpcClient:
    """A :class:`Client` over one gRPC channel: the channel, the stubs and the error contract, so that an adapter
    writes only ``write`` (and ``read``, where the API has a per-key read).

    A subclass sets ``proto`` (its ``.proto`` file; stubs are generated from it at run time), ``service`` (the
    gRPC service's name: the stub is ``<service>Stub``), ``definite_failures`` (the status code names its
    contract says mean "definitely not applied") and ``max_batch``; in ``write`` it calls ``self.stub`` with
    messages of ``self.pb2`` and maps an exception with :meth:`failure`. The channel keeps gRPC's reconnect
    backoff short (:data:`GRPC_RECONNECT_OPTIONS`). The default ``read`` answers UNKNOWN (the API has no
    per-key read)."""

    proto: Path
    service: str
    definite_failures: tuple[str, ...] = ()
    max_batch: int = 1
    channel_options: tuple[tuple[str, int], ...] = GRPC_RECONNECT_OPTIONS

    def __init__(self) -> None:
        from chaos import stubs

        self.pb2, self.pb2_grpc = stubs.load(self.proto)
        self.channel: Any = None
        self.stub: Any = None

    async def open(self, target: str) -> None:
        import grpc.aio

        self.channel = grpc.aio.insecure_channel(target, options=list(self.channel_options))
        self.stub = getattr(self.pb2_grpc, f"{self.service}Stub")(self.channel)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    def failure(self, exc: BaseException) -> WriteResult:
        """An exception of a call, as the contract reads it: FAIL for a status code in ``definite_failures``,
        UNKNOWN for any other (the write may have been applied), including transport surprises."""
        import grpc.aio

        if isinstance(exc, grpc.aio.AioRpcError):
            code = exc.code().name
            return WriteResult(Outcome.FAIL if code in self.definite_failures else Outcome.UNKNOWN,
                               f"{code}: {exc.details()}"[:200])
        return WriteResult(Outcome.UNKNOWN, repr(exc)[:200])

    async def read(self, key: str, timeout_s: float) -> ReadResult:
        return ReadResult(Outcome.UNKNOWN, error=f"{type(self).__name__} has no per-key read")


@dataclass(frozen=True, slots=True)
class RecordRef:
    """What a topic's record carries, decoded by the adapter: the event's id and key."""

    event_id: str
    key: str


class UndecodableRecord(ValueError):
    """Raised by :meth:`TruthReader.decode` for a record it cannot decode; counted in a verdict."""


class Db(Protocol):
    """A read-only view of the deployment's schema (``search_path`` set to it), straight to Postgres."""

    schema: str

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class TruthReader(Protocol):
    """What the pipeline applied and what its topics hold, read after the run (and sampled during it).

    ``applied``: one :class:`AppliedRow` per application of an event's effect, ``position`` strictly
    increasing in application order (an effects table's serial id), ``source`` the record it was applied
    from where the pipeline records it. ``applied_ids`` and ``count_applied`` are cheap forms sampled
    while the run goes on. ``state`` is whatever the model checks (per-key aggregates, balances).
    ``decode`` maps one record of a topic (logical name) to its event id and key."""

    def applied(self, db: Db) -> list[AppliedRow]: ...

    def applied_ids(self, db: Db) -> set[str]: ...

    def count_applied(self, db: Db) -> int: ...

    def state(self, db: Db) -> Any: ...

    def decode(self, topic: str, key: bytes | None, value: bytes | None,
               headers: Sequence[tuple[str, bytes | None]]) -> RecordRef: ...


@dataclass(frozen=True)
class ModelInput:
    """What a model check sees: the history and the ground truth (applied rows, records per topic, the
    adapter's state, and what a competing writer committed to the projection besides the events)."""

    history: History
    applied: Sequence[AppliedRow]
    records: Mapping[str, Sequence[KafkaRecord]]
    state: Any
    adjustments: Mapping[str, int] = field(default_factory=dict)  # key -> what a CompetingWriter added


# ---------------------------------------------------------------------------------------------------
# The pipeline


@dataclass(frozen=True)
class Pipeline:
    """A pipeline as the suite sees it. See the module docstring; ``docs/adapters.md`` has a walk-through.

    ``order``: the pipeline promises per-key application in acknowledgement order (checked by ``order``).
    ``positions``: an acknowledgement reports where the record is (partition and offset of the entry topic),
    and that position must hold the event (checked by ``positions``; without it, positions are checked where
    given and their absence is no violation).
    ``reads``: what the read API (:meth:`Client.read`) promises (:class:`Reads`); None: the suite never reads.
    ``budgets``: per-pipeline values of the experiments' budgets where they must differ from the shipped
    ones (``{"convergence_s": 90}``), each with its reason in the adapter. ``settings``: setting overrides
    this pipeline needs (``{"pipeline_ready_timeout_s": 120}`` for slow-starting JVMs)."""

    name: str
    services: Sequence[Service]
    topics: Sequence[Topic]
    client: Callable[[], Client]
    truth: TruthReader
    model: Callable[[ModelInput], list[Verdict]]
    database: Database = field(default_factory=Database)
    defects: Sequence[Defect] = ()
    images: Mapping[str, ImageRecipe] = field(default_factory=dict)
    order: bool = True
    positions: bool = False
    reads: Reads | None = None
    budgets: Mapping[str, float] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        self.check()

    # -- lookups -----------------------------------------------------------------------------------

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no service {name!r}; services: {', '.join(s.name for s in self.services)}")

    def with_role(self, role: str) -> list[Service]:
        return [s for s in self.services if role in s.roles]

    @property
    def entry(self) -> Service:
        return self.with_role("entry")[0]

    @property
    def entry_topic(self) -> Topic:
        return next((t for t in self.topics if t.entry), self.topics[0])

    def defect(self, name: str) -> Defect:
        for d in self.defects:
            if d.name == name:
                return d
        raise KeyError(name)

    def check_defects(self, names: Sequence[str]) -> None:
        """ValueError naming the accepted defects when one of ``names`` is unknown."""
        known = {d.name for d in self.defects}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown defect(s) {', '.join(unknown)} for pipeline {self.name}; accepted: "
                             f"{', '.join(sorted(known)) or '(this pipeline has none)'}")

    def budget(self, name: str, default: float) -> float:
        return float(self.budgets.get(name, default))

    # -- validation ----------------------------------------------------------------------------------

    def check(self) -> None:
        """ValueError with every problem of the description, before anything is started."""
        problems: list[str] = []
        names = [s.name for s in self.services]
        if not self.services:
            problems.append("no services")
        for n in names:
            if not _NAME_RE.match(n) or n in ("kafka", "postgres", "toxiproxy", "client") or n.startswith("kafka-"):
                problems.append(f"service name {n!r}: lower-case words joined by '-', not kafka/postgres/"
                                "toxiproxy/client")
        if len(set(names)) != len(names):
            problems.append("service names repeat")
        topics = [t.name for t in self.topics]
        if not self.topics:
            problems.append("no topics")
        for topic in self.topics:
            if not _TOPIC_NAME_RE.match(topic.name):
                problems.append(f"topic name {topic.name!r} is not a valid Kafka topic name")
            if not 1 <= topic.replication <= 3:
                problems.append(f"topic {topic.name}: replication must be 1..3 (three brokers)")
        entries = self.with_role("entry")
        if len(entries) != 1:
            problems.append(f"exactly one service needs the 'entry' role (has {len(entries)})")
        elif entries[0].port is None:
            problems.append(f"entry service {entries[0].name} needs a port")
        for s in self.services:
            for r in s.roles:
                if r not in ROLES:
                    problems.append(f"service {s.name}: unknown role {r!r}; accepted: {', '.join(ROLES)}")
            for dep in s.talks_to:
                if dep not in ("kafka", "postgres") and dep not in names:
                    problems.append(f"service {s.name} talks to {dep!r}: not kafka, postgres or a service")
                if dep == s.name:
                    problems.append(f"service {s.name} talks to itself")
                if dep in names and self.service(dep).port is None:
                    problems.append(f"service {s.name} talks to {dep}, which has no port")
            for tname in s.consumes:
                if tname not in topics:
                    problems.append(f"service {s.name} consumes unknown topic {tname!r}")
            if s.consumes and "kafka" not in s.talks_to:
                problems.append(f"service {s.name} consumes topics but does not talk to kafka")
            if s.replicas < 1:
                problems.append(f"service {s.name}: replicas must be >= 1")
            if any(isinstance(r, ConsumerGroup) for r in s.ready) and not s.consumes:
                problems.append(f"service {s.name}: ConsumerGroup readiness needs `consumes`")
            if any(isinstance(r, GrpcHealth) for r in s.ready) and s.port is None:
                problems.append(f"service {s.name}: GrpcHealth readiness needs a port")
            if any(isinstance(r, GrpcHealth) for r in s.ready) and "entry" not in s.roles:
                problems.append(f"service {s.name}: GrpcHealth readiness is asked through the client's link, "
                                "so only an entry service can use it (use LogLine or Http)")
        for d in self.defects:
            for tname in d.topic_config:
                if tname not in topics:
                    problems.append(f"defect {d.name}: topic_config names unknown topic {tname!r}")
        if problems:
            raise ValueError(f"pipeline {self.name!r} is not valid: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------------
# Finding adapters


def _import(module_name: str) -> Any:
    """Import an adapter's module; when that fails, once more with the directory of the project's
    ``pyproject.toml`` (and its ``[tool.pipeline-chaos] pythonpath`` entries) on ``sys.path``, as pytest's
    ``pythonpath`` would have it: ``gameday`` and ``python -m chaos.images`` find the same adapters."""
    import sys

    from chaos.config import project_file, project_settings

    try:
        return importlib.import_module(module_name)
    except ImportError:
        f = project_file()
        if f is None:
            raise
        extra = project_settings().get("pythonpath") or ["."]
        added = [str((f.parent / p).resolve()) for p in ([extra] if isinstance(extra, str) else extra)]
        for p in reversed(added):
            if p not in sys.path:
                sys.path.insert(0, p)
        return importlib.import_module(module_name)


def load_pipeline(spec: str) -> Pipeline:
    """The Pipeline named by ``module:attr`` (an object, or a function returning one) or by the name of an
    entry point of the ``pipeline_chaos.pipelines`` group; ValueError saying what to do otherwise."""
    spec = spec.strip()
    if not spec:
        raise ValueError("no pipeline given: set --chaos-pipeline=module:attr (or CHAOS_PIPELINE, or the ini "
                         "key chaos_pipeline) to your adapter, or install a package that registers one in the "
                         f"'{ENTRY_POINT_GROUP}' entry-point group")
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = _import(module_name)
        except ImportError as exc:
            raise ValueError(f"pipeline {spec!r}: cannot import {module_name!r} ({exc}); is its directory on "
                             "sys.path (pytest's `pythonpath` ini key) or its package installed?") from None
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise ValueError(f"pipeline {spec!r}: {module_name} has no attribute {attr!r}")
    else:
        eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
        if spec not in eps:
            raise ValueError(f"no pipeline {spec!r}: give module:attr, or one of the installed entry points "
                             f"({', '.join(sorted(eps)) or 'none installed'})")
        obj = eps[spec].load()
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise ValueError(f"pipeline {spec!r} is a {type(obj).__name__}, not a chaos.adapter.Pipeline")
    return obj
