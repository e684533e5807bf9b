"""Resource faults: a broker's log disk filling up.

Each broker's log dir is its own small filesystem (``kafka_log_disk_mb``, a tmpfs volume kept mounted
by the environment's ``disks`` helper; see ``chaos.env``). ``DiskFull`` fills it with a ballast file
(``fallocate``, through the ``disks`` helper, so it works whatever state the broker is in); every write
of the broker then fails with ENOSPC ("No space left on device"). Kafka treats a failed write as a
failed log dir: with a single log dir the broker shuts itself down (its partitions move to the other
brokers). Heal deletes the ballast and starts the broker again if it stopped; it does not wait for it
to rejoin (``Environment.wait_recovered`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault
from chaos.faults.targets import AnyBroker, Target, target

if TYPE_CHECKING:
    from chaos.env import Environment

BALLAST = ".chaos-ballast"
FILL_MARGINS = (0, 1 << 20, 4 << 20, 16 << 20)  # bytes kept back on a retried allocation


class DiskFull(Fault):
    """Fill the log filesystem of the target broker(s), leaving ``leave_bytes`` free (default 0).

    Models a disk filled by retention misconfiguration, a runaway topic or another tenant."""

    name = "disk_full"

    def __init__(self, target_: Target | str | None = None, leave_bytes: int = 0) -> None:
        super().__init__()
        self.target = target(target_) if target_ is not None else AnyBroker()
        if not isinstance(leave_bytes, int) or isinstance(leave_bytes, bool) or leave_bytes < 0:
            raise ValueError(f"leave_bytes={leave_bytes!r} must be a non-negative integer")
        self.leave_bytes = leave_bytes

    def validate(self, env: Environment) -> None:
        self.target.validate(env)
        env.disks_keeper()  # ValueError saying how to get broker disks when there are none

    def _path(self, node: str) -> str:
        from chaos.env.environment import DISKS_MOUNT

        return f"{DISKS_MOUNT}/{node}"

    def _inject(self, env: Environment) -> None:
        nodes = self.target.nodes(env)
        bad = [n for n in nodes if not n.startswith("kafka-")]
        if bad:
            raise ValueError(f"DiskFull fills broker log disks; {bad} are not brokers (accepted: kafka-1..3, "
                             "broker, controller, leader:<p>, minority, majority, brokers)")
        keeper = env.disks_keeper()
        self.resolved = {"nodes": [], "filled_bytes": {}}
        for node in nodes:
            env.container(node)  # this run's broker, or refuse
            path = self._path(node)
            self.resolved["nodes"].append(node)
            self.resolved["filled_bytes"][node] = self._fill(env, keeper, path)

    def _fill(self, env: Environment, keeper: Any, path: str) -> int:
        """Allocate all but ``leave_bytes``. A broker under load writes between ``df`` and ``fallocate``,
        so an allocation that no longer fits is retried a little smaller; with ``leave_bytes=0`` the last
        bytes are then topped up by writing until the filesystem refuses."""
        avail = int(env.exec_checked(keeper, ["df", "-B1", "--output=avail", path], "df").split()[-1])
        filled = 0
        for margin in FILL_MARGINS:
            size = avail - self.leave_bytes - margin
            if size <= 0:
                break
            result = keeper.exec_run(["fallocate", "-l", str(size), f"{path}/{BALLAST}"])
            if result.exit_code == 0:
                filled = size
                break
        else:
            raise RuntimeError(f"could not fill {path}: fallocate kept failing with the broker writing")
        if self.leave_bytes == 0:
            keeper.exec_run(["sh", "-c", f"cat /dev/zero > {path}/{BALLAST}.top 2>/dev/null; true"])
        return filled

    def _heal(self, env: Environment) -> None:
        keeper = env.disks_keeper()
        errors = []
        for node in self.resolved.get("nodes", []):
            try:
                ballast = f"{self._path(node)}/{BALLAST}"
                env.exec_checked(keeper, ["rm", "-f", ballast, f"{ballast}.top"], "removing the ballast")
                c = env.container(node)
                if c.status == "paused":
                    c.unpause()
                elif c.status != "running":
                    c.start()  # Kafka halts when its only log dir fails
            except Exception as exc:
                errors.append(f"{node}: {exc}")
        if errors:
            raise RuntimeError(f"disk_full heal failed on {'; '.join(errors)}")

    def params(self) -> dict[str, Any]:
        return {"target": str(self.target), "leave_bytes": self.leave_bytes}
