"""200 ms of latency on every entry->Kafka link for a while.

Nothing may be lost, no error may reach the client, and the latency the client measures during the
fault must be visibly higher than before it (at least LATENCY_RISE_MS more at the median): the fault
really reached the pipeline.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Latency

pytestmark = pytest.mark.experiment

TOXIC_MS = 200
LATENCY_RISE_MS = 150


def scenario(experiment, defects=()):
    return common.run(experiment, Latency("entry->kafka", TOXIC_MS), defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()
    before, during = result.stats["before"], result.stats["during"]
    assert during.p50_ms >= before.p50_ms + LATENCY_RISE_MS, (
        f"median latency before {before.p50_ms} ms, during {during.p50_ms} ms: the toxic did not show")


def test_entry_kafka_latency(experiment):
    check(scenario(experiment))
