"""The fault catalogue: names -> fault classes, and fault specs (plain data) -> fault objects.

One catalogue for everything that names faults in data: game-day scenarios (TOML), the random
schedules and their replay files (JSON). A **spec** is the fault's catalogue name plus its constructor's
keyword arguments, with role strings for targets and patterns for links::

    {"fault": "latency", "links": "entry->kafka", "latency_ms": 200, "jitter_ms": 20}
    {"fault": "kill", "target": "leader:0"}
    {"fault": "split", "side": "kafka-1"}

Trailing underscores of the Python parameter names are dropped (``target`` for ``target_``, ``bytes``
for ``bytes_``, ``type`` for ``type_``, ``from`` for ``from_``). Every error names what is accepted and is
raised before anything is injected.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from chaos.faults.base import Fault
from chaos.faults.container import Kill, KillInTransaction, Pause, Restart, RollingRestart, SecondFleet, Stop
from chaos.faults.database import CompetingWriter, HoldRowLocks, TerminateBackends
from chaos.faults.disk import DiskFull
from chaos.faults.network import (
    Bandwidth,
    BlackHole,
    Latency,
    LimitData,
    LinkDown,
    ResetPeer,
    Slicer,
    SlowClose,
    Toxic,
)
from chaos.faults.partition import Bridge, Isolate, LeaderLossAfterIsrShrink, NetEm, OneWay, Partition, Split

CATALOGUE: dict[str, type[Fault]] = {
    "latency": Latency, "bandwidth": Bandwidth, "black_hole": BlackHole, "reset_peer": ResetPeer,
    "slow_close": SlowClose, "slicer": Slicer, "limit_data": LimitData, "toxic": Toxic, "link_down": LinkDown,
    "kill": Kill, "kill_in_transaction": KillInTransaction, "stop": Stop, "pause": Pause, "restart": Restart,
    "rolling_restart": RollingRestart,
    "second_fleet": SecondFleet, "isolate": Isolate, "split": Split, "bridge": Bridge, "one_way": OneWay,
    "partition": Partition, "netem": NetEm, "terminate_backends": TerminateBackends,
    "hold_row_locks": HoldRowLocks, "competing_writer": CompetingWriter,
    "disk_full": DiskFull, "leader_loss_after_isr_shrink": LeaderLossAfterIsrShrink,
}
LINK_FAULTS = ("latency", "bandwidth", "black_hole", "reset_peer", "slow_close", "slicer", "limit_data", "toxic",
               "link_down")
TARGET_KEYS = ("target", "side", "bridge", "among", "a", "b", "src", "dst", "from")  # spec keys with role strings


def parameters(cls: type[Fault]) -> dict[str, inspect.Parameter]:
    """Spec key -> the constructor's parameter (``target`` -> ``target_``)."""
    return {name.rstrip("_"): p for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def build_fault(spec: Mapping[str, Any]) -> Fault:
    """A fresh Fault from a spec; ValueError naming what is wrong (unknown fault, key, missing or bad value)."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a fault spec is a table with a 'fault' name, not {type(spec).__name__}")
    name = spec.get("fault")
    if name not in CATALOGUE:
        raise ValueError(f"{name!r} is not a fault; accepted: {', '.join(sorted(CATALOGUE))}")
    cls = CATALOGUE[str(name)]
    params = parameters(cls)
    given = {k: v for k, v in spec.items() if k not in ("fault", "at_s", "duration_s")}
    unknown = sorted(k for k in given if k not in params)
    if unknown:
        raise ValueError(f"fault {name} has no parameter {', '.join(map(repr, unknown))}; accepted: "
                         f"{', '.join(params) or '(none)'}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in given]
    if missing:
        raise ValueError(f"fault {name} needs {', '.join(missing)}")
    kwargs = {params[k].name: (list(v) if isinstance(v, tuple) else v) for k, v in given.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"fault {name}: {exc}") from None


def describe_spec(spec: Mapping[str, Any]) -> str:
    """One short line: ``kill kafka-2``, ``latency entry->kafka latency_ms=200``."""
    rest = {k: v for k, v in spec.items() if k != "fault"}
    where = [str(rest.pop(k)) for k in ("links", *TARGET_KEYS) if k in rest]
    return " ".join([str(spec.get("fault")), *where, *(f"{k}={v}" for k, v in rest.items())])


def spec_of(fault: Fault) -> dict[str, Any]:
    """The spec that builds ``fault`` again (its catalogue name and its parameters, as plain data)."""
    name = next((n for n, c in CATALOGUE.items() if type(fault) is c), fault.name)
    return {"fault": name, **{k: (v if v is None or isinstance(v, int | float | bool | list) else str(v))
                              for k, v in fault.params().items()}}
