"""Game-day scenarios: parsing and validation (pure; no container, no network).

A scenario is a TOML file (stdlib ``tomllib``), or a Python module exposing ``scenario`` (a
:class:`Scenario`, a dict in the TOML layout, or a function returning either). Layout::

    name = "leader-kill"                      # defaults to the file name
    description = "the leader of partition 0 is SIGKILLed, then started again"

    [pipeline]                                # local target only
    fresh = true                              # deploy a fresh pipeline (own topic/schema): exact invariants
    defects = []                              # reference-pipeline defect switches

    [load]                                    # chaos.workload.LoadSpec
    rate = 200                                # RPCs per second
    keys = 16
    batch_size = 1
    max_in_flight = 256

    [phases]
    warmup_s = 3                              # load before anything is judged
    before_s = 4                              # steady state checked at its end: no injection unless steady
    after_s = 5                               # load after the heal (longer while the steady state returns)

    [[steady_state.probe]]                    # checked before, during (continuously) and after
    type = "ingest_serving"                   # see PROBE_TYPES
    during = "abort"                          # during the method: "abort" on failure, "watch" (show) or "skip"

    [[method]]                                # the faults, on a timeline from the start of the method
    fault = "kill"                            # see FAULTS; other keys are the fault's parameters
    target = "leader:0"
    at_s = 0
    duration_s = 6

    [budgets]                                 # checked continuously during the method and after it
    window_s = 3                              # over the last window_s seconds of completed operations
    max_error_rate = 0.5                      # breach -> abort: heal everything now, rollbacks, exit 3
    max_p99_ms = 8000
    max_consumer_lag = 100000
    [budgets.phases.after]                    # per-phase budgets judged at the end (availability verdict)
    max_error_rate = 0.1

    [[rollback]]                              # run after the method whatever happened (after heal-all)
    action = "wait_recovered"                 # see ROLLBACKS

Every error names where it is (``method[2].latency_ms``) and what is accepted, and is raised before
anything is started or injected.
"""

from __future__ import annotations

import importlib.util
import inspect
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import faults as F
from chaos.checkers import Budget
from chaos.faults import Fault
from chaos.workload import LoadSpec

# name in a scenario -> fault class; parameters are the class's own (``target``, ``bytes``, ``type`` and
# ``from`` stand for ``target_``, ``bytes_``, ``type_``, ``from_``).
FAULTS: dict[str, type[Fault]] = {
    "latency": F.Latency, "bandwidth": F.Bandwidth, "black_hole": F.BlackHole, "reset_peer": F.ResetPeer,
    "slow_close": F.SlowClose, "slicer": F.Slicer, "limit_data": F.LimitData, "toxic": F.Toxic,
    "link_down": F.LinkDown, "kill": F.Kill, "stop": F.Stop, "pause": F.Pause, "restart": F.Restart,
    "rolling_restart": F.RollingRestart, "isolate": F.Isolate, "split": F.Split, "bridge": F.Bridge,
    "one_way": F.OneWay, "partition": F.Partition, "netem": F.NetEm, "terminate_backends": F.TerminateBackends,
    "hold_row_locks": F.HoldRowLocks, "disk_full": F.DiskFull,
}
_RENAMED = {"target": "target_", "bytes": "bytes_", "type": "type_", "from": "from_"}
PROBE_TYPES = {
    "ingest_serving": "the ingest service's gRPC health check answers SERVING",
    "error_rate": "client errors over the last window_s seconds <= max (a fraction, 0.01 = 1%)",
    "p99_latency": "p99 latency of acknowledged operations over the last window_s seconds <= max (ms)",
    "consumer_lag": "the projector group's consumer lag <= max (records)",
    "full_isr": "every partition of the pipeline's topic has a leader and a full ISR",
    "brokers": "at least max (default 3) brokers are registered",
}
PROBES_NEEDING_MAX = ("error_rate", "p99_latency", "consumer_lag")
DURING = ("abort", "watch", "skip")
ROLLBACKS = {
    "wait_recovered": "wait (bounded) until every node runs, all brokers are registered and the topic has a full ISR",
    "reset_links": "remove every toxic and enable every link of the target's Toxiproxy",
    "ensure_running": "start or unpause the nodes listed in `nodes`",
}
TOP_KEYS = ("name", "description", "pipeline", "load", "phases", "steady_state", "method", "budgets", "rollback")


