"""Kafka: the brokers' configuration, and introspection from the test process (admin, metadata, lag,
raw records), always on the EXTERNAL listener (straight to the brokers, never through Toxiproxy).

``request_metadata`` speaks one Kafka Metadata request (v4) on a socket to exactly one broker, written
here because librdkafka cannot be pinned to one broker (a client bootstrapped on broker 1 answers from
whichever broker it likes) and a partitioned or paused broker keeps serving a stale view. ``find_coordinator``
and ``list_transactions`` are written the same way: librdkafka's admin client offers neither.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from chaos.config import Settings
from chaos.env.topology import BROKERS, KAFKA_CONTROLLER, KAFKA_EXTERNAL, KAFKA_INTERNAL, Topology

KAFKA_LOG_DIR = "/var/tmp/kafka-logs"
QUORUM_STATE = f"{KAFKA_LOG_DIR}/__cluster_metadata-0/quorum-state"

KAFKA_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """Config for the test process's own Kafka clients: quiet, bounded, IPv4 loopback."""
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, "broker.address.family": "v4",
            "log.connection.close": False, "logger": logging.getLogger("chaos.kafka.client"), **extra}


def broker_properties(i: int, topology: Topology, settings: Settings, external_port: int) -> str:
    """``server.properties`` of broker ``i``: KRaft combined mode (all three are voters), one listener per
    Kafka-talking service advertised as that service's proxy, durable defaults, test-cluster timings."""
    s = settings
    voters = ",".join(f"{b}@kafka-{b}:{KAFKA_CONTROLLER}" for b in BROKERS)
    svc = list(topology.listeners.values())
    listeners = [f"INTERNAL://:{KAFKA_INTERNAL}", f"CONTROLLER://:{KAFKA_CONTROLLER}",
                 f"EXTERNAL://:{KAFKA_EXTERNAL}", *(f"{x.name}://:{x.port}" for x in svc)]
    advertised = [f"INTERNAL://kafka-{i}:{KAFKA_INTERNAL}", f"EXTERNAL://127.0.0.1:{external_port}",
                  *(f"{x.name}://toxiproxy:{x.proxy_port(i)}" for x in svc)]
    protocols = ",".join(f"{n}:PLAINTEXT" for n in ("INTERNAL", "CONTROLLER", "EXTERNAL", *(x.name for x in svc)))
    props = {
        "process.roles": "broker,controller",
        "node.id": str(i),
        "controller.quorum.voters": voters,
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": protocols,
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": KAFKA_LOG_DIR,
        # Durable defaults for a correct pipeline.
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": "3",
        "share.coordinator.state.topic.min.isr": "2",
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        # Test-cluster timings (see chaos.config): faster fencing, ISR shrink and group start.
        "broker.session.timeout.ms": str(s.kafka_broker_session_timeout_ms),
        "broker.heartbeat.interval.ms": str(s.kafka_broker_heartbeat_ms),
        "replica.lag.time.max.ms": str(s.kafka_replica_lag_time_max_ms),
        "group.initial.rebalance.delay.ms": "0",
        # an unclean election (only where a topic allows it) within a second, not after the default 5 minutes
        "unclean.leader.election.interval.ms": "1000",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "5000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.retention.check.interval.ms": "600000",
    }
    return "\n".join(f"{k}={v}" for k, v in props.items())


def broker_script(heap: str) -> str:
    """The broker container's command: write the configuration, format the storage, start the broker."""
    return (
        'printf "%s\\n" "$KAFKA_PROPERTIES" > /tmp/server.properties && '
        'printf "%s\\n" "$KAFKA_LOG4J" > /tmp/log4j2.properties && '
        'CP="/opt/kafka/libs/*"; LOG="-Dlog4j2.configurationFile=/tmp/log4j2.properties"; '
        'java -Xmx96m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC $LOG -cp "$CP" kafka.tools.StorageTool '
        'format -t "$KAFKA_CLUSTER_ID" -c /tmp/server.properties --ignore-formatted >/dev/null && '
        f'exec java -Xms{heap} -Xmx{heap} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError '
        '-Djava.awt.headless=true $LOG -cp "$CP" kafka.Kafka /tmp/server.properties'
    )


# --------------------------------------------------------------------------------------------------
# Introspection through librdkafka


