"""200 ms of latency on every entry->Kafka link for a while.

Nothing may be lost, no error may reach the client, and the latency the client measures during the
fault must be visibly higher than before it (at least LATENCY_RISE_MS more at the median). A service that
acknowledges only after the broker did is slowed by every millisecond the broker's answer is late; when the
client does not see the latency, the service answered before the broker did, so its acknowledgements
promise nothing about durability (the message says so).
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
    before, during = result.stats["before"], result.stats["during"]
    assert during.p50_ms >= before.p50_ms + LATENCY_RISE_MS, (
        f"the entry service answers before the broker does: {TOXIC_MS} ms added to every link from it to "
        f"Kafka did not reach the client (median latency {before.p50_ms} ms before, {during.p50_ms} ms during); "
        "an acknowledgement that does not wait for the broker's is not a promise that the event is durable")
    result.assert_ok()


def test_entry_kafka_latency(experiment):
    check(scenario(experiment))
