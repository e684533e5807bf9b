"""The experiments can fail: a real defect switched on in the pipeline is caught, for the right reason.

``commit_before_write`` makes the projector commit a batch's offsets before its database transaction.
During a Postgres outage the transaction fails, the projector restarts from the committed offsets, and
the batch is skipped for good: acknowledged events sit in Kafka but never reach Postgres. The
postgres-outage experiment must report exactly that (lost, in Kafka but not in the database), and
nothing else that would point elsewhere, while the correct pipeline passes the same experiment.
"""

import pytest

from chaos.experiments.test_postgres_outage import scenario as postgres_outage

pytestmark = pytest.mark.integration


def test_offset_committed_before_write_is_caught(experiment):
    broken = postgres_outage(experiment, defects=("commit_before_write",))
    assert not broken.ok, "the experiment passed a pipeline that commits offsets before writing"
    lost = broken.verdict("lost")
    assert not lost.ok, f"expected lost events, verdicts failed: {broken.failed()}"
    assert lost.counts["in_kafka_not_in_db"] > 0
    assert lost.counts["never_in_kafka"] == 0, "the events did reach Kafka: the loss is the projector's"
    assert broken.verdict("duplicates").ok and broken.verdict("phantoms").ok

    correct = postgres_outage(experiment)
    correct.assert_ok()
