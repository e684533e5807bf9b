"""Every broker is restarted in turn (graceful stop, start, wait for the full ISR), under load.

The operation every Kafka upgrade performs: leadership moves off each broker before it stops. Nothing
lost or doubled; errors stay within budget; the pipeline converges after the last restart.
"""

import pytest

from chaos.experiments import common
from chaos.faults import RollingRestart

pytestmark = pytest.mark.experiment

ROLLING_BUDGET_S = 0.0  # the fault runs until the last broker is back; no extra time


def scenario(experiment, defects=()):
    return common.run(experiment, RollingRestart(), defects=defects, budgets=common.RECOVER,
                      during_s=ROLLING_BUDGET_S)


def check(result):
    result.assert_ok()


def test_rolling_restart_of_brokers(experiment):
    check(scenario(experiment))
