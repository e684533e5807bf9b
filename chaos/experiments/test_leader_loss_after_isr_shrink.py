"""The leader of partition 0 loses its followers on the replication path until the ISR is the leader alone,
under load; then the leader is killed, and later started again (Jepsen's classic Kafka data loss).

The followers are cut from the leader on the brokers' replication listener only: the controller quorum
still reaches every broker, so nobody is fenced, and the leader goes on taking writes while its followers
fall behind and leave the ISR. With ``min.insync.replicas`` 2 those writes are refused (the producer
retries) and, with unclean elections off, the partition waits for its old leader: clients see errors and
unknown outcomes, nothing acknowledged is lost. A topic configured to acknowledge with the leader alone and
to elect a replica that is not in sync loses every write the old leader acknowledged after the ISR shrank.
"""

import pytest

from chaos.experiments import common
from chaos.faults import LeaderLossAfterIsrShrink

pytestmark = pytest.mark.experiment


def scenario(experiment, defects=()):
    return common.run(experiment, LeaderLossAfterIsrShrink(partition=0), defects=defects, budgets=common.RECOVER)


def check(result):
    result.assert_ok()


def test_leader_lost_after_its_isr_shrank(experiment):
    check(scenario(experiment))
