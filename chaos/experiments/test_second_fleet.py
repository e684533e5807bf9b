"""A second sink fleet overlaps the live one on the same tables (blue/green deployment, backfill),
while the database answers slowly (the extra load of a backfill often does that).

A new fleet in its own consumer group starts from the earliest offset and writes into the live
schema while the live fleet keeps running: it replays everything already applied, then races the live
sinks at the head of the log, where both apply different events of the same key at the same
moment. The slow database (each answer ``DB_LATENCY_MS`` late) widens each transaction, so
the writers' transactions overlap often, as they do under a real backfill's load.

A correct sink dedups by event id and reads and writes a key's state in one transaction
with a version check: nothing lost, nothing applied twice, totals conserved. One that reads the state
outside its transaction overwrites the other writer's update (a lost update: conservation fails), and
one without dedup applies every event twice.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Latency, Schedule, SecondFleet, Step

pytestmark = pytest.mark.experiment

OVERLAP_S = 10.0  # long enough for the new fleet to join, catch up and race at the head
DB_LATENCY_MS = 50


def scenario(experiment, defects=()):
    overlap = Schedule([Step(0, Latency("sink->postgres", DB_LATENCY_MS), OVERLAP_S),
                        Step(0, SecondFleet(replicas=1), OVERLAP_S)])
    return common.run(experiment, overlap, defects=defects, budgets=common.RIDE_OUT, during_s=OVERLAP_S)


def check(result):
    result.assert_ok()


def test_second_fleet(experiment):
    check(scenario(experiment))
