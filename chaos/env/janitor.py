"""Clean-up by label: everything the suite starts carries the run's labels, and a sweep removes what
runs whose owner process is gone left behind.

Labels: ``org.pipeline-chaos.run=<run id>``, ``.role``, ``.owner=<host>:<pid>``, ``.deployment`` (a
pipeline deployment's containers), ``.keep`` (an environment kept alive on purpose by ``gameday up``: the
sweep of other runs leaves it alone although its owner has exited; ``gameday down`` removes it).
testcontainers' own reaper (Ryuk) is off: its image cannot be pulled where no registry answers, so
clean-up by label is ours.
"""

from __future__ import annotations

import contextlib
import os
import socket

import docker
import docker.errors
from testcontainers.core.config import testcontainers_config

from chaos.config import Settings

LABEL_RUN = "org.pipeline-chaos.run"
LABEL_ROLE = "org.pipeline-chaos.role"
LABEL_OWNER = "org.pipeline-chaos.owner"  # "<hostname>:<pid>"
LABEL_DEPLOYMENT = "org.pipeline-chaos.deployment"
LABEL_KEEP = "org.pipeline-chaos.keep"

testcontainers_config.ryuk_disabled = True


class EnvironmentError_(RuntimeError):
    """The environment cannot start; the message says what to do."""


def connect_engine(settings: Settings) -> docker.DockerClient:
    """A client for the container engine, or one clear error saying how to get one."""
    try:
        client = docker.from_env(timeout=int(settings.docker_timeout_s))
        client.ping()
        return client
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise EnvironmentError_(
            f"no container engine answers at {where} ({exc.__class__.__name__}). Run `make setup` "
            "(installs Debian's docker.io and starts dockerd when you are root), or start your engine "
            "and set DOCKER_HOST."
        ) from None


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _orphan(labels: dict[str, str]) -> bool:
    return not owner_alive(labels.get(LABEL_OWNER, "")) and LABEL_KEEP not in labels


def sweep(client: docker.DockerClient, *, run_id: str | None = None, only_orphans: bool = True) -> int:
    """Remove containers, networks and volumes of earlier runs whose owner process is gone (or, with
    ``run_id``, everything of that run); returns how many were removed."""
    filters = {"label": f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN}
    check = only_orphans and not run_id
    removed = 0
    for c in client.containers.list(all=True, filters=filters):
        if check and not _orphan(c.labels):
            continue
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True, v=True)
            removed += 1
    for n in client.networks.list(filters=filters):
        if check and not _orphan(n.attrs.get("Labels") or {}):
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            n.remove()
            removed += 1
    # Volumes last: a volume in use by a container cannot be removed.
    for v in client.volumes.list(filters=filters):
        if check and not _orphan(v.attrs.get("Labels") or {}):
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            v.remove(force=True)
            removed += 1
    return removed
