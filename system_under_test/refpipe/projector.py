"""Projector: consumes the events topic in a consumer group and projects it into Postgres.

Run: ``python -m refpipe.projector`` (``system_under_test`` and the generated stubs on PYTHONPATH).

Per batch: one Postgres transaction (dedup -> read state -> optimistic write -> journal),
COMMIT, then a synchronous offset commit.  Any Postgres or commit failure takes the
restart path: roll back, close consumer and connection, sleep, new consumer that resumes
from the committed offsets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, LiteralString

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Histogram, start_http_server
from psycopg import errors as pg_errors
from psycopg import sql

from . import db
from .settings import (
    ErrorLogThrottle,
    ProjectorSettings,
    configure_logging,
    consumer_config,
    load_or_exit,
    load_projector_settings,
    log_defects,
)

log = logging.getLogger("refpipe.projector")

CONSUMER_CLOSE_TIMEOUT_S = 10.0
WATCHDOG_MARGIN_S = 5.0  # client-side bound per statement on top of statement_timeout
CONFLICT_BACKOFF_BASE_S = 0.01
CONFLICT_BACKOFF_MAX_S = 0.5

APPLIED = Counter("refpipe_projector_events_applied", "Events applied to key_state")
DUPLICATES = Counter("refpipe_projector_duplicates_skipped", "Delivered events skipped as already applied")
BATCHES = Counter("refpipe_projector_batches", "Batches committed to Postgres")
CONFLICTS = Counter("refpipe_projector_conflicts", "Batch attempts that hit a version conflict")
CONFLICT_KEYS_DROPPED = Counter(
    "refpipe_projector_conflict_keys_dropped", "Key updates dropped on conflict (defect no_conflict_retry)"
)
RESTARTS = Counter("refpipe_projector_restarts", "Restarts from the last committed offsets")
MALFORMED = Counter(
    "refpipe_projector_malformed_records", "Records skipped because they are not valid events"
)
OFFSET_COMMITS = Counter("refpipe_projector_offset_commits", "Synchronous offset commits")
BATCH_SECONDS = Histogram(
    "refpipe_projector_batch_seconds",
    "Time to apply one batch to Postgres (all attempts)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RestartRequired(Exception):
    """Give up on the current consumer/connection and resume from the committed offsets."""


class Conflict(Exception):
    """The batch attempt was rolled back because of a version conflict (or deadlock)."""

    def __init__(self, what: Sequence[str]) -> None:
        super().__init__(", ".join(what))
        self.what = list(what)


class SocketWatchdog:
    """Client-side bound on a blocking Postgres call.

    statement_timeout bounds the server side; when the network itself stalls (a proxy that
    swallows packets) nothing would ever return, so past the deadline this shuts the socket
    down, which makes the blocked call fail with an OperationalError."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._fd: int | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pg-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def guard(self, conn: psycopg.Connection[Any], timeout_s: float) -> Iterator[None]:
        try:
            fd: int | None = conn.pgconn.socket
        except psycopg.Error:
            fd = None
        with self._cond:
            self._fd = fd
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._deadline = None
                self._fd = None

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                fd, self._deadline, self._fd = self._fd, None, None
                if fd is not None:
                    log.error("postgres call exceeded its bound: shutting the connection's socket down")
                    self._shutdown(fd)

    @staticmethod
    def _shutdown(fd: int) -> None:
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=1.0)