class ScenarioError(ValueError):
    """A scenario that cannot run; the message says where and what is accepted."""


@dataclass(frozen=True)
class Probe:
    type: str
    name: str
    max: float | None = None
    window_s: float = 3.0
    during: str = "watch"

    def describe(self) -> str:
        bound = "" if self.max is None else f" <= {self.max:g}"
        win = f" over {self.window_s:g} s" if self.type in ("error_rate", "p99_latency") else ""
        return f"{self.name}: {self.type}{bound}{win} (during: {self.during})"


@dataclass(frozen=True)
class MethodStep:
    at_s: float
    duration_s: float
    fault: Fault
    spec: dict[str, Any]  # as written (for the plan, the journal and the report)

    def describe(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.spec.items() if k not in ("fault", "at_s", "duration_s"))
        return f"at {self.at_s:g}s for {self.duration_s:g}s: {self.spec.get('fault', self.fault.name)}({params})"


@dataclass(frozen=True)
class Rollback:
    action: str
    nodes: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.action + (f" {', '.join(self.nodes)}" if self.nodes else "")


@dataclass(frozen=True)
class Budgets:
    window_s: float = 3.0
    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    max_consumer_lag: int | None = None
    phases: dict[str, Budget] = field(default_factory=dict)

    def continuous(self) -> bool:
        return any(v is not None for v in (self.max_error_rate, self.max_p99_ms, self.max_consumer_lag))


@dataclass
class Scenario:
    name: str
    description: str = ""
    load: LoadSpec = field(default_factory=LoadSpec)
    warmup_s: float = 3.0
    before_s: float = 4.0
    after_s: float = 5.0
    probes: list[Probe] = field(default_factory=list)
    method: list[MethodStep] = field(default_factory=list)
    budgets: Budgets = field(default_factory=Budgets)
    rollbacks: list[Rollback] = field(default_factory=list)
    fresh_pipeline: bool = True
    defects: tuple[str, ...] = ()
    source: str = ""

    @property
    def method_s(self) -> float:
        return max((s.at_s + s.duration_s for s in self.method), default=0.0)

    def plan(self, local: bool = True) -> list[str]:
        """The plan in words (``--dry-run`` prints it); ``local`` False: on an external target."""
        lines = [f"scenario {self.name}" + (f": {self.description}" if self.description else ""),
                 f"  source: {self.source or '(python object)'}"]
        ld = self.load
        lines.append(f"  load: {ld.rate:g} RPCs/s x {ld.batch_size} event(s), {ld.keys} keys, "
                     f"{ld.max_in_flight} in flight at most")
        if not local:
            lines.append("  pipeline: the one the target file names (nothing deployed; no ground-truth check)")
        elif self.fresh_pipeline:
            lines.append("  pipeline: deploy a fresh one (own topic, group, schema)"
                         + (f" with defects {', '.join(self.defects)}" if self.defects else ""))
        lines.append(f"  timeline: warm-up {self.warmup_s:g}s, before {self.before_s:g}s, method "
                     f"{self.method_s:g}s, after >= {self.after_s:g}s")
        lines.append("  steady state (before, during, after):")
        lines += [f"    - {p.describe()}" for p in self.probes] or ["    (none)"]
        lines.append("  method:")
        lines += [f"    - {s.describe()}" for s in self.method] or ["    (none)"]
        b = self.budgets
        if b.continuous():
            parts = [f"error rate <= {b.max_error_rate:.0%}" if b.max_error_rate is not None else "",
                     f"p99 <= {b.max_p99_ms:g} ms" if b.max_p99_ms is not None else "",
                     f"consumer lag <= {b.max_consumer_lag}" if b.max_consumer_lag is not None else ""]
            lines.append(f"  budgets (abort when breached, over {b.window_s:g} s): "
                         + ", ".join(p for p in parts if p))
        for ph, bud in b.phases.items():
            lines.append(f"  budget of phase {ph}: error rate <= {bud.max_error_rate}, p99 <= {bud.max_p99_ms} ms")
        lines.append("  rollbacks (always): heal every fault"
                     + "".join(f"; {r.describe()}" for r in self.rollbacks))
        return lines


