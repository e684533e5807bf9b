"""200 ms of latency on every entry->Kafka link for a while.

Nothing may be lost, no error may reach the client, and no call sent while the latency is in place may be
acknowledged in less than TOXIC_MS: a service that acknowledges only after the broker did waits for the
broker's answer, and every byte of that answer is TOXIC_MS late. A faster acknowledgement was given before
the broker answered, so it promises nothing about durability (the message says so).
"""

import pytest

from chaos.experiments import common
from chaos.faults import Latency

pytestmark = pytest.mark.experiment

TOXIC_MS = 200


def scenario(experiment, defects=()):
    return common.run(experiment, Latency("entry->kafka", TOXIC_MS), defects=defects, budgets=common.RIDE_OUT)


def check(result):
    fastest = common.fastest_ack_ms(result)
    assert fastest is not None, "no call was acknowledged while the latency was in place"
    assert fastest >= TOXIC_MS, (
        f"the entry service answers before the broker does: with {TOXIC_MS} ms added to every link from it to "
        f"Kafka, a call was acknowledged in {fastest:.1f} ms; an acknowledgement that does not wait for the "
        "broker's is not a promise that the event is durable")
    result.assert_ok()


def test_entry_kafka_latency(experiment):
    check(scenario(experiment))
