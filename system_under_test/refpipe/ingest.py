"""gRPC ingest service: validates events, writes them to Kafka, answers after the broker acked.

Run: ``python -m refpipe.ingest`` (``system_under_test`` and the generated stubs on PYTHONPATH).

Outcome contract (per event):
  * INVALID_ARGUMENT / RESOURCE_EXHAUSTED (REJECTED in a batch): definitely not written.
  * OK (ACKED): the broker acknowledged the write (partition/offset returned).
  * UNAVAILABLE "outcome uncertain" (UNCERTAIN in a batch): handed to the producer, but no
    acknowledgement arrived (delivery error, timeout): it may or may not be in Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import grpc
import pipeline_pb2
import pipeline_pb2_grpc
import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import Counter, Histogram, start_http_server

from . import db
from .settings import (
    ErrorLogThrottle,
    IngestSettings,
    configure_logging,
    load_ingest_settings,
    load_or_exit,
    log_defects,
    murmur2_partition,
    producer_config,
)

log = logging.getLogger("refpipe.ingest")

SERVICE_NAME = "pipeline.v1.Ingest"
AWAIT_MARGIN_S = 5.0  # added to delivery.timeout.ms to bound every await on a delivery
SHUTDOWN_GRACE_S = 5.0  # in-flight RPCs get this long after SIGTERM
FLUSH_TIMEOUT_S = 3.0  # producer flush at shutdown
READY_PROBE_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.1

EVENTS = Counter("refpipe_ingest_events", "Events by outcome", ["outcome"])
for _outcome in ("acked", "rejected", "uncertain"):
    EVENTS.labels(_outcome)
LATENCY = Histogram(
    "refpipe_ingest_rpc_seconds",
    "Submit/SubmitBatch latency (request to answer)",
    ["rpc"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GET_STATE_ERRORS = Counter("refpipe_ingest_get_state_errors", "GetState calls answered UNAVAILABLE")
PRODUCER_REBUILDS = Counter("refpipe_ingest_producer_rebuilds", "Producers replaced after a fatal error")


class Rejected(Exception):
    """The event was not handed to Kafka at all: definitely not written."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DeliveryFailed(Exception):
    """The producer reported a delivery error after the event was handed over: outcome uncertain."""


@dataclass(frozen=True)
class Delivered:
    partition: int
    offset: int


def _resolve(fut: asyncio.Future[Delivered], err: KafkaError | None, partition: int, offset: int) -> None:
    if fut.done():  # the waiter gave up (timeout / RPC cancelled)
        return
    if err is not None:
        fut.set_exception(DeliveryFailed(f"{err.name()}: {err.str()}"))
    else:
        fut.set_result(Delivered(partition=partition, offset=offset))