# -- parsing ---------------------------------------------------------------------------------------


def _err(where: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{where}: {msg}" if where else msg)


def _table(doc: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    v = doc.get(key, {})
    if not isinstance(v, Mapping):
        raise _err(where, f"[{key}] must be a table, not {type(v).__name__}")
    return dict(v)


def _no_unknown(d: Mapping[str, Any], accepted: tuple[str, ...] | list[str], where: str) -> None:
    unknown = [k for k in d if k not in accepted]
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}")


def _num(d: Mapping[str, Any], key: str, where: str, default: float | None = None, *, minimum: float = 0.0,
         integer: bool = False) -> Any:
    v = d.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and not isinstance(v, int)):
        kind = "an integer" if integer else "a number"
        raise _err(f"{where}.{key}", f"must be {kind}, not {v!r}")
    if v < minimum:
        raise _err(f"{where}.{key}", f"must be >= {minimum:g}, got {v!r}")
    return v


def _probe(raw: Any, i: int) -> Probe:
    where = f"steady_state.probe[{i}]"
    if not isinstance(raw, Mapping):
        raise _err(where, "must be a table such as {type = \"ingest_serving\"}")
    _no_unknown(raw, ("type", "name", "max", "window_s", "during"), where)
    kind = raw.get("type")
    if kind not in PROBE_TYPES:
        raise _err(f"{where}.type", f"{kind!r} is not a probe; accepted: {', '.join(PROBE_TYPES)}")
    mx = _num(raw, "max", where)
    if kind in PROBES_NEEDING_MAX and mx is None:
        raise _err(where, f"probe {kind} needs `max` ({PROBE_TYPES[kind]})")
    during = raw.get("during", "watch")
    if during not in DURING:
        raise _err(f"{where}.during", f"{during!r} is not one of {', '.join(DURING)}")
    window = _num(raw, "window_s", where, 3.0)
    if window <= 0:
        raise _err(f"{where}.window_s", "must be > 0")
    name = raw.get("name", kind)
    if not isinstance(name, str) or not name:
        raise _err(f"{where}.name", "must be a non-empty string")
    return Probe(type=kind, name=name, max=mx, window_s=float(window), during=during)


