"""The orders example's adapter: three JVM services described to the suite through the public API only.

    pytest --pyargs chaos.experiments --chaos-pipeline=examples.orders.adapter:PIPELINE

How it differs from the reference pipeline, and what that asks of the adapter:

* **client**: ``orders.v1.Orders/PlaceOrder``; an event of the workload becomes an order with the event's id
  as its idempotency key, the key as its customer and one item priced at the event's amount (so the order's
  total is the amount). Its error contract (``README.md``): ``INVALID_ARGUMENT`` and ``RESOURCE_EXHAUSTED``
  are definite rejections, everything else leaves the outcome uncertain.
* **topics**: ``orders.placed`` (the entry topic, written by the idempotent producer of orders-api) and
  ``orders.priced`` (written in Kafka transactions by the pricer, read ``read_committed``); records are
  Protobuf (``OrderPlaced``, ``OrderPriced``), decoded here.
* **truth**: the ``orders`` table (one row per application, ``id`` its position, ``src_partition`` /
  ``src_offset`` the ``orders.priced`` record it came from, so an order applied from an aborted
  transaction's record is a phantom) and ``customer_balance``.
* **model**: each customer's balance and order count are the sums over the distinct orders applied to them
  (a lost update shows there); every accepted order exists exactly once with the right total (the generic
  lost, duplicates and payload checks). The sink applies a batch's records on several threads, so it does
  **not** promise per-customer order: ``order=False``.
* **budgets and settings**: three JVMs start at once (with the brokers already running), so a deployment may
  take longer than the default readiness bound on a small host (``pipeline_ready_timeout_s`` 120 s).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

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
    LogLine,
    ModelInput,
    Outcome,
    Pipeline,
    RecordRef,
    Service,
    Topic,
    UndecodableRecord,
    WriteResult,
)
from chaos.checkers import KeyState, Verdict, per_key_sums

HERE = Path(__file__).resolve().parent
PROTO = HERE / "proto" / "orders.proto"
GRPC_PORT = 50051


def _pb2() -> ModuleType:
    return stubs.load(PROTO)[0]


class OrdersClient(GrpcClient):
    """``PlaceOrder`` per event (the API takes one order a call). Definitely not placed: INVALID_ARGUMENT,
    RESOURCE_EXHAUSTED (README, error contract). ``GetOrder`` reads are per order, not per key, so this client
    reads nothing (``read`` answers UNKNOWN)."""

    proto = PROTO
    service = "Orders"
    definite_failures = ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")
    max_batch = 1

    async def write(self, events: Sequence[Event], timeout_s: float) -> Sequence[WriteResult]:
        out = []
        for e in events:
            req = self.pb2.PlaceOrderRequest(idempotency_key=e.id, customer=e.key, items=[
                self.pb2.Item(sku=f"sku-{e.seq % 97}", quantity=1, unit_price_cents=e.amount)])
            try:
                reply = await self.stub.PlaceOrder(req, timeout=timeout_s)
                out.append(WriteResult(Outcome.OK, None, reply.partition, reply.offset))
            except Exception as exc:
                out.append(self.failure(exc))
        return out


class OrdersTruth:
    """``orders`` rows (position ``id``, from ``orders.priced``), ``customer_balance``, Protobuf records."""

    def applied(self, db: Db) -> list[AppliedRow]:
        rows = db.query("SELECT order_id, customer, total_cents, id, src_partition, src_offset FROM orders ORDER BY id")
        return [AppliedRow(event_id=r[0], key=r[1], seq=None, amount=int(r[2]), position=int(r[3]),
                           source=("orders.priced", int(r[4]), int(r[5]))) for r in rows]

    def applied_ids(self, db: Db) -> set[str]:
        return {r[0] for r in db.query("SELECT DISTINCT order_id FROM orders")}

    def count_applied(self, db: Db) -> int:
        rows = db.query("SELECT count(*) FROM orders")
        return int(rows[0][0]) if rows else 0

    def state(self, db: Db) -> dict[str, KeyState]:
        rows = db.query("SELECT customer, balance_cents, order_count, version FROM customer_balance")
        return {r[0]: KeyState(key=r[0], total=int(r[1]), event_count=int(r[2]), version=int(r[3]), last_seq=0)
                for r in rows}

    def decode(self, topic: str, key: bytes | None, value: bytes | None,
               headers: Sequence[tuple[str, bytes | None]]) -> RecordRef:
        pb2 = _pb2()
        message = {"orders.placed": pb2.OrderPlaced, "orders.priced": pb2.OrderPriced}.get(topic)
        if message is None:
            raise UndecodableRecord(f"no record type for topic {topic}")
        try:
            m = message.FromString(value or b"")
        except Exception as exc:
            raise UndecodableRecord(f"not a {message.DESCRIPTOR.name}: {exc}") from None
        if not m.order_id or not m.customer:
            raise UndecodableRecord(f"a {message.DESCRIPTOR.name} without order_id or customer")
        return RecordRef(event_id=m.order_id, key=m.customer)


def model(inp: ModelInput) -> list[Verdict]:
    """Each customer's balance and order count are the sums over the distinct orders applied to them."""
    return [per_key_sums(inp.history, inp.applied, inp.state, inp.adjustments)]


