"""The log disk of the leader of partition 0 fills up, then is freed (and the broker started again).

A broker that cannot write marks its log directory offline and stops leading; the others take over.
Produce errors may reach the entry service, but nothing acknowledged is lost or doubled, and the
pipeline converges after the space is freed.
"""

import pytest

from chaos.experiments import common
from chaos.faults import DiskFull, LeaderOf

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    return common.run(experiment, DiskFull(LeaderOf(partition=0)), defects=defects, budgets=common.RECOVER)


def check(result):
    result.assert_ok()


def test_broker_disk_full(experiment):
    check(scenario(experiment))
