"""A sink replica is frozen for longer than its session timeout, then thawed (a zombie consumer).

While it is frozen the group gives its partitions to the other replica, which goes on from the last
committed offset. When it thaws it may still hold fetched records and finish a batch for partitions
that are no longer its own: two writers on the same keys for a moment. A correct sink's
optimistic version check turns that into a conflict and a retry, and its dedup skips the events the
other replica already applied: nothing lost, nothing applied twice, totals conserved.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Pause, Service

pytestmark = pytest.mark.experiment

FROZEN_S = 10.0  # longer than the sinks' session timeout (6 s)


def scenario(experiment, defects=()):
    return common.run(experiment, Pause(Service("sink", 1)), defects=defects, budgets=common.RIDE_OUT,
                      during_s=FROZEN_S)


def check(result):
    result.assert_ok()


def test_zombie_sink(experiment):
    check(scenario(experiment))
