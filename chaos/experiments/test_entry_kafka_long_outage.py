"""The entry service loses Kafka for longer than its producer's delivery timeout, then gets it back.

Every other fault of the catalogue is shorter than the clients' retry budgets, so a service that
acknowledges before the broker does costs nothing visible there: the producer retries and the record gets
through. Here the outage outlasts ``producer_delivery_timeout_ms`` (the entry's producer gives up on what it
holds), so an early acknowledgement becomes an acknowledged event that never reaches Kafka. A correct
service answers only once the broker did: its clients see errors (unknown outcomes) while Kafka is away,
nothing acknowledged is lost, and it serves cleanly again after the heal.
"""

import pytest

from chaos.experiments import common
from chaos.faults import LinkDown

pytestmark = pytest.mark.experiment

BEYOND_S = 8.0  # the outage lasts the delivery timeout plus this


def outage_s(settings):
    return settings.producer_delivery_timeout_ms / 1000 + BEYOND_S


def scenario(experiment, defects=()):
    return common.run(experiment, LinkDown("entry->kafka"), defects=defects, budgets=common.RECOVER,
                      during_s=outage_s)


def check(result):
    result.assert_ok()


def test_entry_loses_kafka_beyond_the_delivery_timeout(experiment):
    check(scenario(experiment))