# -- the image: Maven on the host, Debian's JRE in the image (build.py) --------------------------------------


def _build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orders_example_build", HERE / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prepare(ctx: BuildContext) -> None:
    ctx.log("building the orders example with Maven (Maven Central, reused from ~/.m2)")
    _build().build_context(ctx.dir, ctx.log_dir, ctx.timeout_s)


IMAGE = ImageRecipe(prepare=_prepare, inputs=lambda: _build().inputs(), tools=("mvn",))

# -- the services --------------------------------------------------------------------------------------------

_PG = {"PG_HOST": "{postgres_host}", "PG_PORT": "{postgres_port}", "PG_DB": "{postgres_db}",
       "PG_USER": "{postgres_user}", "PG_PASSWORD": "{postgres_password}", "PG_SCHEMA": "{schema}"}
_COMMON = {"KAFKA_BOOTSTRAP": "{kafka}", "PIPELINE_DEFECTS": "{defects}", "LOG_LEVEL": "INFO"}

ORDERS_API = Service(
    name="orders-api", image="orders", command=("/app/run", "api"), roles=("entry",), port=GRPC_PORT,
    talks_to=("kafka", "postgres"), ready=(GrpcHealth(),),
    env={**_COMMON, **_PG, "TOPIC_PLACED": "{topic[orders.placed]}", "LISTEN_PORT": str(GRPC_PORT),
         "DELIVERY_TIMEOUT_MS": "{settings.producer_delivery_timeout_ms}",
         "REQUEST_TIMEOUT_MS": "{settings.producer_request_timeout_ms}"})

PRICER = Service(
    name="pricer", image="orders", command=("/app/run", "pricer"), roles=("stage",), replicas=2,
    talks_to=("kafka",), consumes=("orders.placed",), ready=(ConsumerGroup(), LogLine(r"pricer ready")),
    env={**_COMMON, "TOPIC_PLACED": "{topic[orders.placed]}", "TOPIC_PRICED": "{topic[orders.priced]}",
         "GROUP_ID": "{group}", "TRANSACTIONAL_ID": "pricer-{deployment}-{replica}",
         "SESSION_TIMEOUT_MS": "{settings.consumer_session_timeout_ms}"})

SINK = Service(
    name="sink", image="orders", command=("/app/run", "sink"), roles=("sink",), replicas=2,
    talks_to=("kafka", "postgres"), consumes=("orders.priced",), ready=(ConsumerGroup(), LogLine(r"sink ready")),
    env={**_COMMON, **_PG, "TOPIC_PRICED": "{topic[orders.priced]}", "GROUP_ID": "{group}", "SINK_WORKERS": "4",
         "SESSION_TIMEOUT_MS": "{settings.consumer_session_timeout_ms}"})

# -- the defect switches (README.md has what each models) -----------------------------------------------------

DEFECTS = (
    Defect("swallow_optimistic_lock", "the balance update runs in its own transaction after the order's; an "
           "OptimisticLockException there is logged and the offset committed anyway: a lost update",
           catches=("steady_state", "write_conflicts")),
    Defect("no_inbox", "the inbox is neither checked nor written: an order redelivered after a sink restart or "
           "rebalance is applied twice", catches=("sink_kafka_down",)),
    Defect("non_transactional_pricer", "no Kafka transactions and the consumer's default auto-commit: orders "
           "priced but not yet committed are priced again after a pricer crash", catches=("stage_crash",)),
    Defect("read_uncommitted", "the sink reads read_uncommitted: records of transactions the pricer aborted "
           "(killed mid-transaction) are applied", catches=("stage_crash",)),
    Defect("commit_before_write", "the sink commits a batch's offsets before its database work: a failed write "
           "loses the batch", catches=("postgres_outage",)),
)

PIPELINE = Pipeline(
    name="orders",
    description="orders example: gRPC orders-api (Java) -> orders.placed -> pricer (Kafka transactions) -> "
                "orders.priced -> sink (Hibernate, optimistic locking) -> Postgres",
    services=(ORDERS_API, PRICER, SINK),
    topics=(Topic("orders.placed", entry=True), Topic("orders.priced")),
    client=OrdersClient,
    truth=OrdersTruth(),
    model=model,
    database=Database(setup_sql=(HERE / "schema.sql").read_text(encoding="utf-8"), contended_table="customer_balance",
                      key_column="customer", version_column="version", value_column="balance_cents"),
    defects=DEFECTS,
    images={"orders": IMAGE},
    order=False,  # the sink applies a batch on several threads: no per-customer order is promised
    positions=True,  # PlaceOrderReply{partition, offset}
    # Three JVMs warm up at once when a pipeline is deployed, and a killed pricer's open transaction
    # holds read_committed readers until it is aborted: convergence needs more than the shipped 60 s.
    budgets={"convergence_s": 90.0},
    settings={"pipeline_ready_timeout_s": 120.0},
)
