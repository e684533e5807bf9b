"""The entry service's packets are lost (10%) and delayed (50 ms +- 20 ms) on its network interface.

TCP retransmits; produce requests slow down but complete within the delivery timeout. Nothing lost or
doubled, no error reaches the client, and no call during the fault comes back faster than the smallest
delay its answer's packets wait (DELAY_MS - JITTER_MS): the fault reached the client's path.
"""

import pytest

from chaos.experiments import common
from chaos.faults import NetEm, Service

pytestmark = pytest.mark.experiment

LOSS_PCT = 10.0
DELAY_MS = 50
JITTER_MS = 20


def scenario(experiment, defects=()):
    fault = NetEm(Service("entry"), delay_ms=DELAY_MS, jitter_ms=JITTER_MS, loss_pct=LOSS_PCT)
    return common.run(experiment, fault, defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()
    fastest = common.fastest_ack_ms(result)
    assert fastest is not None and fastest >= DELAY_MS - JITTER_MS, \
        f"the packet loss and delay did not show: the fastest call during the fault took {fastest} ms"


def test_entry_packet_loss_and_delay(experiment):
    check(scenario(experiment))
