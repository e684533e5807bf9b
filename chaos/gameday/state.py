"""The kept environment's state file: how later commands find and attach to what ``gameday up`` started.

``<report dir>/gameday/state.json``, written atomically. It names the run id (every container, network and
volume carries it as a label), the pipeline's adapter, the published loopback ports, the Kafka cluster id,
the image references, the settings the topology was started with, the pipeline deployed in it, and the
scenario running now (pid), so that ``heal`` and ``down`` can interrupt it. It holds no secret: the
Postgres password is read back from the Postgres container when a command attaches.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Settings that shape the topology: a later command must use the ones it was started with.
TOPOLOGY_SETTINGS = ("pipeline", "replicas", "topic_partitions", "kafka_log_disk_mb")


def state_path(report_dir: Path) -> Path:
    return Path(report_dir) / "gameday" / "state.json"


@dataclass
class State:
    run_id: str
    ports: dict[str, int]
    cluster_id: str
    image_source: str
    images: dict[str, str]
    pipeline_images: dict[str, str]
    settings: dict[str, Any]
    created: str
    deployment: dict[str, Any] | None = None  # Environment.describe_deployment()
    running: dict[str, Any] | None = None  # {"pid", "scenario", "since"} while a scenario runs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        return cls(run_id=d["run_id"], ports={k: int(v) for k, v in d["ports"].items()}, cluster_id=d["cluster_id"],
                   image_source=d["image_source"], images=dict(d["images"]),
                   pipeline_images=dict(d.get("pipeline_images") or {}), settings=dict(d.get("settings") or {}),
                   created=d["created"], deployment=d.get("deployment"), running=d.get("running"))


class StateError(RuntimeError):
    """No kept environment, or an unreadable state file; the message says what to do."""


def load(path: Path) -> State:
    if not path.is_file():
        raise StateError(f"no environment is up (no state file {path}); start one with `gameday up`, or "
                         "target an external environment with --target FILE")
    try:
        return State.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{path}: unreadable state file ({exc}); remove what it described with "
                         "`gameday down --run-id <id>` and delete the file") from None


def save(path: Path, state: State) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state.to_dict(), f, indent=2)
    os.replace(tmp, path)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs (an exited child its parent has not reaped yet, a zombie, does not)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True
