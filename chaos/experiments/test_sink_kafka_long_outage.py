"""The sinks lose Kafka for longer than their session timeout and poll interval, then get it back.

Longer than ``consumer_session_timeout_ms`` and than a consumer's usual ``max.poll.interval.ms`` (30 s): the
group expires the sinks' memberships while they cannot reach the brokers, their assignments are revoked, and
when the link returns they rejoin from the last committed offsets. A correct sink loses nothing, applies
nothing twice and catches up; the client sees no error (it writes to Kafka through its own links). Nightly
tier: the outage alone lasts 35 s.
"""

import pytest

from chaos.experiments import common
from chaos.faults import LinkDown

pytestmark = [pytest.mark.experiment, pytest.mark.nightly]

OUTAGE_S = 35.0  # > the session timeout (6 s) and > a 30 s max.poll.interval.ms


def scenario(experiment, defects=()):
    return common.run(experiment, LinkDown("sink->kafka"), defects=defects, budgets=common.RIDE_OUT,
                      during_s=OUTAGE_S)


def check(result):
    result.assert_ok()


def test_sink_loses_kafka_beyond_its_session(experiment):
    check(scenario(experiment))
