"""Another writer locks every row of the projection and bumps its version (an optimistic-lock storm).

The sinks' updates wait on the locks and, once released, find the version changed: every one of
those batches conflicts. A correct sink retries the batch and applies each event once; one that
drops a conflicting update loses it (the per-key totals no longer match the applied events).
"""

import pytest

from chaos.experiments import common
from chaos.faults import HoldRowLocks

pytestmark = pytest.mark.experiment

LOCK_S = 4.0  # below the pipeline's statement timeout (10 s): conflicts, not cancellations


def scenario(experiment, defects=()):
    return common.run(experiment, HoldRowLocks(write=True), defects=defects, budgets=common.RIDE_OUT,
                      during_s=LOCK_S, requires=("database.contended_table",))


def check(result):
    result.assert_ok()


def test_optimistic_lock_storm(experiment):
    check(scenario(experiment))
