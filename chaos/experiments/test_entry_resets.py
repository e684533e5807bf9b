"""Connections on the client->entry link are reset while load runs.

The client sees errors (classified as unknown: the request may or may not have reached the service),
and the invariants still hold: an unknown operation is applied at most once, nothing acknowledged is
lost, nothing appears that was never sent. After the heal the client is served cleanly again.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Toxic

pytestmark = pytest.mark.experiment

FAULT_S = 5.0


def scenario(experiment, defects=()):
    fault = Toxic("client->entry", "reset_peer", {"timeout": 0}, stream="upstream")
    return common.run(experiment, fault, defects=defects, budgets=common.RECOVER, during_s=FAULT_S)


def check(result):
    result.assert_ok()
    during = result.stats["during"]
    assert during.unknown + during.fail > 0, "no call failed: the resets did not reach the client"


def test_entry_connection_resets(experiment):
    check(scenario(experiment))
