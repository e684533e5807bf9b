"""The leader of partition 0 is killed with SIGKILL mid-load, then started again.

The entry service's idempotent, acks=all producer retries onto the new leader within its delivery timeout:
nothing acknowledged is lost, nothing is applied twice, the pipeline converges within the bound after the
restart, and once the broker is back the client sees errors on under 10% of its calls (``RECOVER``).
"""

import pytest

from chaos.experiments import common
from chaos.faults import KillAndRestart, LeaderOf

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    return common.run(experiment, KillAndRestart(LeaderOf(partition=0)), defects=defects, budgets=common.RECOVER)


def check(result):
    result.assert_ok()
    assert result.stats["after"].ok > 0, "no event was acknowledged after the broker came back"


def test_leader_kill_and_restart(experiment):
    check(scenario(experiment))