class KafkaWriter:
    """One producer plus the background thread that serves its delivery callbacks.

    If the producer hits a fatal error (possible with idempotence) it is replaced by a
    fresh one; events still in the old one get delivery errors (-> uncertain)."""

    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self._topic = settings.kafka_topic
        self._lock = threading.Lock()
        self._generation = 0
        self._fatal = threading.Event()
        self._stop = threading.Event()
        self._error_log = ErrorLogThrottle(log)
        self._producer = self._new_producer()
        self.partitions = 0  # of the topic, once topic_ready saw its metadata
        self._thread = threading.Thread(target=self._poll_loop, name="producer-poll", daemon=True)

    def _new_producer(self) -> Producer:
        self._generation += 1
        gen = self._generation
        cfg = producer_config(self._settings, client_id=f"refpipe-ingest-{os.getpid()}-{gen}")
        cfg["error_cb"] = lambda err: self._on_error(gen, err)
        cfg["logger"] = logging.getLogger("librdkafka.producer")
        return Producer(cfg)

    def _on_error(self, generation: int, err: KafkaError) -> None:
        if err.fatal():
            log.critical("producer fatal error: %s", err)
            if generation == self._generation:
                self._fatal.set()
        else:
            self._error_log.warning(err.name(), f"producer error: {err}")

    def start(self) -> None:
        self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(POLL_INTERVAL_S)
            except Exception:
                log.exception("producer.poll failed")
                time.sleep(POLL_INTERVAL_S)
            if self._fatal.is_set() and not self._stop.is_set():
                self._rebuild()

    def _rebuild(self) -> None:
        try:
            fresh = self._new_producer()
        except Exception:
            log.exception("could not create a replacement producer; retrying")
            time.sleep(1.0)
            return
        with self._lock:
            old, self._producer = self._producer, fresh
            self._fatal.clear()
        PRODUCER_REBUILDS.inc()
        log.warning("replaced the failed producer; failing its leftover events as uncertain")
        try:
            old.purge(in_queue=True, in_flight=True, blocking=False)
            old.flush(1.0)  # serves the delivery callbacks of the purged events
        except Exception:
            log.exception("cleaning up the failed producer")

    def send(self, event: pipeline_pb2.Event, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Delivered]:
        """Hand the event to the producer; raise Rejected if it was not accepted."""
        fut: asyncio.Future[Delivered] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            partition = msg.partition()
            offset = msg.offset()
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                loop.call_soon_threadsafe(
                    _resolve,
                    fut,
                    err,
                    -1 if partition is None else partition,
                    -1 if offset is None else offset,
                )

        value = db.encode_value(event.event_id, event.key, event.seq, event.amount)
        with self._lock:
            producer = self._producer
            if self._fatal.is_set():
                raise Rejected(grpc.StatusCode.RESOURCE_EXHAUSTED, "producer in fatal state; not written")
        try:
            producer.produce(
                self._topic,
                value=value,
                key=event.key.encode("utf-8"),
                headers=[(db.EVENT_ID_HEADER, event.event_id.encode("utf-8"))],
                on_delivery=on_delivery,
            )
        except BufferError as exc:
            raise Rejected(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"producer queue full; not written: {exc}"
            ) from None
        except KafkaException as exc:
            kerr = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            code = grpc.StatusCode.RESOURCE_EXHAUSTED
            if kerr is not None and kerr.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._INVALID_ARG):
                code = grpc.StatusCode.INVALID_ARGUMENT
            raise Rejected(code, f"producer refused the event; not written: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"invalid event; not written: {exc}") from None
        return fut

    def topic_ready(self, timeout_s: float) -> bool:
        """True once metadata for the topic (with partitions, no error) can be fetched. Blocking."""
        try:
            md = self._producer.list_topics(self._topic, timeout=timeout_s)
        except KafkaException as exc:
            log.info("topic %s not ready yet: %s", self._topic, exc)
            return False
        tmd = md.topics.get(self._topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            log.info("topic %s not ready yet: %s", self._topic, None if tmd is None else tmd.error)
            return False
        self.partitions = len(tmd.partitions)
        return True

    def close(self, flush_timeout_s: float) -> int:
        """Stop the poll thread and flush (bounded). Returns the number of events left unflushed."""
        self._stop.set()
        self._thread.join(timeout=POLL_INTERVAL_S * 20)
        try:
            return self._producer.flush(flush_timeout_s)
        except Exception:
            log.exception("producer flush failed")
            return -1


class StateReader:
    """key_state reads for GetState over one lazily (re)connected AsyncConnection."""

    def __init__(self, settings: IngestSettings) -> None:
        self._s = settings
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._bound_s = settings.pg_connect_timeout_s + settings.pg_statement_timeout_ms / 1000.0 + 2.0
        # the cached_reads defect: "state changes slowly, spare the database" -- and nothing ever invalidates it
        self._cache: dict[str, db.KeyRow] | None = {} if "cached_reads" in settings.defects else None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._s.pg_dsn,
                autocommit=True,
                connect_timeout=self._s.pg_connect_timeout_s,
                options=db.connection_options(self._s.pg_schema, self._s.pg_statement_timeout_ms),
                application_name="refpipe-ingest",
            )
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _query(self, key: str) -> tuple[Any, ...] | None:
        conn = await self._connect()
        cur = await conn.execute(db.GET_STATE_SQL, {"key": key})
        return await cur.fetchone()

    async def get(self, key: str) -> db.KeyRow | None:
        """Raise psycopg.Error / TimeoutError / OSError when the database cannot answer."""
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        async with asyncio.timeout(self._bound_s), self._lock:
            reused = self._conn is not None and not self._conn.closed
            try:
                row = await self._query(key)
            except psycopg.OperationalError:
                await self._drop()
                if not reused:
                    raise
                # the kept connection may simply have died while idle: one fresh attempt
                try:
                    row = await self._query(key)
                except BaseException:
                    await self._drop()
                    raise
            except BaseException:
                await self._drop()
                raise
        if row is None:
            return None
        state = db.rows_to_state([row])[key]
        if self._cache is not None:
            self._cache[key] = state
        return state

    async def close(self) -> None:
        await self._drop()


def _ignore_outcome(fut: asyncio.Future[Delivered]) -> None:
    """What ``ack_on_send`` does with the delivery report it never waited for: drop it."""
    if not fut.cancelled():
        fut.exception()


def _outcome_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "outcome uncertain: no delivery report within the bound"
    return f"outcome uncertain: {exc}"


class IngestServicer(pipeline_pb2_grpc.IngestServicer):
    def __init__(self, settings: IngestSettings, writer: KafkaWriter, state: StateReader) -> None:
        self._writer = writer
        self._state = state
        self._await_bound_s = settings.delivery_timeout_ms / 1000.0 + AWAIT_MARGIN_S
        self._guess_partition = "guessed_partition" in settings.defects
        self._ack_on_send = "ack_on_send" in settings.defects  # answers without waiting for the broker

    def _acked_partition(self, key: str, delivered: Delivered) -> int:
        """The partition the ack reports: the delivered one (with ``guessed_partition``: a guess)."""
        if self._guess_partition and self._writer.partitions:
            return murmur2_partition(key.encode(), self._writer.partitions)
        return delivered.partition

    def _send(self, event: pipeline_pb2.Event) -> asyncio.Future[Delivered]:
        problem = db.validate_event_fields(event.event_id, event.key, event.seq, event.amount)
        if problem is not None:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"invalid event: {problem}; not written")
        return self._writer.send(event, asyncio.get_running_loop())

    async def Submit(
        self, request: pipeline_pb2.Event, context: grpc.aio.ServicerContext
    ) -> pipeline_pb2.Ack:
        started = time.perf_counter()
        abort: tuple[grpc.StatusCode, str] | None = None
        ack: pipeline_pb2.Ack | None = None
        try:
            fut = self._send(request)
            if self._ack_on_send:  # the defect: "it's in the producer's queue, it will get there"
                fut.add_done_callback(_ignore_outcome)
                return pipeline_pb2.Ack(event_id=request.event_id, partition=-1, offset=-1)
            delivered = await asyncio.wait_for(fut, timeout=self._await_bound_s)
            ack = pipeline_pb2.Ack(
                event_id=request.event_id, partition=self._acked_partition(request.key, delivered),
                offset=delivered.offset
            )
            EVENTS.labels("acked").inc()
        except Rejected as rej:
            EVENTS.labels("rejected").inc()
            abort = (rej.code, rej.message)
        except (DeliveryFailed, TimeoutError) as exc:
            EVENTS.labels("uncertain").inc()
            log.debug("event %s: %s", request.event_id, _outcome_error(exc))
            abort = (grpc.StatusCode.UNAVAILABLE, _outcome_error(exc))
        except asyncio.CancelledError:
            EVENTS.labels("uncertain").inc()  # the client went away / server stopping
            raise
        finally:
            LATENCY.labels("Submit").observe(time.perf_counter() - started)
        if abort is not None:
            await context.abort(abort[0], abort[1])
        assert ack is not None
        return ack

    async def SubmitBatch(
        self, request: pipeline_pb2.EventBatch, context: grpc.aio.ServicerContext
    ) -> pipeline_pb2.BatchAck:
        started = time.perf_counter()
        results: list[pipeline_pb2.EventResult] = []
        pending: dict[int, asyncio.Future[Delivered]] = {}
        try:
            for i, event in enumerate(request.events):
                try:
                    pending[i] = self._send(event)
                    results.append(pipeline_pb2.EventResult(event_id=event.event_id))
                except Rejected as rej:
                    EVENTS.labels("rejected").inc()
                    results.append(
                        pipeline_pb2.EventResult(
                            event_id=event.event_id, status=pipeline_pb2.REJECTED, error=rej.message
                        )
                    )
            if pending and self._ack_on_send:
                for i, fut in pending.items():
                    fut.add_done_callback(_ignore_outcome)
                    results[i].status, results[i].partition, results[i].offset = pipeline_pb2.ACKED, -1, -1
                return pipeline_pb2.BatchAck(results=results)
            if pending:
                await asyncio.wait(list(pending.values()), timeout=self._await_bound_s)
            for i, fut in pending.items():
                res = results[i]
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    d = fut.result()
                    res.status = pipeline_pb2.ACKED
                    res.partition = self._acked_partition(request.events[i].key, d)
                    res.offset = d.offset
                    EVENTS.labels("acked").inc()
                else:
                    failure: BaseException | None = None
                    if fut.done() and not fut.cancelled():
                        failure = fut.exception()
                    fut.cancel()
                    res.status = pipeline_pb2.UNCERTAIN
                    res.error = _outcome_error(failure if failure is not None else TimeoutError())
                    EVENTS.labels("uncertain").inc()
        except asyncio.CancelledError:
            unresolved = sum(1 for f in pending.values() if not f.done())
            EVENTS.labels("uncertain").inc(unresolved)
            for f in pending.values():
                f.cancel()
            raise
        finally:
            LATENCY.labels("SubmitBatch").observe(time.perf_counter() - started)
        uncertain = sum(1 for r in results if r.status == pipeline_pb2.UNCERTAIN)
        if uncertain:
            log.warning("batch: %d of %d events uncertain", uncertain, len(results))
        return pipeline_pb2.BatchAck(results=results)

    async def GetState(
        self, request: pipeline_pb2.StateRequest, context: grpc.aio.ServicerContext
    ) -> pipeline_pb2.KeyState:
        if not request.key:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "key is empty")
        error: str | None = None
        row: db.KeyRow | None = None
        try:
            row = await self._state.get(request.key)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            error = f"database unavailable: {type(exc).__name__}: {exc}"
        if error is not None:
            GET_STATE_ERRORS.inc()
            log.warning("GetState(%s): %s", request.key, error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, error)
        if row is None:
            return pipeline_pb2.KeyState(key=request.key, found=False)
        return pipeline_pb2.KeyState(
            key=request.key,
            found=True,
            total=row.total,
            event_count=row.event_count,
            version=row.version,
            last_seq=row.last_seq,
        )


