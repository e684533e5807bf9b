"""The entry service's packets are lost (10%) and delayed (50 ms +- 20 ms) on its network interface.

TCP retransmits; produce requests slow down but complete within the delivery timeout. Nothing lost or
doubled, no error reaches the client, and the latency during the fault is visibly higher.
"""

import pytest

from chaos.experiments import common
from chaos.faults import NetEm, Service

pytestmark = pytest.mark.experiment

LOSS_PCT = 10.0
DELAY_MS = 50


def scenario(experiment, defects=()):
    fault = NetEm(Service("entry"), delay_ms=DELAY_MS, jitter_ms=20, loss_pct=LOSS_PCT)
    return common.run(experiment, fault, defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()
    assert result.stats["during"].p50_ms > result.stats["before"].p50_ms, "the packet loss did not show"


def test_entry_packet_loss_and_delay(experiment):
    check(scenario(experiment))
