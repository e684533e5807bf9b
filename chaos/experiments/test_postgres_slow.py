"""Postgres answers the sinks 100 ms later (its answers delayed) for a while.

The sinks fall behind and catch up: nothing lost or doubled, converged within the bound after
the heal, and no error reaches the client.
"""

import pytest

from chaos.experiments import common
from chaos.faults import Latency

pytestmark = pytest.mark.experiment

DB_LATENCY_MS = 100


def scenario(experiment, defects=()):
    return common.run(experiment, Latency("sink->postgres", DB_LATENCY_MS), defects=defects,
                      budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_postgres_slow(experiment):
    check(scenario(experiment))
