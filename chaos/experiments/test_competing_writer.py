"""A second writer changes the projection's rows while the sinks write them: an operator's adjustments.

Back-office corrections, a second service owning part of the row, a backfill writing deltas: another
writer adds to a row's value (bumping its version) and journals what it added, in the same
transaction, while the sinks apply events to the same rows. The database answers slowly
(``DB_LATENCY_MS`` on every sink round trip, as under a busy database), so a sink's read of a row and
its write of the row are far enough apart for adjustments to land in between.

A correct sink notices the row changed (its version check fails) and redoes the batch on the new
row: every row then equals its events plus its adjustments. One that writes back absolute values
computed from a row it read without a working version check overwrites the adjustment: a lost update,
seen by conservation (the model).
"""

import pytest

from chaos.experiments import common
from chaos.faults import CompetingWriter, Latency, Schedule, Step

pytestmark = pytest.mark.experiment

ADJUSTMENTS_PER_S = 25.0
DB_LATENCY_MS = 50
WRITE_S = 8.0


def scenario(experiment, defects=()):
    writers = Schedule([Step(0, Latency("sink->postgres", DB_LATENCY_MS), WRITE_S),
                        Step(0, CompetingWriter(rate=ADJUSTMENTS_PER_S), WRITE_S)])
    return common.run(experiment, writers, defects=defects, budgets=common.RIDE_OUT, during_s=WRITE_S,
                      requires=("database.contended_table", "database.value_column"))


def check(result):
    result.assert_ok()


def test_competing_writer(experiment):
    check(scenario(experiment))
