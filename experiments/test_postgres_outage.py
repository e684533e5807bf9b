"""The projectors lose Postgres for a while (their link refuses connections), then get it back.

A correct projector rolls back, restarts from its last committed offset and re-applies: nothing lost,
nothing applied twice. A projector that commits offsets before writing loses the events of every batch
the outage broke; ``tests/integration/test_detection.py`` shows this experiment catching it.
"""

import pytest

from chaos.faults import LinkDown
from experiments.common import AFTER_S, BEFORE_S, GATE_LOAD

pytestmark = pytest.mark.experiment

OUTAGE_S = 6.0


def postgres_outage(experiment, defects=()):
    return experiment(defects=defects, load=GATE_LOAD).run(
        fault=LinkDown("projector-pg"), before_s=BEFORE_S, during_s=OUTAGE_S, after_s=AFTER_S)


def test_postgres_outage(experiment):
    postgres_outage(experiment).assert_ok()
