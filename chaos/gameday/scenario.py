"""Game-day scenarios: parsing and validation (pure; no container, no network).

A scenario is a TOML file (stdlib ``tomllib``), or a Python module exposing ``scenario`` (a
:class:`Scenario`, a dict in the TOML layout, or a function returning either). Layout::

    name = "leader-kill"                      # defaults to the file name
    description = "the leader of partition 0 is SIGKILLed, then started again"

    [pipeline]                                # local target only
    fresh = true                              # deploy a fresh pipeline (own topics/schema): exact invariants
    defects = []                              # the pipeline's defect switches (its adapter names them)

    [load]                                    # chaos.workload.LoadSpec
    rate = 200                                # calls per second
    keys = 16
    batch_size = 1
    max_in_flight = 256

    [phases]
    warmup_s = 3                              # load before anything is judged
    before_s = 4                              # steady state checked at its end: no injection unless steady
    after_s = 5                               # load after the heal (longer while the steady state returns)

    [[steady_state.probe]]                    # checked before, during (continuously) and after
    type = "entry_serving"                    # see PROBE_TYPES
    during = "abort"                          # during the method: "abort" on failure, "watch" (show) or "skip"

    [[method]]                                # the faults, on a timeline from the start of the method
    fault = "kill"                            # see chaos.faults.catalogue; other keys are its parameters
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
anything is started or injected. A scenario parses into a :class:`chaos.run.Plan`, which the one run
protocol executes (:mod:`chaos.run.protocol`).
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chaos.checkers import Budget
from chaos.faults import Fault, Schedule, Step
from chaos.faults.catalogue import build_fault as _build_fault
from chaos.faults.catalogue import spec_of
from chaos.run.plan import (
    DURING,
    PROBE_ALIASES,
    PROBE_TYPES,
    PROBES_NEEDING_MAX,
    ROLLBACKS,
    Budgets,
    Plan,
    Probe,
    Rollback,
)
from chaos.workload import LoadSpec

Scenario = Plan  # a game-day scenario is a run plan
TOP_KEYS = ("name", "description", "pipeline", "load", "phases", "steady_state", "method", "budgets", "rollback")
SCENARIOS_PACKAGE = "chaos.scenarios"  # the catalogue shipped with the suite (package data)


class ScenarioError(ValueError):
    """A scenario that cannot run; the message says where and what is accepted."""


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
        raise _err(where, "must be a table such as {type = \"entry_serving\"}")
    _no_unknown(raw, ("type", "name", "max", "window_s", "during"), where)
    kind = raw.get("type")
    kind = PROBE_ALIASES.get(kind, kind) if isinstance(kind, str) else kind
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
    """A Fault object from ``{fault = "<name>", <parameter> = ...}`` (the one catalogue,
    :mod:`chaos.faults.catalogue`); ScenarioError naming where and what is accepted."""
    kind = raw.get("fault")
    if isinstance(kind, Fault):
        return kind
    try:
        return _build_fault(raw)
    except ValueError as exc:
        raise _err(f"{where}.fault" if "is not a fault" in str(exc) else where, str(exc)) from None


def _step(raw: Any, i: int) -> Step:
    where = f"method[{i}]"
    if not isinstance(raw, Mapping):
        raise _err(where, "must be a table such as {fault = \"kill\", target = \"leader:0\", at_s = 0, duration_s = 6}")
    at = _num(raw, "at_s", where, 0.0)
    if "duration_s" not in raw:
        raise _err(where, "needs duration_s (how long the fault stays before it is healed)")
    dur = _num(raw, "duration_s", where)
    fault = build_fault(raw, where)
    spec = {k: v for k, v in raw.items() if not isinstance(v, Fault)}
    if isinstance(raw.get("fault"), Fault):  # a Python scenario: the object's own parameters, as data
        spec = {**spec_of(fault), **spec}
    return Step(at_s=float(at), fault=fault, duration_s=float(dur), spec=spec)


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
    steps = [_step(s, i) for i, s in enumerate(method_raw)]
    try:
        method = Schedule(steps)
    except ValueError as exc:
        raise _err("method", str(exc)) from None
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
    """Where scenario names are looked up: ./scenarios (the user's own), then the suite's catalogue (shipped
    in the package, found with importlib.resources)."""
    from importlib.resources import files

    shipped = Path(str(files(SCENARIOS_PACKAGE)))
    here = Path.cwd() / "scenarios"
    return [here] if here.resolve() == shipped.resolve() else [here, shipped]


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
