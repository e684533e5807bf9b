"""200 ms of latency on every ingest->Kafka link for a while.

Nothing may be lost, and the latency the client measures during the fault must be visibly higher than
before it (at least LATENCY_RISE_MS more at the median): the fault really reached the pipeline.
"""

import pytest

from chaos.faults import Latency
from experiments.common import AFTER_S, BEFORE_S, DURING_S, GATE_LOAD

pytestmark = pytest.mark.experiment

TOXIC_MS = 200
LATENCY_RISE_MS = 150


def test_ingest_kafka_latency(experiment):
    result = experiment(load=GATE_LOAD).run(fault=Latency("ingest-kafka-*", TOXIC_MS),
                                            before_s=BEFORE_S, during_s=DURING_S, after_s=AFTER_S)
    result.assert_ok()
    before, during = result.stats["before"], result.stats["during"]
    assert during.p50_ms >= before.p50_ms + LATENCY_RISE_MS, (
        f"median latency before {before.p50_ms} ms, during {during.p50_ms} ms: the toxic did not show")
