"""Kafka's answers to the entry service are dropped for a while (requests still arrive and are written).

The producer times out and sends the same batches again once answers flow. An idempotent producer's
retries are recognised by the brokers, so each event is in the topic once; a producer without
idempotence writes them twice. Nothing acknowledged may be lost, and errors stay within budget (the
delivery timeout is longer than the fault).
"""

import pytest

from chaos.experiments import common
from chaos.faults import Toxic

pytestmark = pytest.mark.experiment

FAULT_S = 6.0


def scenario(experiment, defects=()):
    fault = Toxic("entry->kafka", "timeout", {"timeout": 0}, stream="downstream")
    return common.run(experiment, fault, defects=defects, budgets=common.RECOVER, during_s=FAULT_S)


def check(result):
    result.assert_ok()


def test_entry_kafka_lost_acks(experiment):
    check(scenario(experiment))