def _probe_topic(
    writer: KafkaWriter, loop: asyncio.AbstractEventLoop, ready: asyncio.Event, stop: threading.Event
) -> None:
    """Daemon thread: poll topic metadata until available, then signal ``ready`` on the loop.

    A thread of its own (not the loop's executor) so that a probe in progress never delays exit."""
    while not stop.is_set():
        if writer.topic_ready(READY_PROBE_TIMEOUT_S):
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(ready.set)
            return
        stop.wait(1.0)


async def _mark_ready(ready: asyncio.Event, health_servicer: health.aio.HealthServicer) -> None:
    """Flip health to SERVING once the topic metadata could be fetched."""
    await ready.wait()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("topic metadata available: health SERVING")


async def serve(settings: IngestSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    writer = KafkaWriter(settings)
    writer.start()
    state = StateReader(settings)

    health_servicer = health.aio.HealthServicer()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)

    server = grpc.aio.server()
    pipeline_pb2_grpc.add_IngestServicer_to_server(  # type: ignore[no-untyped-call]
        IngestServicer(settings, writer, state), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        server.add_insecure_port(settings.listen)
    except RuntimeError as exc:
        log.error("cannot listen on %s: %s", settings.listen, exc)
        writer.close(0.0)
        return 1
    await server.start()
    log.info(
        "ingest listening on %s; topic=%s bootstrap=%s",
        settings.listen,
        settings.kafka_topic,
        settings.kafka_bootstrap,
    )
    topic_ready = asyncio.Event()
    probe_stop = threading.Event()
    threading.Thread(
        target=_probe_topic, args=(writer, loop, topic_ready, probe_stop), name="topic-probe", daemon=True
    ).start()
    ready = asyncio.create_task(_mark_ready(topic_ready, health_servicer))

    await stop.wait()
    log.info("signal received: shutting down (grace %.1fs)", SHUTDOWN_GRACE_S)
    await health_servicer.enter_graceful_shutdown()
    probe_stop.set()
    ready.cancel()
    await server.stop(grace=SHUTDOWN_GRACE_S)
    await state.close()
    left = await asyncio.to_thread(writer.close, FLUSH_TIMEOUT_S)
    if left:
        log.warning("producer flush left %d events undelivered", left)
    with contextlib.suppress(asyncio.CancelledError):
        await ready
    log.info("ingest stopped")
    return 0


def _start_metrics(port: int) -> None:
    if port:
        try:
            start_http_server(port)
        except OSError as exc:
            log.error("cannot start metrics server on port %d: %s", port, exc)
            raise SystemExit(1) from None
        log.info("metrics on :%d/metrics", port)


def main() -> int:
    settings = load_or_exit(load_ingest_settings, os.environ)
    configure_logging(settings.log_level)
    log_defects(log, "ingest", settings.active_defects, settings.defects)
    _start_metrics(settings.metrics_port)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    raise SystemExit(main())
