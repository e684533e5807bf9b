"""The leader of partition 0 is frozen (every process paused) for a while, then thawed.

A stop-the-world pause: the broker neither answers nor knows time passed. The others fence it after
the broker session timeout; the producer's retries move to the new leader. No error reaches the
client, nothing is lost or doubled, and the pipeline converges after the thaw.
"""

import pytest

from chaos.experiments import common
from chaos.faults import LeaderOf, Pause

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    return common.run(experiment, Pause(LeaderOf(partition=0)), defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_paused_leader(experiment):
    check(scenario(experiment))
