"""External targets: an environment the suite did not start, described in a TOML file.

The file says where the pipeline answers, which Toxiproxy fronts its links, how to kill, stop, start,
pause and unpause its nodes (command templates), and, in ``[safety] allow``, exactly which nodes and
links faults may touch. Everything a scenario would touch is checked against the allow-list before
anything is done (a role such as ``leader:0`` counts as every broker it could resolve to); a command
is run only on an allowed node; and a person confirms by typing ``yes`` (``--yes`` skips it)::

    name = "staging-eu"

    [endpoints]
    grpc = "10.1.2.3:50051"                       # the entry service's address (load and health)
    kafka_bootstrap = "10.1.2.4:9092"             # for probes (lag, ISR) and leader:<p> targets
    toxiproxy_api = "http://10.1.2.5:8474"        # optional: link faults need it
    postgres_dsn = "host=... dbname=..."          # optional (not used for verdicts)

    [pipeline]                                    # what the probes watch
    topic = "events"
    group = "projector"
    partitions = 6

    [toxiproxy]
    links = ["client-ingest", "ingest-kafka-1"]   # proxy names in that Toxiproxy

    [nodes]                                       # node name -> variables for the templates
    kafka-1 = { container = "kafka-1.staging" }   # brokers are named kafka-<broker id>

    [commands]                                    # {node}, {signal}, {timeout} and the node's variables
    kill = "docker kill --signal {signal} {container}"
    stop = "docker stop --time {timeout} {container}"
    start = "docker start {container}"
    pause = "docker pause {container}"
    unpause = "docker unpause {container}"
    status = "docker inspect --format {{.State.Status}} {container}"   # optional; prints running/exited/paused

    [safety]
    allow = ["kafka-2", "ingest-kafka-*"]         # globs over node and link names
    confirm = true                                # ask for a typed "yes" before running (default)

Commands are split with ``shlex`` and run without a shell, each bounded by ``gameday_command_timeout_s``.
Only the placeholders listed above are replaced; other braces (``{{.State.Status}}``) are left alone.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from chaos.config import Settings
from chaos.faults import Fault, LinkDown, Toxic
from chaos.faults import targets as T
from chaos.faults.container import ContainerFault

COMMANDS = ("kill", "stop", "start", "pause", "unpause", "status")
REQUIRED_COMMANDS = ("kill", "stop", "start", "pause", "unpause")
BUILTIN_VARS = ("node", "signal", "timeout")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP = ("name", "endpoints", "pipeline", "toxiproxy", "nodes", "commands", "safety")


class ExternalError(ValueError):
    """A bad external-target file, or a scenario that would touch something not allowed."""


@dataclass(frozen=True)
class ExternalTarget:
    name: str
    source: str
    grpc: str
    kafka_bootstrap: str = ""
    toxiproxy_api: str = ""
    postgres_dsn: str = field(default="", repr=False)  # holds a password: never printed
    topic: str = ""
    group: str = ""
    schema: str = ""
    partitions: int = 6
    links: tuple[str, ...] = ()
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()
    confirm: bool = True

    def allowed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.allow)

    def command(self, action: str, node: str, **values: Any) -> list[str]:
        """The argv of ``action`` on ``node`` (templates filled, nothing run)."""
        template = self.commands.get(action)
        if not template:
            raise ExternalError(f"{self.source}: no [commands] {action} template")
        env = {"node": node, **self.nodes.get(node, {}), **{k: str(v) for k, v in values.items()}}
        text = _PLACEHOLDER.sub(lambda m: env.get(m.group(1), m.group(0)), template)
        return shlex.split(text)

    def toxiproxy_address(self) -> tuple[str, int]:
        u = urlparse(self.toxiproxy_api)
        return (u.hostname or "127.0.0.1", u.port or 8474)


def _str(d: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    v = d.get(key, "")
    if not isinstance(v, str) or (required and not v.strip()):
        raise ExternalError(f"{where}.{key}: {'required, ' if required else ''}must be a non-empty string"
                            if required else f"{where}.{key}: must be a string")
    return v.strip()


def _check_hostport(value: str, where: str) -> None:
    for part in value.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ExternalError(f"{where}: {part!r} is not host:port")


def dsn_password(dsn: str) -> str | None:
    """The password in a libpq DSN (URL or key=value form), to register as a secret."""
    u = urlparse(dsn)
    if u.scheme and u.password:
        return u.password
    m = re.search(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    return m.group(1).strip("'") if m else None


def parse(text: str, source: str = "target") -> ExternalTarget:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExternalError(f"{source}: not valid TOML: {exc}") from None
    unknown = [k for k in doc if k not in _TOP]
    if unknown:
        raise ExternalError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(_TOP)}")
    tables = {}
    for k in _TOP[1:]:
        v = doc.get(k, {})
        if not isinstance(v, dict):
            raise ExternalError(f"{source}: [{k}] must be a table")
        tables[k] = v
    ep, pipe, toxi, nodes, cmds, safety = (tables[k] for k in _TOP[1:])
    name = doc.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise ExternalError(f"{source}: name must be a non-empty string")
    grpc = _str(ep, "grpc", f"{source}: endpoints", required=True)
    _check_hostport(grpc, f"{source}: endpoints.grpc")
    bootstrap = _str(ep, "kafka_bootstrap", f"{source}: endpoints")
    if bootstrap:
        _check_hostport(bootstrap, f"{source}: endpoints.kafka_bootstrap")
    api = _str(ep, "toxiproxy_api", f"{source}: endpoints")
    if api and urlparse(api).scheme not in ("http", "https"):
        raise ExternalError(f"{source}: endpoints.toxiproxy_api: {api!r} is not an http(s) URL")
    links = toxi.get("links", [])
    if not isinstance(links, list) or not all(isinstance(x, str) and x for x in links):
        raise ExternalError(f"{source}: toxiproxy.links must be a list of proxy names")
    if links and not api:
        raise ExternalError(f"{source}: toxiproxy.links needs endpoints.toxiproxy_api")
    node_vars: dict[str, dict[str, str]] = {}
    for n, v in nodes.items():
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise ExternalError(f"{source}: nodes.{n} must be a table of strings (template variables)")
        node_vars[n] = dict(v)
    bad_cmd = [k for k in cmds if k not in COMMANDS]
    if bad_cmd:
        raise ExternalError(f"{source}: unknown command(s) {', '.join(bad_cmd)}; accepted: {', '.join(COMMANDS)}")
    if node_vars:
        missing = [c for c in REQUIRED_COMMANDS if not cmds.get(c)]
        if missing:
            raise ExternalError(f"{source}: [nodes] needs the command templates {', '.join(missing)} in [commands]")
    for action, template in cmds.items():
        if not isinstance(template, str) or not template.strip():
            raise ExternalError(f"{source}: commands.{action} must be a non-empty string")
        for n, v in node_vars.items():
            for var in _PLACEHOLDER.findall(template):
                if var not in BUILTIN_VARS and var not in v:
                    raise ExternalError(f"{source}: commands.{action} uses {{{var}}} but nodes.{n} does not "
                                        f"define {var}")
    allow = safety.get("allow")
    if not isinstance(allow, list) or not all(isinstance(x, str) and x for x in allow):
        raise ExternalError(f"{source}: [safety] allow is required: a list of the node and link names (globs) "
                            "that faults may touch, e.g. allow = [\"kafka-2\", \"ingest-kafka-*\"]")
    confirm = safety.get("confirm", True)
    if not isinstance(confirm, bool):
        raise ExternalError(f"{source}: safety.confirm must be true or false")
    parts = pipe.get("partitions", 6)
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ExternalError(f"{source}: pipeline.partitions must be a positive integer")
    from chaos.redact import register

    dsn = _str(ep, "postgres_dsn", f"{source}: endpoints")
    register(dsn_password(dsn))
    return ExternalTarget(
        name=name, source=source, grpc=grpc, kafka_bootstrap=bootstrap, toxiproxy_api=api,
        postgres_dsn=dsn, topic=_str(pipe, "topic", f"{source}: pipeline"),
        group=_str(pipe, "group", f"{source}: pipeline"), schema=_str(pipe, "schema", f"{source}: pipeline"),
        partitions=parts, links=tuple(links), nodes=node_vars, commands=dict(cmds), allow=tuple(allow),
        confirm=confirm)


def load(path: Path) -> ExternalTarget:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExternalError(f"{path}: cannot be read: {exc}") from None
    return parse(text, str(path))


# -- what a scenario would touch ---------------------------------------------------------------------


class ExternalView:
    """The names of an external target, for the one role interpreter (:mod:`chaos.faults.targets`): its
    brokers are its ``kafka-<id>`` nodes; a service selector names the nodes called ``<selector>`` or
    ``<selector>-<n>``."""

    def __init__(self, ext: ExternalTarget) -> None:
        self.ext = ext

    def broker_names(self) -> list[str]:
        return sorted(n for n in self.ext.nodes if re.fullmatch(r"kafka-\d+", n))

    def selector_nodes(self, selector: str) -> list[str]:
        return sorted(n for n in self.ext.nodes if n == selector or re.fullmatch(rf"{re.escape(selector)}-\d+", n))


def _nodes_of(tgt: T.Target, ext: ExternalTarget) -> list[str]:
    if isinstance(tgt, T.LeaderOf) and not (ext.kafka_bootstrap and (tgt.topic or ext.topic)):
        raise ExternalError("leader:<p> needs endpoints.kafka_bootstrap and pipeline.topic in the target file")
    if isinstance(tgt, T.ActiveController | T.CoordinatorOf):
        raise ExternalError(f"{tgt!r} cannot be resolved on an external target (it reads the suite's own "
                            "containers); name the node instead")
    nodes = tgt.candidates(ExternalView(ext))  # every node it could resolve to: all must be allowed
    if not nodes:
        raise ExternalError(f"{T.role(tgt)} names no node of the target file's [nodes] "
                            f"({', '.join(ext.nodes) or 'none'})")
    return nodes


def touched(fault: Fault, ext: ExternalTarget) -> list[str]:
    """Every node or link ``fault`` could touch on ``ext``; ExternalError when it cannot run there."""
    if isinstance(fault, Toxic | LinkDown):
        out: set[str] = set()
        for pat in fault.links:
            found = {n for n in ext.links if fnmatch.fnmatchcase(n, pat)}
            if not found:
                raise ExternalError(f"{fault.name}: no link of the target matches {pat!r}; links: "
                                    f"{', '.join(ext.links) or '(none: add [toxiproxy] links)'}")
            out |= found
        return sorted(out)
    if type(fault).__name__ in ("Kill", "Stop", "Pause", "Restart") and isinstance(fault, ContainerFault):
        nodes = _nodes_of(fault.target, ext)
        unknown = [n for n in nodes if n not in ext.nodes]
        if unknown:
            raise ExternalError(f"{fault.name}: node(s) {', '.join(unknown)} are not in the target file's [nodes] "
                                f"({', '.join(ext.nodes) or 'none'})")
        return nodes
    raise ExternalError(f"fault {fault.name} needs the suite's own container engine and helpers; on an external "
                        "target only link faults (Toxiproxy) and kill/stop/pause/restart (command templates) run")


def check_allowed(faults: Iterable[Fault], ext: ExternalTarget, extra: Sequence[str] = ()) -> list[str]:
    """Everything the faults (and ``extra`` names) could touch; ExternalError naming each name outside the
    allow-list (or each fault that cannot run on an external target) before anything is done."""
    problems: list[str] = []
    names: list[str] = list(extra)
    for f in faults:
        try:
            names += touched(f, ext)
        except ExternalError as exc:
            problems.append(str(exc))
    outside = sorted({n for n in names if not ext.allowed(n)})
    if outside:
        problems.append(f"not in the allow-list: {', '.join(outside)} (allow = {list(ext.allow)}; "
                        f"edit [safety] allow in {ext.source} to permit them)")
    if problems:
        raise ExternalError("may not run on this target: " + "; ".join(problems))
    return sorted(set(names))


# -- the adapter the faults act through -----------------------------------------------------------------


class CommandNode:
    """Quacks like the docker-py container the container faults use, through the command templates."""

    def __init__(self, ext: ExternalTarget, name: str, timeout_s: float, log: Any = None) -> None:
        self.ext, self.name, self.timeout_s = ext, name, timeout_s
        self.status = "running"
        self.labels: dict[str, str] = {}
        self.log = log  # callable(argv, returncode, output) for the journal

    def _run(self, action: str, **values: Any) -> str:
        if not self.ext.allowed(self.name):
            raise PermissionError(f"{self.name} is not in the allow-list of {self.ext.source}; refusing to touch it")
        argv = self.ext.command(action, self.name, **values)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{' '.join(argv)} did not finish within {self.timeout_s:.0f} s "
                               "(gameday_command_timeout_s)") from None
        except OSError as exc:
            raise RuntimeError(f"{' '.join(argv)}: {exc}") from None
        out = (proc.stdout + proc.stderr).strip()
        if self.log is not None:
            self.log(argv, proc.returncode, out[-300:])
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (exit {proc.returncode}): {out[-500:]}")
        return proc.stdout

    def reload(self) -> None:
        if self.ext.commands.get("status"):
            self.status = self._run("status").strip().strip("'\"").lower() or self.status

    def kill(self, signal: str = "SIGKILL") -> None:
        self._run("kill", signal=signal)
        self.status = "exited"

    def stop(self, timeout: int = 10) -> None:
        self._run("stop", timeout=timeout)
        self.status = "exited"

    def start(self) -> None:
        self._run("start")
        self.status = "running"

    def pause(self) -> None:
        self._run("pause")
        self.status = "paused"

    def unpause(self) -> None:
        self._run("unpause")
        self.status = "running"

    def restart(self, timeout: int = 10) -> None:
        self.stop(timeout=timeout)
        self.start()


class ExternalEnvironment:
    """What the faults, targets and probes need from an environment, for an external target."""

    def __init__(self, ext: ExternalTarget, settings: Settings, log: Any = None, pipeline: Any = None) -> None:
        from chaos.env import Link
        from chaos.toxiproxy_client import ToxiproxyClient

        self.ext = ext
        self.settings = settings.replace(topic_partitions=ext.partitions)
        self.run_id = f"external:{ext.name}"
        self.links = {n: Link(n, "", "", "", "") for n in ext.links}
        self.toxiproxy = (ToxiproxyClient(*ext.toxiproxy_address(), settings.toxiproxy_api_timeout_s)
                          if ext.toxiproxy_api else None)
        self.deployment: Any = None
        if ext.topic and pipeline is not None:
            from chaos.env import Deployment

            self.deployment = Deployment(name=ext.name, tag="external", topics={pipeline.entry_topic.name: ext.topic},
                                         groups={}, schema=ext.schema, defects=(), pipeline=pipeline)
        self._nodes = {n: CommandNode(ext, n, settings.gameday_command_timeout_s, log) for n in ext.nodes}
        self._admin: Any = None
        self.view = ExternalView(ext)

    def broker_names(self) -> list[str]:
        return self.view.broker_names()

    def selector_nodes(self, selector: str) -> list[str]:
        return self.view.selector_nodes(selector)

    def container(self, name: str) -> CommandNode:
        node = self._nodes.get(name)
        if node is None:
            raise KeyError(f"no node named {name!r}; known: {', '.join(self._nodes)}")
        if not self.ext.allowed(name):
            raise PermissionError(f"{name} is not in the allow-list of {self.ext.source}; refusing to touch it")
        node.reload()
        return node

    def node_names(self) -> list[str]:
        return list(self._nodes)

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        from chaos.env import kafka_client_config

        if self._admin is None:
            if not self.ext.kafka_bootstrap:
                raise ValueError("the target file has no endpoints.kafka_bootstrap")
            self._admin = AdminClient(kafka_client_config(self.ext.kafka_bootstrap))
        return self._admin

    def partition_leader(self, topic: str, partition: int) -> int:
        md = self.admin().list_topics(topic, timeout=5)
        return int(md.topics[topic].partitions[partition].leader)
