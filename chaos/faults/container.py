"""Container faults through the engine: kill (SIGKILL) and start again, pause."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault
from chaos.faults.targets import Target

if TYPE_CHECKING:
    from chaos.env import Environment


class KillAndRestart(Fault):
    """SIGKILL the target; heal starts it again (same container, same data, same ports)."""

    name = "kill"

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target

    def validate(self, env: Environment) -> None:
        self.target.validate(env)

    def _inject(self, env: Environment) -> None:
        node = self.target.resolve(env)
        self.resolved = {"node": node}
        env.container(node).kill(signal="SIGKILL")

    def _heal(self, env: Environment) -> None:
        node = self.resolved.get("node")
        if node:
            c = env.container(node)
            if c.status != "running":
                c.start()

    def params(self) -> dict[str, Any]:
        return {"target": repr(self.target)}


class Pause(Fault):
    """Freeze every process of the target (cgroup freezer); heal unpauses."""

    name = "pause"

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target

    def validate(self, env: Environment) -> None:
        self.target.validate(env)

    def _inject(self, env: Environment) -> None:
        node = self.target.resolve(env)
        self.resolved = {"node": node}
        env.container(node).pause()

    def _heal(self, env: Environment) -> None:
        node = self.resolved.get("node")
        if node:
            c = env.container(node)
            if c.status == "paused":
                c.unpause()

    def params(self) -> dict[str, Any]:
        return {"target": repr(self.target)}