class Projector:
    def __init__(self, settings: ProjectorSettings, stop: threading.Event) -> None:
        self._s = settings
        self._stop = stop
        self._conn: psycopg.Connection[Any] | None = None
        self._stale_conn: psycopg.Connection[Any] | None = None
        self._consumer: Consumer | None = None
        self._consumer_fatal: KafkaError | None = None
        self._watchdog = SocketWatchdog()
        self._error_log = ErrorLogThrottle(log)
        self._stmt_bound_s = settings.pg_statement_timeout_ms / 1000.0 + WATCHDOG_MARGIN_S
        self._manual_commit = not settings.has("auto_commit")

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        try:
            while not self._stop.is_set():
                try:
                    self._ensure_schema()
                    self._consumer = self._new_consumer()
                    self._consume_loop()
                except Exception as exc:
                    RESTARTS.inc()
                    if isinstance(exc, RestartRequired | psycopg.Error | KafkaException | OSError):
                        log.error(
                            "restarting from the last committed offsets: %s: %s", type(exc).__name__, exc
                        )
                    else:
                        log.exception("unexpected error; restarting from the last committed offsets")
                finally:
                    self._teardown()
                if not self._stop.is_set():
                    self._stop.wait(self._s.restart_backoff_s)
        finally:
            self._watchdog.close()
        log.info("projector stopped")
        return 0

    def _teardown(self) -> None:
        self._close_consumer()
        for attr in ("_conn", "_stale_conn"):
            conn = getattr(self, attr)
            setattr(self, attr, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    # -- Kafka -------------------------------------------------------------------------------

    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.fatal():
            log.critical("consumer fatal error: %s", err)
            self._consumer_fatal = err
        else:
            self._error_log.warning(err.name(), f"consumer error: {err}")

    def _new_consumer(self) -> Consumer:
        self._consumer_fatal = None
        cfg = consumer_config(self._s)
        cfg["error_cb"] = self._on_kafka_error
        cfg["logger"] = logging.getLogger("librdkafka.consumer")
        consumer = Consumer(cfg)

        def on_assign(_c: Consumer, parts: list[TopicPartition]) -> None:
            log.info("assigned: %s", _fmt_parts(parts))

        def on_revoke(_c: Consumer, parts: list[TopicPartition]) -> None:
            log.info("revoked: %s", _fmt_parts(parts))

        def on_lost(_c: Consumer, parts: list[TopicPartition]) -> None:
            log.warning("lost (not revoked cleanly): %s", _fmt_parts(parts))

        consumer.subscribe([self._s.kafka_topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
        log.info("consumer subscribed to %s as group %s", self._s.kafka_topic, self._s.group)
        return consumer

    def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return

        def close() -> None:
            try:
                consumer.close()
            except Exception as exc:
                log.warning("consumer.close(): %s", exc)

        t = threading.Thread(target=close, name="consumer-close", daemon=True)
        t.start()
        t.join(CONSUMER_CLOSE_TIMEOUT_S)
        if t.is_alive():
            log.warning("consumer.close() still running after %.0fs; abandoning it", CONSUMER_CLOSE_TIMEOUT_S)
        else:
            log.info("consumer closed")

    def _consume_loop(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self._stop.is_set():
            if self._consumer_fatal is not None:
                raise RestartRequired(f"consumer fatal error: {self._consumer_fatal}")
            msgs = consumer.consume(num_messages=self._s.batch_max, timeout=self._s.poll_timeout_s)
            if msgs:
                self._handle_batch(consumer, msgs)

    def _commit_offsets(self, consumer: Consumer, commits: list[tuple[str, int, int]]) -> None:
        if not commits:
            return
        offsets = [TopicPartition(t, p, o) for t, p, o in commits]
        try:
            result = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise RestartRequired(f"offset commit failed: {exc}") from exc
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            raise RestartRequired(
                f"offset commit failed: {', '.join(f'{tp.partition}:{tp.error}' for tp in failed)}"
            )
        OFFSET_COMMITS.inc()
        log.debug("committed offsets %s", commits)

    def _handle_batch(self, consumer: Consumer, msgs: Sequence[Message]) -> None:
        records: list[db.EventRecord] = []
        positions: list[tuple[str, int, int]] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise RestartRequired(f"fatal consumer error: {err}")
                self._error_log.warning(err.name(), f"consumer error message: {err}")
                continue
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            if topic is None or partition is None or offset is None or offset < 0:
                continue
            positions.append((topic, partition, offset))
            try:
                records.append(db.decode_record(m.value(), partition, offset))
            except db.MalformedRecord as exc:
                MALFORMED.inc()
                log.error("skipping malformed record %s[%d]@%d: %s", topic, partition, offset, exc)
        commits = db.commit_positions(positions)
        if self._s.has("commit_before_write"):
            self._commit_offsets(consumer, commits)  # DEFECT: offsets before the data
        if records:
            self._apply_with_retries(records)
        if self._manual_commit and not self._s.has("commit_before_write"):
            self._commit_offsets(consumer, commits)

    # -- Postgres ----------------------------------------------------------------------------

    def _connect(self, autocommit: bool) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._s.pg_dsn,
            autocommit=autocommit,
            connect_timeout=self._s.pg_connect_timeout_s,
            options=db.connection_options(self._s.pg_schema, self._s.pg_statement_timeout_ms),
            application_name=f"refpipe-projector-{self._s.projector_id}"[:63],
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(autocommit=False)
        return self._conn

    def _exec(
        self,
        cur: psycopg.Cursor[Any],
        query: LiteralString | sql.SQL | sql.Composed,
        params: dict[str, Any] | Sequence[Any] | None = None,
    ) -> None:
        with self._watchdog.guard(cur.connection, self._stmt_bound_s):
            cur.execute(query, params)

    def _commit_db(self, conn: psycopg.Connection[Any]) -> None:
        with self._watchdog.guard(conn, self._stmt_bound_s):
            conn.commit()

    @staticmethod
    def _rollback_quietly(conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken:
            return
        try:
            conn.rollback()
        except psycopg.Error as exc:
            log.warning("rollback failed: %s", exc)

    def _ensure_schema(self) -> None:
        conn = self._db()
        schema = self._s.pg_schema
        try:
            with conn.cursor() as cur:
                self._exec(cur, db.SCHEMA_LOCK_SQL, (db.schema_lock_name(schema),))
                self._exec(cur, db.SCHEMA_EXISTS_SQL, (schema,))
                if cur.fetchone() is None:
                    self._exec(cur, db.create_schema_statement(schema))
                for stmt in db.schema_statements(schema):
                    self._exec(cur, stmt)
            self._commit_db(conn)
        except BaseException:
            self._rollback_quietly(conn)
            raise
        log.info("schema %s ready", schema)

    def _read_stale(self, keys: list[str]) -> dict[str, db.KeyRow]:
        """DEFECT stale_read: the state is read outside (before) the write transaction."""
        if self._stale_conn is None or self._stale_conn.closed:
            self._stale_conn = self._connect(autocommit=True)
        with self._stale_conn.cursor() as cur:
            self._exec(cur, db.READ_STATE_SQL, db.read_state_params(keys))
            return db.rows_to_state(cur.fetchall())

    def _apply_with_retries(self, records: list[db.EventRecord]) -> None:
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                new, skipped = self._apply_once(records)
                break
            except Conflict as conflict:
                CONFLICTS.inc()
                attempt += 1
                if attempt > self._s.conflict_retries:
                    raise RestartRequired(
                        f"version conflict persisted after {self._s.conflict_retries} retries: {conflict}"
                    ) from None
                delay = min(CONFLICT_BACKOFF_MAX_S, CONFLICT_BACKOFF_BASE_S * 2**attempt)
                delay *= random.uniform(0.5, 1.0)
                log.warning(
                    "version conflict on %s; retrying batch (attempt %d/%d) in %.3fs",
                    conflict,
                    attempt,
                    self._s.conflict_retries,
                    delay,
                )
                time.sleep(delay)
        APPLIED.inc(new)
        DUPLICATES.inc(skipped)
        BATCHES.inc()
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if skipped:
            log.info("batch: applied %d events, skipped %d duplicates", new, skipped)
        else:
            log.debug("batch: applied %d events", new)

    def _apply_once(self, records: list[db.EventRecord]) -> tuple[int, int]:
        """One attempt at the batch transaction. Returns (applied, skipped); raises Conflict."""
        s = self._s
        no_dedup = s.has("no_dedup")
        candidates = list(records) if no_dedup else db.dedup_within_batch(records)
        stale: dict[str, db.KeyRow] | None = None
        if s.has("stale_read"):
            stale = self._read_stale(db.touched_keys(candidates))
        conn = self._db()
        try:
            with conn.cursor() as cur:
                if no_dedup:
                    new = candidates  # DEFECT: redeliveries are applied again
                else:
                    # log order is the same for every replica: consistent lock order, fewer deadlocks
                    self._exec(cur, db.DEDUP_SQL, db.dedup_params(db.by_offset(candidates)))
                    new = db.select_new(candidates, (r[0] for r in cur.fetchall()))
                if new:
                    self._write_state(cur, conn, new, stale)
                    self._exec(cur, db.APPLIED_LOG_SQL, db.applied_log_params(new, s.projector_id))
            self._commit_db(conn)
        except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
            self._rollback_quietly(conn)
            raise Conflict([f"{type(exc).__name__} ({exc.sqlstate})"]) from None
        except BaseException:
            self._rollback_quietly(conn)
            raise
        return len(new), len(records) - len(new)

    def _write_state(
        self,
        cur: psycopg.Cursor[Any],
        conn: psycopg.Connection[Any],
        new: list[db.EventRecord],
        stale: dict[str, db.KeyRow] | None,
    ) -> None:
        if stale is not None:
            # DEFECT stale_read: absolute values computed from the outside read, no version check
            plans = db.plan_key_updates(new, stale)
            self._exec(cur, db.STALE_UPSERT_STATE_SQL, db.insert_params(plans))
            return
        self._exec(cur, db.READ_STATE_SQL, db.read_state_params(db.touched_keys(new)))
        plans = db.plan_key_updates(new, db.rows_to_state(cur.fetchall()))
        updates, inserts = db.split_plans(plans)
        returned: list[str] = []
        if updates:
            # DEFECT unchecked_version: no version predicate, so a concurrent writer's change is overwritten
            update_sql = db.UNCHECKED_UPDATE_STATE_SQL if self._s.has("unchecked_version") else db.UPDATE_STATE_SQL
            self._exec(cur, update_sql, db.update_params(updates))
            returned.extend(r[0] for r in cur.fetchall())
        if inserts:
            self._exec(cur, db.INSERT_STATE_SQL, db.insert_params(inserts))
            returned.extend(r[0] for r in cur.fetchall())
        conflicts = db.find_conflicts(plans, returned)
        if not conflicts:
            return
        if not self._s.has("no_conflict_retry"):
            raise Conflict(conflicts)
        # DEFECT no_conflict_retry: the conflicting keys' updates are silently dropped
        CONFLICTS.inc()
        CONFLICT_KEYS_DROPPED.inc(len(conflicts))
        log.error("DEFECT no_conflict_retry: dropping state updates of conflicting keys %s", conflicts)


def _fmt_parts(parts: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in parts) or "-"


def main() -> int:
    settings = load_or_exit(load_projector_settings, os.environ)
    configure_logging(settings.log_level)
    log_defects(log, "projector", settings.active_defects, settings.defects)
    log.info(
        "projector %s: topic=%s group=%s bootstrap=%s schema=%s",
        settings.projector_id,
        settings.kafka_topic,
        settings.group,
        settings.kafka_bootstrap,
        settings.pg_schema,
    )
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port)
        except OSError as exc:
            log.error("cannot start metrics server on port %d: %s", settings.metrics_port, exc)
            return 1
        log.info("metrics on :%d/metrics", settings.metrics_port)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d received: finishing the current batch, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return Projector(settings, stop).run()


if __name__ == "__main__":
    raise SystemExit(main())
