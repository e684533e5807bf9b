"""A projector replica is killed in the middle of a batch, then restarted.

To land the kill inside a batch every time, the answers on the projectors' Kafka link are first
delayed by COMMIT_DELAY_MS, so each projector spends most of its time between handing a batch's two
commits (database, offsets) and hearing back; the kill lands there; the link heals; the projector
starts again and its partitions are consumed again from the last committed offset. A correct
projector applies every event once. One that commits offsets before writing loses the batch it was
killed in. (A redelivered batch is not guaranteed here, because the offset commit request reaches the
broker before its delayed answer: no_dedup is caught by test_projector_kafka_down instead.)
"""

import pytest

from chaos.faults import KillAndRestart, Latency, Projector, Schedule, Step
from experiments import common

pytestmark = pytest.mark.experiment

CATCHES = ("commit_before_write",)
COMMIT_DELAY_MS = 1500  # projector<-Kafka answers delayed: commits hang after each DB commit
KILL_AT_S = 3.0  # into the slowdown: at least one batch is between its two commits
DOWN_S = 3.0  # the projector stays dead this long
SLOW_S = 7.0


def schedule() -> Schedule:
    return Schedule([
        Step(at_s=0.0, fault=Latency("projector-kafka-*", COMMIT_DELAY_MS), duration_s=SLOW_S),
        Step(at_s=KILL_AT_S, fault=KillAndRestart(Projector(1)), duration_s=DOWN_S),
    ])


def scenario(experiment, defects=()):
    return common.run(experiment, schedule(), defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_projector_crash_between_db_and_offset_commit(experiment):
    check(scenario(experiment))
