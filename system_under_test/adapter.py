"""The reference pipeline's adapter: refpipe described to the suite through the public API only.

The services (``refpipe/``) know nothing of the suite; this module is the one place that describes them:
the two services and their environment, the topic, the gRPC client and its error contract, the ground
truth (``applied_log``, ``key_state``, JSON records) and the model (per-key sums), the defect switches
and which experiments must catch each, and how the image is built (wheels downloaded on the host).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos import stubs
from chaos.adapter import (
    AppliedRow,
    BuildContext,
    ConsumerGroup,
    Database,
    Db,
    Defect,
    Event,
    GrpcClient,
    GrpcHealth,
    ImageRecipe,
    ModelInput,
    Outcome,
    Pipeline,
    ReadResult,
    Reads,
    RecordRef,
    Service,
    Topic,
    UndecodableRecord,
    WriteResult,
)
from chaos.checkers import KeyState, Verdict, per_key_sums

HERE = Path(__file__).resolve().parent
PROTO = HERE / "proto" / "pipeline.proto"
GRPC_PORT = 50051

class RefpipeClient(GrpcClient):
    """``pipeline.v1.Ingest``: ``Submit`` for one event, ``SubmitBatch`` for several, ``GetState`` to read.
    Definitely not applied (system_under_test/README.md): INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
    FAILED_PRECONDITION; any other error leaves the outcome uncertain."""

    proto = PROTO
    service = "Ingest"
    definite_failures = ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION")
    max_batch = 500

    async def write(self, events: Sequence[Event], timeout_s: float) -> Sequence[WriteResult]:
        pb = self.pb2
        msgs = [pb.Event(event_id=e.id, key=e.key, seq=e.seq, amount=e.amount) for e in events]
        try:
            if len(msgs) == 1:
                ack = await self.stub.Submit(msgs[0], timeout=timeout_s)
                return [WriteResult(Outcome.OK, None, ack.partition, ack.offset)]
            resp = await self.stub.SubmitBatch(pb.EventBatch(events=msgs), timeout=timeout_s)
        except Exception as exc:
            return [self.failure(exc)] * len(msgs)
        by_id = {r.event_id: r for r in resp.results}
        out = []
        for e in events:
            r = by_id.get(e.id)
            if r is None:
                out.append(WriteResult(Outcome.UNKNOWN, "missing from batch answer"))
            elif r.status == pb.ACKED:
                out.append(WriteResult(Outcome.OK, None, r.partition, r.offset))
            elif r.status == pb.REJECTED:
                out.append(WriteResult(Outcome.FAIL, r.error or "rejected"))
            else:
                out.append(WriteResult(Outcome.UNKNOWN, r.error or "uncertain"))
        return out

    async def read(self, key: str, timeout_s: float) -> ReadResult:
        try:
            st = await self.stub.GetState(self.pb2.StateRequest(key=key), timeout=timeout_s)
        except Exception as exc:
            r = self.failure(exc)
            return ReadResult(r.outcome, error=r.error)
        return ReadResult(Outcome.OK, found=st.found, value=st.total, count=st.event_count, version=st.version)


class RefpipeTruth:
    """``applied_log`` (one row per application, serial id = position), ``key_state``, JSON records."""

    def applied(self, db: Db) -> list[AppliedRow]:
        rows = db.query("SELECT event_id, key, seq, amount, id, partition, kafka_offset FROM applied_log ORDER BY id")
        return [AppliedRow(event_id=r[0], key=r[1], seq=int(r[2]), amount=int(r[3]), position=int(r[4]),
                           source=("events", int(r[5]), int(r[6]))) for r in rows]

    def applied_ids(self, db: Db) -> set[str]:
        return {r[0] for r in db.query("SELECT DISTINCT event_id FROM applied_log")}

    def count_applied(self, db: Db) -> int:
        rows = db.query("SELECT count(*) FROM applied_log")
        return int(rows[0][0]) if rows else 0

    def state(self, db: Db) -> dict[str, KeyState]:
        rows = db.query("SELECT key, total, event_count, version, last_seq FROM key_state")
        return {r[0]: KeyState(key=r[0], total=int(r[1]), event_count=int(r[2]), version=int(r[3]),
                               last_seq=int(r[4])) for r in rows}

    def decode(self, topic: str, key: bytes | None, value: bytes | None,
               headers: Sequence[tuple[str, bytes | None]]) -> RecordRef:
        try:
            doc = json.loads(value or b"")
            return RecordRef(event_id=str(doc["event_id"]), key=str(doc["key"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise UndecodableRecord(f"not a refpipe event: {exc}") from None


def converged_read(state: dict[str, KeyState], key: str) -> ReadResult:
    """What ``GetState`` returns for ``key`` once the projector has applied everything: the ``key_state`` row."""
    ks = state.get(key)
    if ks is None:
        return ReadResult(Outcome.OK, found=False)
    return ReadResult(Outcome.OK, found=True, value=ks.total, count=ks.event_count, version=ks.version)


# The read contract of system_under_test/README.md ("What the pipeline promises"): GetState reads the
# committed key_state row, so reads converge, never go backwards, and lag the acknowledgement by no more than
# the projector's consumer lag in a healthy pipeline (well under a second at the suite's load; 5 s of margin).
READS = Reads(expected=converged_read, converge=True, monotonic=True, staleness_s=5.0)


def model(inp: ModelInput) -> list[Verdict]:
    """refpipe's projection: each key's ``total`` and ``event_count`` are the sums over the distinct
    events applied to it."""
    return [per_key_sums(inp.history, inp.applied, inp.state, inp.adjustments)]


# -- the image ----------------------------------------------------------------------------------------------


def _inputs() -> list[Path]:
    return sorted([HERE / "image" / "Dockerfile", *HERE.glob("requirements*.txt"), PROTO,
                   *(HERE / "refpipe").glob("*.py")])


def _prepare(ctx: BuildContext) -> None:
    """Wheels downloaded on the host (a build container may have no network, or no CA it trusts), the code,
    the stubs."""
    req = (HERE / "requirements.txt").read_bytes()
    wheels = ctx.cache_dir / ("wheels-" + __import__("hashlib").sha256(req).hexdigest()[:10])
    if not (wheels / "requirements.txt").exists():
        ctx.log("downloading the reference pipeline's wheels from PyPI")
        tmp = wheels.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with (ctx.log_dir / "pip.log").open("ab") as log:
            subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                            "--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                            "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                            "--implementation", "cp", "-r", str(HERE / "requirements.txt"), "-d", str(tmp)],
                           stdout=log, stderr=subprocess.STDOUT, timeout=ctx.timeout_s, check=True)
        (tmp / "requirements.txt").write_bytes(req)
        tmp.rename(wheels)
    shutil.copytree(wheels, ctx.dir / "wheels")
    shutil.copytree(HERE / "refpipe", ctx.dir / "app" / "refpipe", ignore=shutil.ignore_patterns("__pycache__"))
    stubs.generate(PROTO, ctx.dir / "app" / "gen")
    shutil.copy(HERE / "image" / "Dockerfile", ctx.dir / "Dockerfile")


IMAGE = ImageRecipe(prepare=_prepare, inputs=_inputs)

# -- the services -------------------------------------------------------------------------------------------

_COMMON = {"KAFKA_BOOTSTRAP": "{kafka}", "KAFKA_TOPIC": "{topic[events]}", "PG_DSN": "{postgres_dsn}",
           "PG_SCHEMA": "{schema}", "PIPELINE_DEFECTS": "{defects}", "LOG_LEVEL": "INFO", "METRICS_PORT": "9100"}

INGEST = Service(
    name="ingest", image="pipeline", command=("python", "-m", "refpipe.ingest"), roles=("entry",),
    port=GRPC_PORT, talks_to=("kafka", "postgres"), ready=(GrpcHealth(),), metrics_port=9100,
    env={**_COMMON, "INGEST_LISTEN": f"0.0.0.0:{GRPC_PORT}",
         "PRODUCER_DELIVERY_TIMEOUT_MS": "{settings.producer_delivery_timeout_ms}",
         "PRODUCER_REQUEST_TIMEOUT_MS": "{settings.producer_request_timeout_ms}"})

PROJECTOR = Service(
    name="projector", image="pipeline", command=("python", "-m", "refpipe.projector"), roles=("sink",),
    replicas=2, talks_to=("kafka", "postgres"), consumes=("events",), ready=(ConsumerGroup(),), metrics_port=9100,
    env={**_COMMON, "KAFKA_GROUP": "{group}", "PROJECTOR_ID": "{node}",
         "CONSUMER_SESSION_TIMEOUT_MS": "{settings.consumer_session_timeout_ms}"})

# -- the defect switches (system_under_test/README.md has what each models) ----------------------------------

DEFECTS = (
    Defect("acks1", "producer acks=1, idempotence off: an acknowledged write not yet replicated is lost when "
           "the leader fails over", catches=("leader_isolated", "broker_split")),
    Defect("acks0", "producer acks=0: 'acknowledged' before the broker has it", catches=("leader_isolated",)),
    Defect("no_idempotence", "producer retries without idempotence: a retry after a lost response writes the "
           "event twice", catches=("entry_kafka_lost_acks",)),
    Defect("ack_on_send", "acknowledged once handed to the producer: an outage longer than the delivery timeout "
           "drops acknowledged events", catches=("entry_kafka_long_outage", "entry_kafka_latency")),
    Defect("guessed_partition", "the acknowledgement reports the partition Java's murmur2 partitioner would "
           "pick, not the one librdkafka (crc32) delivered to: clients are told a wrong position",
           catches=("steady_state",)),
    Defect("unsafe_topic", "the topic acknowledges with the leader alone (min.insync.replicas 1) and elects a "
           "replica that is not in sync when the leader is gone (unclean leader election)",
           topic_config={"events": {"min.insync.replicas": "1", "unclean.leader.election.enable": "true"}},
           catches=("leader_loss_after_isr_shrink",), in_services=False),
    Defect("cached_reads", "GetState answers from an in-process cache filled on a key's first read and never "
           "invalidated: reads stop reflecting writes", catches=("steady_state",)),
    Defect("commit_before_write", "offsets committed before the database transaction: a failed write loses the "
           "batch", catches=("postgres_outage", "sink_crash_mid_batch")),
    Defect("auto_commit", "offsets auto-committed in the background, ahead of the database",
           catches=("postgres_outage",)),
    Defect("no_dedup", "the dedup table is not consulted: a redelivered event is applied again",
           catches=("sink_kafka_down", "second_fleet")),
    Defect("no_conflict_retry", "an optimistic-lock conflict drops the key's update: a lost update",
           catches=("write_conflicts",)),
    Defect("stale_read", "state read outside the transaction, written back without a version check: a "
           "concurrent writer's update is overwritten", catches=("second_fleet",)),
    Defect("unchecked_version", "the key_state UPDATE has no version predicate ('a key has one writer'): a "
           "competing writer's change between the read and the write is overwritten",
           catches=("competing_writer",)),
)

PIPELINE = Pipeline(
    name="refpipe",
    description="the reference pipeline: gRPC ingest -> Kafka -> projector group -> Postgres (per-key sums)",
    services=(INGEST, PROJECTOR),
    topics=(Topic("events", entry=True),),
    # the projector creates its own tables; key_state is what another writer contends on (adding to total)
    database=Database(contended_table="key_state", key_column="key", version_column="version",
                      value_column="total"),
    client=RefpipeClient,
    truth=RefpipeTruth(),
    model=model,
    defects=DEFECTS,
    images={"pipeline": IMAGE},
    order=True,
    positions=True,  # Ack{partition, offset}
    reads=READS,
)
