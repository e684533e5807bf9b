"""The broker coordinating the first pricer's transactions is killed, then started again.

A pipeline's own experiment, beside the shipped catalogue: it names the orders pipeline's parts by their own
names (the pricer's transactional id, ``pricer-<deployment>-1``). While the coordinator is down the pricer's
transactions cannot begin or commit; after the brokers fence the dead one (the broker session timeout) the
transaction log's partition gets a new leader, the pricer's producer finds the new coordinator and goes on,
aborting what was open. Nothing is lost, duplicated or applied from an aborted transaction, and the client
sees no error (the entry service does not use transactions).

    uv run pytest examples/orders/experiments --chaos-pipeline=examples.orders.adapter:PIPELINE
"""

import pytest

from chaos.experiments import common
from chaos.faults import CoordinatorOf, KillAndRestart

pytestmark = pytest.mark.experiment


def scenario(experiment, defects=()):
    fault = KillAndRestart(CoordinatorOf("pricer-{deployment}-1", "transaction"))
    return common.run(experiment, fault, defects=defects, budgets=common.RIDE_OUT)


def check(result):
    result.assert_ok()


def test_pricer_transaction_coordinator_killed(experiment):
    check(scenario(experiment))
