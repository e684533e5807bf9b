"""Ground truth: what Postgres and the pipeline's topics really hold after a run.

Readers go straight to the servers (Postgres' published port, Kafka's EXTERNAL listener), never through
Toxiproxy, so a fault left on a link cannot distort the verdict. What the rows and records *mean* is the
adapter's (:class:`chaos.adapter.TruthReader`): its SQL over the deployment's schema, and its ``decode``
of each record. A record it cannot decode is counted (the ``decoding`` verdict), never a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from chaos.adapter import TruthReader, UndecodableRecord
from chaos.checkers import AppliedRow, KafkaRecord
from chaos.env import kafka as K

if TYPE_CHECKING:
    from chaos.env import Deployment, Environment

class SchemaDb:
    """The deployment's schema, read-only, straight to Postgres (``search_path`` set to the schema)."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo = conninfo
        self.schema = schema

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            return list(conn.execute(statement.encode(), params).fetchall())  # type: ignore[arg-type]


@dataclass(frozen=True)
class GroundTruth:
    applied: list[AppliedRow]
    records: dict[str, list[KafkaRecord]]  # logical topic -> committed records, decoded
    undecodable: dict[str, list[dict[str, Any]]]  # logical topic -> one entry per record it could not decode
    state: Any  # the adapter's model state
    entry_topic: str
    adjustments: dict[str, int] = field(default_factory=dict)  # key -> what a CompetingWriter committed

    @property
    def kafka(self) -> list[KafkaRecord]:
        """The entry topic's records (where acknowledged writes land)."""
        return self.records.get(self.entry_topic, [])


def decode_topic(reader: TruthReader, topic: str,
                 raw: Sequence[K.RawRecord]) -> tuple[list[KafkaRecord], list[dict[str, Any]]]:
    """Decode one topic's records with the adapter; undecodable ones are listed, never raised."""
    out: list[KafkaRecord] = []
    bad: list[dict[str, Any]] = []
    for r in raw:
        try:
            ref = reader.decode(topic, r.key, r.value, r.headers)
            out.append(KafkaRecord(event_id=ref.event_id, key=ref.key, partition=r.partition, offset=r.offset))
        except UndecodableRecord as exc:
            bad.append({"partition": r.partition, "offset": r.offset, "why": str(exc)[:200]})
        except Exception as exc:  # an adapter bug is reported as such, not as a crash of the run
            bad.append({"partition": r.partition, "offset": r.offset,
                        "why": f"decode raised {exc.__class__.__name__}: {exc}"[:200]})
    return out, bad


def read_all(env: Environment, dep: Deployment, timeout_s: float) -> GroundTruth:
    """Applied rows, the adapter's state, and every committed record of every topic, decoded."""
    p = dep.pipeline
    db = SchemaDb(env.endpoints.pg_conninfo(), dep.schema)
    records: dict[str, list[KafkaRecord]] = {}
    undecodable: dict[str, list[dict[str, Any]]] = {}
    for logical, deployed in dep.topics.items():
        raw = K.read_records(env.endpoints.kafka_external, deployed, timeout_s)
        records[logical], undecodable[logical] = decode_topic(p.truth, logical, raw)
    from chaos.faults.database import read_adjustments

    return GroundTruth(applied=p.truth.applied(db), records=records, undecodable=undecodable,
                       state=p.truth.state(db), entry_topic=p.entry_topic.name,
                       adjustments=read_adjustments(db.query))


def db_of(env: Environment, dep: Deployment) -> SchemaDb:
    return SchemaDb(env.endpoints.pg_conninfo(), dep.schema)


def applied_ids(env: Environment, dep: Deployment) -> set[str]:
    return dep.pipeline.truth.applied_ids(db_of(env, dep))


def count_applied(env: Environment, dep: Deployment) -> int:
    return dep.pipeline.truth.count_applied(db_of(env, dep))


def consumer_lag(env: Environment, dep: Deployment, timeout_s: float, *, exact: bool = False) -> int:
    """Offsets past the committed offsets of every consuming service's group (``exact``: committed records
    not yet consumed, see :func:`chaos.env.kafka.group_lag`)."""
    return sum(K.group_lag(env.endpoints.kafka_external, group, topics, timeout_s, exact=exact)
               for group, topics in dep.consumers())
