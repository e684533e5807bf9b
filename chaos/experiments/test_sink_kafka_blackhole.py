"""Every sink->Kafka link becomes a black hole (data dropped, connections kept open) for a while.

The sinks' offset commits and fetches hang; their database commits have already happened. When
the links come back the group rebalances and some batches are delivered again: a correct sink
recognises them by event id and applies each once. One without dedup applies them twice.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Toxic

pytestmark = pytest.mark.experiment



def scenario(experiment, defects=()):
    fault = Toxic("sink->kafka", "timeout", {"timeout": 0}, stream="downstream")
    return common.run(experiment, fault, defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_sink_kafka_blackhole(experiment):
    check(scenario(experiment))
