"""The leader of partition 0 is killed with SIGKILL mid-load, then started again.

The ingest's idempotent, acks=all producer must retry onto the new leader; nothing acknowledged may be
lost and nothing applied twice; the pipeline must converge within the bound after the restart.
"""

import pytest

from chaos.faults import KillAndRestart, LeaderOf
from experiments.common import AFTER_S, BEFORE_S, DURING_S, GATE_LOAD

pytestmark = pytest.mark.experiment


def test_leader_kill_and_restart(experiment):
    result = experiment(load=GATE_LOAD).run(fault=KillAndRestart(LeaderOf(partition=0)),
                                            before_s=BEFORE_S, during_s=DURING_S, after_s=AFTER_S)
    result.assert_ok()
    assert result.stats["after"].ok > 0, "no event was acknowledged after the broker came back"
