"""Ground truth: what Postgres and the Kafka topic really hold after a run.

Readers go straight to the servers (Postgres' published port, Kafka's EXTERNAL listener), never
through Toxiproxy, so a fault left on a link cannot distort the verdict. The pipeline's read model is a
contract (``system_under_test/README.md``): an append-only effects table ``applied_log`` (one row per
application), the per-key aggregate ``key_state``, and records whose JSON value carries ``event_id``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from chaos.checkers import AppliedRow, KafkaRecord, KeyState
from chaos.env import kafka_client_config


@dataclass(frozen=True)
class GroundTruth:
    applied: list[AppliedRow]
    kafka: list[KafkaRecord]
    key_state: dict[str, KeyState]


def read_applied(conninfo: str, schema: str) -> list[AppliedRow]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT event_id, key, seq, amount, id FROM "{schema}".applied_log ORDER BY id').fetchall()
    return [AppliedRow(event_id=r[0], key=r[1], seq=int(r[2]), amount=int(r[3]), position=int(r[4])) for r in rows]


def count_applied(conninfo: str, schema: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".applied_log').fetchone()
    return int(row[0]) if row else 0


def applied_ids(conninfo: str, schema: str) -> set[str]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return {r[0] for r in conn.execute(f'SELECT DISTINCT event_id FROM "{schema}".applied_log')}


def read_key_state(conninfo: str, schema: str) -> dict[str, KeyState]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT key, total, event_count, version, last_seq FROM "{schema}".key_state').fetchall()
    return {r[0]: KeyState(key=r[0], total=int(r[1]), event_count=int(r[2]), version=int(r[3]),
                           last_seq=int(r[4])) for r in rows}


def _watermarks(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    md = consumer.list_topics(topic, timeout=timeout_s)
    parts = sorted(md.topics[topic].partitions)
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s) for p in parts}


def read_topic(bootstrap: str, topic: str, timeout_s: float) -> list[KafkaRecord]:
    """Every record of every partition, from the beginning up to the high watermark at call time."""
    consumer = Consumer(kafka_client_config(bootstrap, **{
        "group.id": f"chaos-verify-{time.time_ns()}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": False}))
    try:
        marks = _watermarks(consumer, topic, timeout_s)
        todo = {p: hi for p, (lo, hi) in marks.items() if hi > lo}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out: list[KafkaRecord] = []
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach the high watermarks within {timeout_s} s; "
                                   f"partitions left: {sorted(todo)}")
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                p, off, raw = msg.partition(), msg.offset(), msg.value()
                if msg.error() or p is None or off is None or raw is None:
                    continue
                value = json.loads(raw)
                out.append(KafkaRecord(event_id=value["event_id"], key=value["key"], partition=p, offset=off))
                if p in todo and off + 1 >= todo[p]:
                    del todo[p]
        return out
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topic: str, timeout_s: float) -> int:
    """Records in the topic not yet covered by the group's committed offsets."""
    consumer = Consumer(kafka_client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
    try:
        marks = _watermarks(consumer, topic, timeout_s)
        committed = consumer.committed([TopicPartition(topic, p) for p in marks], timeout=timeout_s)
        lag = 0
        for tp in committed:
            lo, hi = marks[tp.partition]
            pos = tp.offset if tp.offset >= 0 else lo
            lag += max(0, hi - pos)
        return lag
    finally:
        consumer.close()


def read_all(bootstrap: str, conninfo: str, topic: str, schema: str, timeout_s: float) -> GroundTruth:
    return GroundTruth(applied=read_applied(conninfo, schema), kafka=read_topic(bootstrap, topic, timeout_s),
                       key_state=read_key_state(conninfo, schema))
