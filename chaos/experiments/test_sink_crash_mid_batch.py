"""A sink replica is killed in the middle of a batch, then restarted.

To land the kill inside a batch every time, the answers on the sinks' Kafka link are first
delayed by COMMIT_DELAY_MS, so each sink spends most of its time between handing a batch's two
commits (database, offsets) and hearing back; the kill lands there; the link heals; the sink
starts again and its partitions are consumed again from the last committed offset. A correct
sink applies every event once. One that commits offsets before writing loses the batch it was
killed in. (A redelivered batch is not guaranteed here, because the offset commit request reaches the
broker before its delayed answer: no_dedup is caught by test_sink_kafka_down instead.)
"""

import pytest

from chaos.experiments import common
from chaos.faults import KillAndRestart, Latency, Schedule, Service, Step

pytestmark = pytest.mark.experiment

COMMIT_DELAY_MS = 1500  # sink<-Kafka answers delayed: commits hang after each DB commit
KILL_AT_S = 3.0  # into the slowdown: at least one batch is between its two commits
DOWN_S = 3.0  # the sink stays dead this long
SLOW_S = 7.0


def schedule() -> Schedule:
    return Schedule([
        Step(at_s=0.0, fault=Latency("sink->kafka", COMMIT_DELAY_MS), duration_s=SLOW_S),
        Step(at_s=KILL_AT_S, fault=KillAndRestart(Service("sink", 1)), duration_s=DOWN_S),
    ])


def scenario(experiment, defects=()):
    return common.run(experiment, schedule(), defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_sink_crash_between_db_and_offset_commit(experiment):
    check(scenario(experiment))