def build_fault(raw: Mapping[str, Any], where: str) -> Fault:
    """A Fault object from ``{fault = "<name>", <parameter> = ...}``; ScenarioError naming what is accepted."""
    kind = raw.get("fault")
    if isinstance(kind, Fault):
        return kind
    if kind not in FAULTS:
        raise _err(f"{where}.fault", f"{kind!r} is not a fault; accepted: {', '.join(sorted(FAULTS))}")
    cls = FAULTS[kind]
    sig = inspect.signature(cls.__init__)
    accepted = {name.rstrip("_") if name in _RENAMED.values() else name: name
                for name in list(sig.parameters)[1:]
                if sig.parameters[name].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
    params = {k: v for k, v in raw.items() if k not in ("fault", "at_s", "duration_s")}
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise _err(where, f"fault {kind} has no parameter {', '.join(map(repr, unknown))}; accepted: "
                          f"{', '.join(accepted) or '(none)'}")
    missing = [k for k, name in accepted.items()
               if sig.parameters[name].default is inspect.Parameter.empty and k not in params]
    if missing:
        raise _err(where, f"fault {kind} needs {', '.join(missing)}")
    try:
        return cls(**{accepted[k]: v for k, v in params.items()})
    except (ValueError, TypeError) as exc:
        raise _err(where, f"fault {kind}: {exc}") from None


def _step(raw: Any, i: int) -> MethodStep:
    where = f"method[{i}]"
    if not isinstance(raw, Mapping):
        raise _err(where, "must be a table such as {fault = \"kill\", target = \"leader:0\", at_s = 0, duration_s = 6}")
    at = _num(raw, "at_s", where, 0.0)
    if "duration_s" not in raw:
        raise _err(where, "needs duration_s (how long the fault stays before it is healed)")
    dur = _num(raw, "duration_s", where)
    fault = build_fault(raw, where)
    spec = {k: v for k, v in raw.items() if not isinstance(v, Fault)}
    if isinstance(raw.get("fault"), Fault):  # a Python scenario: the object's own parameters, as strings
        spec = {"fault": fault.name, **{k: (v if v is None or isinstance(v, int | float | bool) else str(v))
                                         for k, v in fault.params().items()}, **spec}
    return MethodStep(at_s=float(at), duration_s=float(dur), fault=fault, spec=spec)


def _budgets(raw: Mapping[str, Any]) -> Budgets:
    where = "budgets"
    _no_unknown(raw, ("window_s", "max_error_rate", "max_p99_ms", "max_consumer_lag", "phases"), where)
    window = _num(raw, "window_s", where, 3.0)
    if window <= 0:
        raise _err(f"{where}.window_s", "must be > 0")
    rate = _num(raw, "max_error_rate", where)
    if rate is not None and rate > 1:
        raise _err(f"{where}.max_error_rate", f"is a fraction between 0 and 1 (0.2 = 20%), got {rate}")
    phases: dict[str, Budget] = {}
    for ph, b in _table(raw, "phases", where).items():
        pw = f"{where}.phases.{ph}"
        if ph not in ("before", "during", "after"):
            raise _err(pw, "phase must be one of before, during, after")
        if not isinstance(b, Mapping):
            raise _err(pw, "must be a table with max_error_rate and/or max_p99_ms")
        _no_unknown(b, ("max_error_rate", "max_p99_ms"), pw)
        phases[ph] = Budget(max_error_rate=_num(b, "max_error_rate", pw), max_p99_ms=_num(b, "max_p99_ms", pw))
    return Budgets(window_s=float(window), max_error_rate=rate, max_p99_ms=_num(raw, "max_p99_ms", where),
                   max_consumer_lag=_num(raw, "max_consumer_lag", where, integer=True), phases=phases)


def _rollback(raw: Any, i: int) -> Rollback:
    where = f"rollback[{i}]"
    if not isinstance(raw, Mapping):
        raise _err(where, "must be a table such as {action = \"wait_recovered\"}")
    _no_unknown(raw, ("action", "nodes"), where)
    action = raw.get("action")
    if action not in ROLLBACKS:
        raise _err(f"{where}.action", f"{action!r} is not a rollback; accepted: {', '.join(ROLLBACKS)}")
    nodes = raw.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise _err(f"{where}.nodes", "must be a list of node names")
    if action == "ensure_running" and not nodes:
        raise _err(where, "ensure_running needs `nodes` (e.g. [\"kafka-1\"])")
    return Rollback(action=action, nodes=tuple(nodes))


def from_dict(doc: Mapping[str, Any], *, name: str = "", source: str = "") -> Scenario:
    """Validate a scenario document (the TOML layout; ``method[].fault`` may also be a Fault object)."""
    if not isinstance(doc, Mapping):
        raise _err("", f"a scenario is a table (TOML document or dict), not {type(doc).__name__}")
    _no_unknown(doc, TOP_KEYS, "scenario")
    sc_name = doc.get("name", name)
    if not isinstance(sc_name, str) or not sc_name.strip():
        raise _err("name", "must be a non-empty string")
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        raise _err("description", "must be a string")
    pipe = _table(doc, "pipeline", "")
    _no_unknown(pipe, ("fresh", "defects"), "pipeline")
    fresh = pipe.get("fresh", True)
    if not isinstance(fresh, bool):
        raise _err("pipeline.fresh", "must be true or false")
    defects = pipe.get("defects", [])
    if not isinstance(defects, list) or not all(isinstance(d, str) for d in defects):
        raise _err("pipeline.defects", "must be a list of defect names")
    load_raw = _table(doc, "load", "")
    accepted_load = ("rate", "keys", "key_skew", "batch_size", "max_in_flight", "amount_max")
    _no_unknown(load_raw, accepted_load, "load")
    for k in accepted_load:
        _num(load_raw, k, "load", integer=k not in ("rate", "key_skew"))
    try:
        load = LoadSpec(**load_raw)
    except (ValueError, TypeError) as exc:
        raise _err("load", str(exc)) from None
    phases = _table(doc, "phases", "")
    _no_unknown(phases, ("warmup_s", "before_s", "after_s"), "phases")
    ss = _table(doc, "steady_state", "")
    _no_unknown(ss, ("probe",), "steady_state")
    probes_raw = ss.get("probe", [])
    if not isinstance(probes_raw, list):
        raise _err("steady_state.probe", "must be an array of tables ([[steady_state.probe]])")
    probes = [_probe(p, i) for i, p in enumerate(probes_raw)]
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise _err("steady_state.probe", f"probe names must be unique; give `name` to repeated types: {names}")
    method_raw = doc.get("method", [])
    if not isinstance(method_raw, list):
        raise _err("method", "must be an array of tables ([[method]])")
    method = [_step(s, i) for i, s in enumerate(method_raw)]
    if len({id(s.fault) for s in method}) != len(method):
        raise _err("method", "a fault object can appear only once; make one per step")
    rb_raw = doc.get("rollback", [])
    if not isinstance(rb_raw, list):
        raise _err("rollback", "must be an array of tables ([[rollback]])")
    return Scenario(
        name=sc_name.strip(), description=desc, load=load,
        warmup_s=float(_num(phases, "warmup_s", "phases", 3.0)),
        before_s=float(_num(phases, "before_s", "phases", 4.0)),
        after_s=float(_num(phases, "after_s", "phases", 5.0)), probes=probes, method=method,
        budgets=_budgets(_table(doc, "budgets", "")), rollbacks=[_rollback(r, i) for i, r in enumerate(rb_raw)],
        fresh_pipeline=fresh, defects=tuple(defects), source=source)


def parse_toml(text: str, *, name: str = "", source: str = "") -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source or 'scenario'}: not valid TOML: {exc}") from None
    try:
        return from_dict(doc, name=name, source=source)
    except ScenarioError as exc:
        raise ScenarioError(f"{source or 'scenario'}: {exc}") from None


