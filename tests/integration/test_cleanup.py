"""Nothing outlives a run: an experiment interrupted while its fault is active leaves nothing behind.

A real pytest run of the leader-kill experiment is started in a subprocess and ended mid-fault, once
by Ctrl-C (SIGINT) and once by a pytest-timeout expiry. Afterwards no container and no network owned
by that process may exist, and the killed broker must not have been left for a later sweep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from chaos.env import LABEL_OWNER, LABEL_ROLE, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "experiments/test_leader_kill.py"
FAULT_ACTIVE_TIMEOUT_S = 240  # env start + deploy + warm-up + steady state, on a busy 2-core machine
EXIT_TIMEOUT_S = 180  # heal + teardown of the interrupted run
# Test-function timeout for the timeout variant: deploy (~5 s) + warm-up (4 s) + before (5 s) put the
# fault at ~14 s; it lasts 8 s. 19 s lands inside the fault window.
INTERRUPT_TIMEOUT_S = 19


def _owned(client: docker.DockerClient, owner: str) -> tuple[list[str], list[str]]:
    flt = {"label": f"{LABEL_OWNER}={owner}"}
    return ([c.name for c in client.containers.list(all=True, filters=flt)],
            [n.name for n in client.networks.list(filters=flt)])


@pytest.mark.parametrize("how", ["sigint", "timeout"])
def test_interrupted_experiment_leaves_nothing(how: str, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "pytest", "-q", "-x", EXPERIMENT, f"--chaos-report-dir={tmp_path}"]
    if how == "timeout":
        args.append(f"--timeout={INTERRUPT_TIMEOUT_S}")
    client = docker.from_env()
    with (tmp_path / "inner.log").open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        owner = f"{socket.gethostname()}:{proc.pid}"
        try:
            def broker_killed() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"inner run ended early: {(tmp_path / 'inner.log').read_text()[-3000:]}")
                flt = {"label": [f"{LABEL_OWNER}={owner}", f"{LABEL_ROLE}=kafka"], "status": "exited"}
                return bool(client.containers.list(all=True, filters=flt))

            wait_until(broker_killed, FAULT_ACTIVE_TIMEOUT_S, "the inner run to kill a broker", 0.2)
            containers, _ = _owned(client, owner)
            assert containers, "the inner run's containers were not found while it ran"
            if how == "sigint":
                proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=EXIT_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    log = (tmp_path / "inner.log").read_text()
    assert rc in (1, 2), f"inner run should fail or be interrupted, got {rc}:\n{log[-3000:]}"
    if how == "timeout":
        assert "Timeout" in log, log[-3000:]
    containers, networks = _owned(client, owner)
    assert not containers and not networks, f"left behind: {containers} {networks}\n{log[-3000:]}"