def watermarks(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    md = consumer.list_topics(topic, timeout=timeout_s)
    parts = sorted(md.topics[topic].partitions)
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s) for p in parts}


def group_lag(bootstrap: str, group: str, topics: str | Sequence[str], timeout_s: float, *,
              exact: bool = False) -> int:
    """Offsets in ``topics`` past ``group``'s committed offsets (the high watermark minus the committed offset).

    A topic written in transactions ends each transaction with a commit marker that takes an offset but is
    no record; a consumer that commits "last record + 1" (most do) therefore stays one offset short of the
    high watermark forever. With ``exact``, a partition that is behind is read from the committed offset
    (``read_committed``) and only the records there count: 0 means the group has consumed everything."""
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = Consumer(client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
    try:
        behind: list[TopicPartition] = []
        lag = 0
        for topic in names:
            marks = watermarks(consumer, topic, timeout_s)
            committed = consumer.committed([TopicPartition(topic, p) for p in marks], timeout=timeout_s)
            for tp in committed:
                lo, hi = marks[tp.partition]
                pos = tp.offset if tp.offset >= 0 else lo
                if hi > pos:
                    lag += hi - pos
                    behind.append(TopicPartition(topic, tp.partition, pos))
        if exact and behind:
            return _records_after(bootstrap, behind, timeout_s)
        return lag
    finally:
        consumer.close()


def _records_after(bootstrap: str, start: list[TopicPartition], timeout_s: float) -> int:
    """Committed records from each start offset to the end of its partition."""
    consumer = Consumer(client_config(bootstrap, **{
        "group.id": f"chaos-lag-{time.time_ns()}", "enable.auto.commit": False, "enable.partition.eof": True,
        "isolation.level": "read_committed"}))
    try:
        consumer.assign(start)
        todo = {(tp.topic, tp.partition) for tp in start}
        count = 0
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == -191:  # _PARTITION_EOF
                        todo.discard((msg.topic(), msg.partition()))
                    continue
                count += 1
        return count + (1 if todo else 0)  # a partition not read to its end counts as behind
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class RawRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def read_records(bootstrap: str, topic: str, timeout_s: float) -> list[RawRecord]:
    """Every committed record of every partition (``read_committed``: records of aborted transactions are
    not returned), from the beginning up to the high watermark at call time."""
    consumer = Consumer(client_config(bootstrap, **{
        "group.id": f"chaos-verify-{time.time_ns()}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": True, "isolation.level": "read_committed"}))
    try:
        marks = watermarks(consumer, topic, timeout_s)
        todo = {p for p, (lo, hi) in marks.items() if hi > lo}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out: list[RawRecord] = []
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach the end of every partition within {timeout_s} s; "
                                   f"partitions left: {sorted(todo)}")
            for msg in consumer.consume(num_messages=5000, timeout=0.5):
                p, off = msg.partition(), msg.offset()
                err = msg.error()
                if err is not None:
                    if err.code() == -191 and p is not None:  # _PARTITION_EOF: this partition is read
                        todo.discard(p)
                    continue
                if p is None or off is None:
                    continue
                raw_headers: Any = msg.headers() or []
                headers = [(str(k), v if isinstance(v, bytes | None) else str(v).encode()) for k, v in raw_headers]
                out.append(RawRecord(p, off, msg.key(), msg.value(), headers))
        return out
    finally:
        consumer.close()


# --------------------------------------------------------------------------------------------------
# One Metadata request (v4) to one broker


@dataclass(frozen=True)
class PartitionView:
    leader: int
    replicas: list[int]
    isrs: list[int]


@dataclass(frozen=True)
class TopicView:
    error: int
    partitions: dict[int, PartitionView]


