"""Inner run of ``test_cleanup.py`` (not collected by default: it holds its faults until interrupted).

It deploys a pipeline, injects one fault of each kind and then holds them all, until the outer test
interrupts the run (SIGINT, or a pytest-timeout expiry). The toxic is held in a ``with`` block (healed
by its ``finally``); the others are left to the session's safety net, as a crashed test would leave
them: a partition (iptables rules in kafka-3's namespace), a paused projector, netem on kafka-2 (a
helper container running chaos-netem), a killed broker and a full broker disk. Every heal is logged to
``$CHAOS_SCENARIO_DIR/faults.log``; ``$CHAOS_SCENARIO_DIR/active`` says when all are active.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from chaos.env import Environment
from chaos.faults import DiskFull, Isolate, KillAndRestart, Latency, NetEm, Pause

pytestmark = pytest.mark.integration

HOLD_S = 600.0  # held until interrupted; the outer test never lets it run out


def test_faults_active_when_interrupted(chaos_env: Environment) -> None:
    out = Path(os.environ["CHAOS_SCENARIO_DIR"])
    handler = logging.FileHandler(out / "faults.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("chaos.faults")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    env = chaos_env
    env.deploy("interrupted")
    with Latency("ingest-kafka-*", 200).active(env):
        Isolate("kafka-3").inject(env)
        Pause("projector-1").inject(env)
        NetEm("kafka-2", delay_ms=50, loss_pct=5).inject(env)
        DiskFull("kafka-2", leave_bytes=1 << 20).inject(env)
        KillAndRestart("kafka-1").inject(env)
        (out / "active").write_text("all faults active\n")
        time.sleep(HOLD_S)  # holding the faults (not waiting for a state): the interruption lands here
