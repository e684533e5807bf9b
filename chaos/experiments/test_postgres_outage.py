"""The sinks lose Postgres for a while (their link refuses connections), then get it back.

A correct sink rolls back, restarts from its last committed offset and re-applies: nothing lost,
nothing applied twice, converged within the bound; the client sees no error (Kafka buffers). A
sink that commits offsets before writing, or lets the client auto-commit, loses the events of
every batch the outage broke.
"""

import pytest

from chaos.experiments import common
from chaos.faults import LinkDown

pytestmark = pytest.mark.experiment

OUTAGE_S = 6.0


def scenario(experiment, defects=()):
    return common.run(experiment, LinkDown("sink->postgres"), defects=defects, budgets=common.RIDE_OUT,
                      during_s=OUTAGE_S)


def check(result):
    result.assert_ok()


def test_postgres_outage(experiment):
    check(scenario(experiment))
