"""A consume-transform-produce stage (role ``stage``) is killed in the middle of its work, three times.

A stage that reads, transforms and writes with Kafka transactions (``read_committed`` in, its input offsets
sent with its output in one transaction) commits a batch's output and its progress together or not at all:
the restarted stage aborts the killed one's open transaction and does the batch again, so each record is
in the output topic once among the committed records, and a reader that reads committed never sees the
aborted attempt. A stage that produces and commits its offsets separately writes the records of the batch
it was killed in twice (duplicates in its output topic); a reader that reads uncommitted applies records of
the aborted transactions (phantoms: applied from records that were never committed). Skipped for a
pipeline without a stage (the reference pipeline has none).
"""

import pytest

from chaos.experiments import common
from chaos.faults import KillAndRestart, Schedule, Service, Step

pytestmark = pytest.mark.experiment

KILLS = 3  # each kill has a good chance to land inside a transaction under load; three make it certain
EVERY_S = 4.0
DOWN_S = 2.0  # dead this long, then started again (its transactional id fences the killed instance)


def scenario(experiment, defects=()):
    kills = Schedule([Step(i * EVERY_S, KillAndRestart(Service("stage")), DOWN_S) for i in range(KILLS)])
    return common.run(experiment, kills, defects=defects, budgets=common.RIDE_OUT, during_s=KILLS * EVERY_S,
                      requires=("stage",))


def check(result):
    result.assert_ok()


def test_stage_killed_mid_transaction(experiment):
    check(scenario(experiment))
