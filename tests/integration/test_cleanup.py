"""Nothing outlives a run: a run interrupted while its faults are active leaves nothing behind.

A real pytest run is started in a subprocess and ended while faults are active, once by Ctrl-C
(SIGINT) and once by a pytest-timeout expiry. The inner run is ``scenario_faults_active.py``: a toxic
on the ingest->Kafka links, an iptables partition isolating kafka-3, a paused projector, netem on
kafka-2 (a helper container), a full disk on kafka-2 and a killed kafka-1, all active at the moment of
interruption (seen from outside before the signal). Afterwards every one of them must have been
healed (the inner run's fault log says so), and no container, network or volume owned by that process
may exist, and no chain of ours in the host's iptables; so the killed broker and the helpers were not
left for a later sweep.
"""

from __future__ import annotations

import os
import shutil
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
SCENARIO = "tests/integration/scenario_faults_active.py"
FAULT_ACTIVE_TIMEOUT_S = 240  # env start + deploy + injections, on a busy 2-core machine
EXIT_TIMEOUT_S = 180  # heal + teardown of the interrupted run
# Test-function timeout for the timeout variant: deploy (~5 s) + six injections (~5 s) make the faults
# active after ~10 s; they are then held until interrupted. 30 s lands while they are held.
INTERRUPT_TIMEOUT_S = 30
HEALED = ("healed latency", "healed isolate", "healed pause", "healed netem", "healed disk_full", "healed kill")


def _owned(client: docker.DockerClient, owner: str) -> tuple[list[str], list[str], list[str]]:
    flt = {"label": f"{LABEL_OWNER}={owner}"}
    return ([c.name for c in client.containers.list(all=True, filters=flt)],
            [n.name for n in client.networks.list(filters=flt)],
            [v.name for v in client.volumes.list(filters=flt)])


def _host_chaos_chains() -> str:
    """Chains of ours in the host's namespace (there must never be any; the helpers work in targets')."""
    out = []
    for tool in ("iptables-save", "iptables-legacy-save"):
        if shutil.which(tool):
            proc = subprocess.run([tool], capture_output=True, text=True, timeout=30, check=False)
            out += [line for line in proc.stdout.splitlines() if "CHAOS" in line]
    return "\n".join(out)


@pytest.mark.parametrize("how", ["sigint", "timeout"])
def test_interrupted_run_with_active_faults_leaves_nothing(how: str, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "pytest", "-q", "-x", SCENARIO, f"--chaos-report-dir={tmp_path}"]
    if how == "timeout":
        args.append(f"--timeout={INTERRUPT_TIMEOUT_S}")
    client = docker.from_env()
    log_path = tmp_path / "inner.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "CHAOS_SCENARIO_DIR": str(tmp_path)})
        owner = f"{socket.gethostname()}:{proc.pid}"
        try:
            def all_active() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"inner run ended early: {log_path.read_text()[-3000:]}")
                return (tmp_path / "active").exists()

            wait_until(all_active, FAULT_ACTIVE_TIMEOUT_S, "the inner run to have all its faults active", 0.2)
            # seen from outside, at the moment of interruption
            mine = {"label": f"{LABEL_OWNER}={owner}"}
            paused = client.containers.list(filters={**mine, "status": "paused"})
            helpers = client.containers.list(filters={"label": [f"{LABEL_OWNER}={owner}", f"{LABEL_ROLE}=helper"]})
            killed = client.containers.list(all=True, filters={"label": [f"{LABEL_OWNER}={owner}",
                                                                       f"{LABEL_ROLE}=kafka"], "status": "exited"})
            assert [c.name.rsplit("-", 2)[-2:] for c in paused] == [["projector", "1"]], paused
            assert any("netem" in c.name for c in helpers), [c.name for c in helpers]
            assert killed, "the killed broker was not seen"
            if how == "sigint":
                proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=EXIT_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    log = log_path.read_text()
    assert rc in (1, 2), f"inner run should fail or be interrupted, got {rc}:\n{log[-3000:]}"
    if how == "timeout":
        assert "Timeout" in log, log[-3000:]
    faults_log = (tmp_path / "faults.log").read_text()
    missing = [h for h in HEALED if h not in faults_log]
    assert not missing, f"not healed: {missing}\n{faults_log[-3000:]}"
    assert "heal failed" not in faults_log and "healing" not in faults_log, faults_log[-3000:]
    containers, networks, volumes = _owned(client, owner)
    assert not containers and not networks and not volumes, f"left behind: {containers} {networks} {volumes}"
    assert not _host_chaos_chains(), _host_chaos_chains()
