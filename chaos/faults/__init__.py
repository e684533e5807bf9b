"""Faults: one small object per mechanism, each with ``inject()`` and ``heal()``.

A fault is validated before anything is injected (bad attributes or an unknown target raise
``ValueError`` naming the accepted values), resolves its target by role at injection time, refuses any
container that does not carry this run's label (``Environment.container`` enforces it), and heals
idempotently. ``with fault.active(env):`` heals in a ``finally``; every injected fault is also
registered on the environment so a session-level safety net heals whatever is still active at teardown.
A ``Schedule`` injects and heals several faults at set times.

Catalogue (``docs/faults.md`` has what each models; :mod:`chaos.faults.catalogue` maps names to classes):
links (Toxiproxy)  Latency, Bandwidth, BlackHole, ResetPeer, SlowClose, Slicer, LimitData, Toxic, LinkDown
containers         Kill (= KillAndRestart), KillInTransaction, Stop, Pause, Restart, RollingRestart, SecondFleet
network            Isolate, Split, Bridge, OneWay, Partition (iptables, optionally one port), NetEm (loss, delay,
                   duplication, corruption), LeaderLossAfterIsrShrink (a cut replication path, then the leader lost)
database           TerminateBackends, HoldRowLocks, CompetingWriter (and Restart/Pause of "postgres")
resources          DiskFull
"""

from chaos.faults.base import Fault, active_faults, heal_all
from chaos.faults.container import (
    Kill,
    KillAndRestart,
    KillInTransaction,
    Pause,
    Restart,
    RollingRestart,
    SecondFleet,
    Stop,
)
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
from chaos.faults.schedule import Schedule, Step
from chaos.faults.targets import (
    ActiveController,
    AnyBroker,
    Brokers,
    CoordinatorOf,
    LeaderOf,
    Majority,
    Minority,
    Node,
    Postgres,
    Service,
    Services,
    Target,
    Toxiproxy,
    links_matching,
    target,
)

__all__ = [
    "ActiveController",
    "AnyBroker",
    "Bandwidth",
    "BlackHole",
    "Bridge",
    "Brokers",
    "CompetingWriter",
    "CoordinatorOf",
    "DiskFull",
    "Fault",
    "HoldRowLocks",
    "Isolate",
    "Kill",
    "KillAndRestart",
    "KillInTransaction",
    "Latency",
    "LeaderLossAfterIsrShrink",
    "LeaderOf",
    "LimitData",
    "LinkDown",
    "Majority",
    "Minority",
    "NetEm",
    "Node",
    "OneWay",
    "Partition",
    "Pause",
    "Postgres",
    "ResetPeer",
    "Restart",
    "RollingRestart",
    "Schedule",
    "SecondFleet",
    "Service",
    "Services",
    "Slicer",
    "SlowClose",
    "Split",
    "Step",
    "Stop",
    "Target",
    "TerminateBackends",
    "Toxic",
    "Toxiproxy",
    "active_faults",
    "heal_all",
    "links_matching",
    "target",
]
