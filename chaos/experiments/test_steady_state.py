"""Steady state: with no fault, every acknowledged event is applied exactly once, in per-key order.

Load: the tier's load for 10 s (gate). Invariants: the whole catalogue; budget: no errors at all, and
at least 90% of the offered load acknowledged.
"""

import pytest

from chaos.checkers import Budget
from chaos.experiments import common

pytestmark = pytest.mark.experiment

STEADY_S = 10.0
BUDGETS = {"before": Budget(max_error_rate=0.0)}


def scenario(experiment, defects=()):
    return common.run(experiment, None, defects=defects, budgets=BUDGETS, before_s=STEADY_S)


def check(result):
    result.assert_ok()
    offered = common.GATE_LOAD.rate * STEADY_S * common.GATE_LOAD.batch_size
    assert result.stats["before"].ok > 0.9 * offered, "the pipeline did not carry the load"


def test_steady_state(experiment):
    check(scenario(experiment))
