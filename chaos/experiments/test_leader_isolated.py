"""The leader of partition 0 is cut off from the other brokers (iptables, both ways) for a while.

The isolated broker keeps running and keeps believing it leads; the others fence it after the broker
session timeout and elect new leaders. The entry service still reaches it through its proxy. With
acks=all it cannot satisfy min.insync.replicas, so nothing it takes alone is acknowledged and the
producer retries on the new leader: nothing lost. A producer with acks=1 or acks=0 is answered by the
isolated leader alone, and those writes are truncated when it rejoins: acknowledged, then lost.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Brokers, Isolate, LeaderOf

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    fault = Isolate(LeaderOf(partition=0), from_=Brokers())
    return common.run(experiment, fault, defects=defects, budgets=common.RECOVER)


def check(result):
    result.assert_ok()


def test_leader_isolated_from_brokers(experiment):
    check(scenario(experiment))
