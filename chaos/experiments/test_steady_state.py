"""Steady state: with no fault, every acknowledged event is applied exactly once, in per-key order.

Load: the tier's load for 10 s (gate). Invariants: the whole catalogue; budget: no errors at all, and
at least 90% of the writes offered acknowledged.
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
    load = result.history.meta["load"]  # the run's own load: the tier's, less the share of calls that read
    offered = load["rate"] * (1 - load["read_share"]) * STEADY_S * load["batch_size"]
    assert result.stats["before"].ok > 0.9 * offered, \
        f"the pipeline did not carry the load: {result.stats['before'].ok} of {offered:.0f} writes acknowledged"


def test_steady_state(experiment):
    check(scenario(experiment))
