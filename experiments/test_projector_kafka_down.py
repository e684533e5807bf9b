"""The projectors lose Kafka for a while: their links refuse connections and drop open ones.

Whatever a projector had already fetched it still writes to Postgres, but its offset commit fails, so
it restarts from the last committed offset once Kafka is back and those events are delivered again.
A correct projector recognises them by event id and applies each once; one without dedup applies them
twice. No error reaches the client (ingest has its own links).
"""

import pytest

from chaos.faults import LinkDown
from experiments import common

pytestmark = pytest.mark.experiment

CATCHES = ("no_dedup",)
OUTAGE_S = 6.0


def scenario(experiment, defects=()):
    return common.run(experiment, LinkDown("projector-kafka-*"), defects=defects, budgets=common.RIDE_OUT,
                      during_s=OUTAGE_S)


def check(result):
    result.assert_ok()


def test_projector_loses_kafka(experiment):
    check(scenario(experiment))
