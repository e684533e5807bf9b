"""Steady state: with no fault, every acknowledged event is applied exactly once, in per-key order.

Load: GATE_LOAD for 10 s. Invariants: nothing lost, nothing duplicated, no phantom, per-key order,
conservation of the per-key totals; budget: no errors at all.
"""

import pytest

from chaos.checkers import Budget
from experiments.common import GATE_LOAD

pytestmark = pytest.mark.experiment


def test_steady_state(experiment):
    result = experiment(load=GATE_LOAD).run(before_s=10.0, budgets={"before": Budget(max_error_rate=0.0)})
    result.assert_ok()
    assert result.stats["before"].ok > 0.9 * GATE_LOAD.rate * 10, "the pipeline did not carry the load"