def load_python(path: Path) -> Scenario:
    """A Python scenario: a module exposing ``scenario`` (Scenario, dict, or a function returning either)."""
    spec = importlib.util.spec_from_file_location(f"gameday_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    except Exception as exc:
        raise ScenarioError(f"{path}: importing it failed: {exc.__class__.__name__}: {exc}") from None
    obj: Any = getattr(module, "scenario", None)
    if obj is None:
        raise ScenarioError(f"{path}: defines no `scenario` (a Scenario, a dict in the TOML layout, or a "
                            "function returning one)")
    if callable(obj) and not isinstance(obj, Scenario):
        obj = _call(obj, path)
    if isinstance(obj, Scenario):
        obj.source = obj.source or str(path)
        return obj
    try:
        return from_dict(obj, name=path.stem, source=str(path))
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def _call(fn: Callable[[], Any], path: Path) -> Any:
    try:
        return fn()
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    except Exception as exc:
        raise ScenarioError(f"{path}: scenario() failed: {exc.__class__.__name__}: {exc}") from None


def catalogue_dirs() -> list[Path]:
    """Where scenario names are looked up: ./scenarios, then the repository's scenarios/."""
    repo = Path(__file__).resolve().parents[2] / "scenarios"
    here = Path.cwd() / "scenarios"
    return [here] if here.resolve() == repo.resolve() else [here, repo]


def catalogue() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in catalogue_dirs():
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if p.suffix in (".toml", ".py") and not p.name.startswith("_"):
                    found.setdefault(p.stem, p)
    return found


def load(ref: str) -> Scenario:
    """A scenario by file path (``.toml`` or ``.py``) or by catalogue name (``leader-kill``)."""
    path = Path(ref)
    if not path.exists():
        cat = catalogue()
        if ref not in cat:
            raise ScenarioError(f"no scenario {ref!r}: not a file, and not in the catalogue "
                                f"({', '.join(cat) or 'empty'}); give a path to a .toml or .py file")
        path = cat[ref]
    if path.is_dir():
        raise ScenarioError(f"{path} is a folder; give a scenario file (.toml or .py)")
    if path.suffix == ".py":
        return load_python(path)
    if path.suffix != ".toml":
        raise ScenarioError(f"{path}: a scenario is a .toml or a .py file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc}") from None
    return parse_toml(text, name=path.stem, source=str(path))
