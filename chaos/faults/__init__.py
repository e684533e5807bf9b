"""Faults: one small object per mechanism, each with ``inject()`` and ``heal()``.

A fault is validated before anything is injected (bad attributes or an unknown target raise
``ValueError`` naming the accepted values), resolves its target by role at injection time, refuses any
container that does not carry this run's label (``Environment.container`` enforces it), and heals
idempotently. ``with fault.active(env):`` heals in a ``finally``; every injected fault is also
registered on the environment so a session-level safety net heals whatever is still active at teardown.
"""

from chaos.faults.base import Fault, active_faults, heal_all
from chaos.faults.container import KillAndRestart, Pause
from chaos.faults.network import Latency, LinkDown, links_matching
from chaos.faults.targets import AnyBroker, LeaderOf, Node, Target

__all__ = ["AnyBroker", "Fault", "KillAndRestart", "Latency", "LeaderOf", "LinkDown", "Node", "Pause", "Target",
           "active_faults", "heal_all", "links_matching"]