@dataclass(frozen=True)
class BrokerView:
    answered_by: int
    brokers: list[int]
    controller_id: int
    topic: TopicView | None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0]

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        out = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return out

    def ints(self) -> list[int]:
        return [self.take(">i") for _ in range(max(0, self.take(">i")))]

    def uvarint(self) -> int:
        """An unsigned varint (the flexible versions' lengths and tagged-field counts)."""
        out = shift = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        out = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return out

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def _exchange(host: str, port: int, body: bytes, timeout_s: float, what: str, *, flexible: bool = False) -> _Reader:
    """Send one request (correlation id 1) and read its answer up to the throttle time; the reader is then at
    the answer's own fields. ``flexible``: the answer's header has tagged fields (header v1)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        r = _Reader(_recv_exact(sock, size))
    if r.take(">i") != 1:
        raise ValueError(f"{what} answer with a foreign correlation id")
    if flexible:
        r.skip_tags()
    r.take(">i")  # throttle
    return r


def request_metadata(host: str, port: int, topic: str | None, timeout_s: float, broker: int = -1) -> BrokerView:
    """Send Metadata v4 for ``topic`` (or no topic) to host:port (broker id ``broker``); parse the answer."""
    client = b"chaos"
    topics = struct.pack(">i", 0) if topic is None else struct.pack(">ih", 1, len(topic.encode())) + topic.encode()
    body = struct.pack(">hhih", 3, 4, 1, len(client)) + client + topics + b"\x00"  # no auto-creation
    r = _exchange(host, port, body, timeout_s, "Metadata")
    brokers = []
    for _ in range(r.take(">i")):
        brokers.append(r.take(">i"))
        r.string()
        r.take(">i")
        r.string()
    r.string()  # cluster id
    controller = r.take(">i")
    view: TopicView | None = None
    for _ in range(r.take(">i")):
        err = r.take(">h")
        name = r.string()
        r.take(">b")  # internal
        parts = {}
        for _ in range(r.take(">i")):
            r.take(">h")
            pid = r.take(">i")
            leader = r.take(">i")
            parts[pid] = PartitionView(leader=leader, replicas=r.ints(), isrs=r.ints())
        if name == topic:
            view = TopicView(error=err, partitions=parts)
    return BrokerView(answered_by=broker, brokers=sorted(brokers), controller_id=controller, topic=view)


COORDINATOR_TYPES = {"group": 0, "transaction": 1}


def find_coordinator(host: str, port: int, key: str, kind: str, timeout_s: float) -> int:
    """The node id coordinating ``key`` (a consumer group, or a transactional id): one FindCoordinator
    request (v1) to host:port. ValueError with Kafka's error code when the broker answers with an error
    (``15``: coordinator not available yet, e.g. before the transaction log exists)."""
    client = b"chaos"
    k = key.encode()
    body = (struct.pack(">hhih", 10, 1, 1, len(client)) + client + struct.pack(">h", len(k)) + k
            + struct.pack(">b", COORDINATOR_TYPES[kind]))
    r = _exchange(host, port, body, timeout_s, "FindCoordinator")
    err = r.take(">h")
    message = r.string()
    node = r.take(">i")
    if err != 0:
        raise ValueError(f"FindCoordinator({kind} {key!r}) answered error {err}: {message}")
    return int(node)


def _compact(text: str) -> bytes:
    raw = text.encode()
    return _uvarint(len(raw) + 1) + raw


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def list_transactions(host: str, port: int, states: Sequence[str], timeout_s: float) -> list[tuple[str, str]]:
    """``(transactional id, state)`` of every transaction the broker at host:port coordinates whose state is
    one of ``states`` (``Ongoing``, ``PrepareCommit``, ...; empty: any): one ListTransactions request (v0,
    Kafka 3.0 and later). ValueError with Kafka's error code when the broker answers with an error."""
    client = b"chaos"
    body = (struct.pack(">hhih", 66, 0, 1, len(client)) + client + b"\x00"  # header v2: no tagged fields
            + _uvarint(len(states) + 1) + b"".join(_compact(s) for s in states)
            + _uvarint(1) + b"\x00")  # no producer id filter; no tagged fields
    r = _exchange(host, port, body, timeout_s, "ListTransactions", flexible=True)
    err = r.take(">h")
    if err != 0:
        raise ValueError(f"ListTransactions answered error {err}")
    for _ in range(max(0, r.uvarint() - 1)):
        r.compact_string()  # a state filter the broker does not know
    out = []
    for _ in range(max(0, r.uvarint() - 1)):
        tid = r.compact_string()
        r.take(">q")  # producer id
        state = r.compact_string()
        r.skip_tags()
        out.append((tid or "", state or ""))
    return out


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient(client_config(bootstrap))
