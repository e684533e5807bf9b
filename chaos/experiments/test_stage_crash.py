"""Every replica of a consume-transform-produce stage (role ``stage``) is killed in the middle of its work,
three times, while the stage's links to the brokers are slow.

A stage that reads, transforms and writes with Kafka transactions (``read_committed`` in, its input offsets
sent with its output in one transaction) commits a batch's output and its progress together or not at all:
the restarted stage aborts the killed one's open transaction and does the batch again, so each record is
in the output topic once among the committed records, and a reader that reads committed never sees the
aborted attempt. A stage that produces and commits its offsets separately writes the records of the batch
it was killed in twice (duplicates in its output topic); a reader that reads uncommitted applies records of
the aborted transactions (phantoms: applied from records that were never committed). Skipped for a
pipeline without a stage (the reference pipeline has none).

Each kill waits until the brokers report one of the deployment's transactions open, then kills every
replica (``KillInTransaction``; a stage without transactions is killed when the wait runs out). The
brokers' answers to the stage are delayed (a slow link, as across zones), so a transaction spans several
round trips and is still open when the kill lands; on a fast link it lasts milliseconds. The stage stays
dead longer than its group's session timeout, so that readers downstream have read what it left in the log
before its replacement writes the batch again: a reader that applies the later, committed copy first and
then skips the aborted one as a redelivery hides the defect.
"""

import pytest

from chaos.experiments import common
from chaos.faults import KillInTransaction, Latency, Schedule, Services, Step

pytestmark = pytest.mark.experiment

KILLS = 3
EVERY_S = 16.0  # dead DOWN_S, then rejoins its group and works several seconds before the next kill
DOWN_S = 6.0  # dead this long (its transactional id fences the killed instance when it starts again)
SLOW_MS = 300  # added to every answer a broker sends the stage
SLOW_FIRST_S = 2.0  # the link is slow this long before the first kill (transactions in flight are slow ones)


def scenario(experiment, defects=()):
    during = SLOW_FIRST_S + KILLS * EVERY_S
    steps = [Step(0, Latency("stage->kafka", SLOW_MS, stream="downstream"), during)]
    steps += [Step(SLOW_FIRST_S + i * EVERY_S, KillInTransaction(Services("stage")), DOWN_S) for i in range(KILLS)]
    return common.run(experiment, Schedule(steps), defects=defects, budgets=common.RIDE_OUT, during_s=during,
                      requires=("stage",))


def check(result):
    result.assert_ok()


def test_stage_killed_mid_transaction(experiment):
    check(scenario(experiment))
