"""The sinks lose Kafka for a while: their links refuse connections and drop open ones.

Whatever a sink had already fetched it still writes to Postgres, but its offset commit fails, so
it restarts from the last committed offset once Kafka is back and those events are delivered again.
A correct sink recognises them by event id and applies each once; one without dedup applies them
twice. No error reaches the client (the entry service has its own links).
"""

import pytest

from chaos.experiments import common
from chaos.faults import LinkDown

pytestmark = pytest.mark.experiment

OUTAGE_S = 6.0


def scenario(experiment, defects=()):
    return common.run(experiment, LinkDown("sink->kafka"), defects=defects, budgets=common.RIDE_OUT,
                      during_s=OUTAGE_S)


def check(result):
    result.assert_ok()


def test_sink_loses_kafka(experiment):
    check(scenario(experiment))
