"""Every projector->Kafka link becomes a black hole (data dropped, connections kept open) for a while.

The projectors' offset commits and fetches hang; their database commits have already happened. When
the links come back the group rebalances and some batches are delivered again: a correct projector
recognises them by event id and applies each once. One without dedup applies them twice.
"""

import pytest

from chaos.faults import Toxic
from experiments import common

pytestmark = pytest.mark.experiment

CATCHES = ()


def scenario(experiment, defects=()):
    fault = Toxic("projector-kafka-*", "timeout", {"timeout": 0}, stream="downstream")
    return common.run(experiment, fault, defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_projector_kafka_blackhole(experiment):
    check(scenario(experiment))
