"""Database faults: backends terminated, row locks held by a concurrent writer, a competing writer.

Both work from the test process over the direct Postgres connection (127.0.0.1, no toxics). A
database restart or pause is a container fault: ``Restart("postgres")``, ``Pause("postgres")``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from chaos.faults.base import Fault

if TYPE_CHECKING:
    from chaos.env import Environment

log = logging.getLogger("chaos.faults")

TERMINATE_SQL = """
SELECT pid, application_name, pg_terminate_backend(pid)
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND application_name NOT LIKE 'pipeline-chaos%%' AND application_name NOT LIKE 'chaos-%%'
  AND application_name LIKE %s
"""


class _Looping(Fault):
    """A fault that keeps acting in a thread of its own until healed; heal stops the thread (bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self, body: Any, name: str) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=body, name=name, daemon=True)
        self._thread.start()

    def _heal(self, env: Environment) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=env.settings.fault_step_timeout_s)
            self._thread = None


class TerminateBackends(_Looping):
    """``pg_terminate_backend`` on every client session of the pipeline's database whose
    ``application_name`` matches the LIKE pattern (default ``%``: every session but the suite's own), once
    at injection or, with ``interval_s``, again every ``interval_s`` seconds until healed.

    Models a database failover, an admin killing sessions, a connection pooler recycling connections,
    an idle-session timeout: the pipeline must reconnect and retry without losing or repeating work."""

    name = "terminate_backends"

    def __init__(self, application_name: str = "%", interval_s: float | None = None) -> None:
        super().__init__()
        if not isinstance(application_name, str) or not application_name:
            raise ValueError("application_name must be a non-empty LIKE pattern, e.g. 'refpipe-projector-%'")
        if interval_s is not None and not interval_s > 0:
            raise ValueError(f"interval_s={interval_s!r} must be positive (or None: once)")
        self.application_name = application_name
        self.interval_s = interval_s
        self._lock = threading.Lock()

    def _terminate(self, env: Environment) -> int:
        with psycopg.connect(env.endpoints.pg_conninfo(), autocommit=True) as conn:
            rows = conn.execute(TERMINATE_SQL, (self.application_name,)).fetchall()
        with self._lock:
            self.resolved["terminated"] = self.resolved.get("terminated", 0) + sum(1 for r in rows if r[2])
            apps = set(self.resolved.get("applications", [])) | {str(r[1]) for r in rows}
            self.resolved["applications"] = sorted(apps)
        return len(rows)

    def _inject(self, env: Environment) -> None:
        self.resolved = {"terminated": 0, "applications": []}
        self._terminate(env)
        if self.interval_s is not None:
            interval = self.interval_s

            def repeat() -> None:
                while not self._stop.wait(interval):  # the fault's own cadence, not a wait for a state
                    try:
                        self._terminate(env)
                    except Exception as exc:
                        log.warning("terminate_backends: %s", exc)

            self._loop(repeat, "terminate-backends")

    def params(self) -> dict[str, Any]:
        return {"application_name": self.application_name, "interval_s": self.interval_s}


class HoldRowLocks(Fault):
    """A concurrent writer: takes ``SELECT ... FOR UPDATE`` on the projection's rows (``table`` in the
    deployed pipeline's schema, all rows or those of ``keys``) and holds the locks until healed.

    With ``write=True`` (the default) it also bumps each locked row's ``version`` column (totals
    untouched) and commits at heal, like another service updating the same rows: the projector's
    UPDATEs wait on the locks and, once released, find the version changed (READ COMMITTED re-checks
    the WHERE clause on the new row version) and must retry the batch: write conflicts. With
    ``write=False`` the lock holder only rolls back: the writers just wait (lock contention). Held
    longer than the pipeline's ``statement_timeout`` (10 s for refpipe), the waiting statements are
    cancelled instead.

    Models hot rows shared with another writer, a long-running batch job or migration holding locks."""

    name = "hold_row_locks"

    def __init__(self, keys: Sequence[str] | None = None, *, write: bool = True, table: str | None = None,
                 key_column: str | None = None, version_column: str | None = None) -> None:
        super().__init__()
        if keys is not None and (isinstance(keys, str) or not all(isinstance(k, str) for k in keys)):
            raise ValueError("keys must be a list of key strings (or None: every row)")
        for what, ident in (("table", table), ("key_column", key_column), ("version_column", version_column)):
            if ident is not None and not ident.isidentifier():
                raise ValueError(f"{what}={ident!r} is not a plain SQL identifier")
        self.keys = list(keys) if keys is not None else None
        self.write = write
        self.given = (table, key_column, version_column)
        self.table, self.key_column, self.version_column = table or "", key_column or "", version_column or ""
        self._conn: psycopg.Connection[Any] | None = None

    def validate(self, env: Environment) -> None:
        if env.deployment is None:
            raise ValueError("HoldRowLocks needs a deployed pipeline (its schema); call env.deploy(name) first")
        db = env.deployment.pipeline.database
        table, key, version = self.given
        self.table = table or db.contended_table
        self.key_column, self.version_column = key or db.key_column, version or db.version_column
        if not self.table:
            raise ValueError(f"HoldRowLocks needs a table: pipeline {env.deployment.pipeline.name} names no "
                             "contended table (Database(contended_table=...)); pass table=")

    def _inject(self, env: Environment) -> None:
        from psycopg import sql

        assert env.deployment is not None
        schema = env.deployment.schema
        self.resolved = {"schema": schema, "table": self.table}
        conn = psycopg.connect(env.endpoints.pg_conninfo(schema), autocommit=False,
                               application_name="chaos-hold-row-locks")
        self._conn = conn
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
            sql.Literal(f"{int(env.settings.fault_step_timeout_s * 1000)}ms")))
        tbl, kc, vc = sql.Identifier(self.table), sql.Identifier(self.key_column), sql.Identifier(self.version_column)
        where = sql.SQL("WHERE {} = ANY(%s)").format(kc) if self.keys is not None else sql.SQL("")
        args = (self.keys,) if self.keys is not None else ()
        rows = conn.execute(sql.SQL("SELECT {} FROM {} {} ORDER BY {} FOR UPDATE").format(kc, tbl, where, kc),
                            args).fetchall()
        locked = [str(r[0]) for r in rows]
        if not locked:
            raise ValueError(f"no rows of {schema}.{self.table} to lock"
                             + (f" for keys {self.keys}" if self.keys else "") + ": let some load reach it first")
        if self.write:
            conn.execute(sql.SQL("UPDATE {} SET {} = {} + 1 WHERE {} = ANY(%s)").format(tbl, vc, vc, kc), (locked,))
        self.resolved["locked"] = len(locked)
        self.resolved["keys"] = locked[:20]

    def _heal(self, env: Environment) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.closed:
                return
            if self.write and self.resolved.get("locked") and \
                    conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                conn.commit()  # the concurrent write becomes visible: blocked writers see a new version
            else:
                conn.rollback()
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def params(self) -> dict[str, Any]:
        return {"keys": self.keys, "write": self.write, "table": self.table}


JOURNAL_TABLE = "chaos_adjustments"  # in the deployment's schema: what the competing writer committed


class CompetingWriter(_Looping):
    """A second writer of the projection with changes of its own: an operator's adjustments. About ``rate``
    times a second until healed it picks a row of the contended table (``Database.contended_table``) and,
    in one transaction, adds an amount (1..``amount_max``) to its value column (``Database.value_column``),
    bumps its version column, and journals the amount in ``chaos_adjustments`` (created in the deployment's
    schema). The journal commits with the change, so it says exactly what was applied, and the model adds
    it to what the events account for (:attr:`chaos.adapter.ModelInput.adjustments`).

    Models back-office corrections, a second service owning part of the row, a backfill that writes
    deltas. A sink that writes absolute values computed from a row it read without a version check (or
    whose version check never fails) overwrites an adjustment: a lost update, seen by conservation."""

    name = "competing_writer"

    def __init__(self, rate: float = 20.0, amount_max: int = 1000, *, table: str | None = None,
                 key_column: str | None = None, value_column: str | None = None,
                 version_column: str | None = None, seed: int | None = None) -> None:
        super().__init__()
        if not rate > 0 or not isinstance(amount_max, int) or amount_max < 1:
            raise ValueError(f"rate={rate!r} must be positive and amount_max={amount_max!r} an integer >= 1")
        for what, ident in (("table", table), ("key_column", key_column), ("value_column", value_column),
                            ("version_column", version_column)):
            if ident is not None and not ident.isidentifier():
                raise ValueError(f"{what}={ident!r} is not a plain SQL identifier")
        self.rate, self.amount_max = float(rate), amount_max
        self.given = (table, key_column, value_column, version_column)
        self.table = self.key_column = self.value_column = self.version_column = ""
        self.rng = random.Random(seed)

    def validate(self, env: Environment) -> None:
        if env.deployment is None:
            raise ValueError("CompetingWriter needs a deployed pipeline (its schema); call env.deploy(name) first")
        db = env.deployment.pipeline.database
        table, key, value, version = self.given
        self.table, self.key_column = table or db.contended_table, key or db.key_column
        self.value_column, self.version_column = value or db.value_column, version or db.version_column
        if not self.table or not self.value_column:
            raise ValueError(f"CompetingWriter needs a table and the column it adds to: pipeline "
                             f"{env.deployment.pipeline.name} names "
                             + ("no contended table (Database(contended_table=...))" if not self.table else
                                "no value column (Database(value_column=...))") + "; or pass table=/value_column=")

    def _inject(self, env: Environment) -> None:
        from psycopg import sql

        assert env.deployment is not None
        schema = env.deployment.schema
        conninfo = env.endpoints.pg_conninfo(schema)
        tbl, kc = sql.Identifier(self.table), sql.Identifier(self.key_column)
        vc, verc = sql.Identifier(self.value_column), sql.Identifier(self.version_column)
        with psycopg.connect(conninfo, autocommit=True, application_name="chaos-competing-writer") as conn:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, key text NOT NULL, "
                                 "amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
                         .format(sql.Identifier(JOURNAL_TABLE)))
            keys = [str(r[0]) for r in conn.execute(sql.SQL("SELECT {} FROM {}").format(kc, tbl)).fetchall()]
        if not keys:
            raise ValueError(f"no rows of {schema}.{self.table} to adjust: let some load reach it first")
        self.resolved = {"schema": schema, "table": self.table, "keys": len(keys), "adjusted": 0, "amount": 0,
                         "errors": 0}
        update = sql.SQL("UPDATE {} SET {} = {} + %s, {} = {} + 1 WHERE {} = %s").format(tbl, vc, vc, verc, verc, kc)
        journal = sql.SQL("INSERT INTO {} (key, amount) VALUES (%s, %s)").format(sql.Identifier(JOURNAL_TABLE))
        timeout_ms = int(env.settings.fault_step_timeout_s * 1000)
        interval = 1.0 / self.rate

        def write() -> None:
            conn: psycopg.Connection[Any] | None = None
            while not self._stop.wait(interval):  # the writer's own cadence, not a wait for a state
                key, amount = self.rng.choice(keys), self.rng.randint(1, self.amount_max)
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(conninfo, autocommit=True, application_name="chaos-competing-writer")
                        conn.execute(f"SET lock_timeout = {timeout_ms}")
                        conn.execute(f"SET statement_timeout = {timeout_ms}")
                    with conn.transaction():
                        done = conn.execute(update, (amount, key)).rowcount == 1
                        if done:
                            conn.execute(journal, (key, amount))
                    if done:
                        self.resolved["adjusted"] += 1
                        self.resolved["amount"] += amount
                except Exception as exc:  # rolled back with its journal row: nothing applied
                    self.resolved["errors"] += 1
                    log.debug("competing_writer: %s", exc)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

        self._loop(write, "competing-writer")

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate, "amount_max": self.amount_max, "table": self.table,
                "value_column": self.value_column}


def read_adjustments(query: Any) -> dict[str, int]:
    """key -> the sum the competing writer committed (empty when it never ran); ``query`` runs SQL in the
    deployment's schema."""
    if not query("SELECT to_regclass(%s)", (JOURNAL_TABLE,))[0][0]:
        return {}
    return {str(k): int(v) for k, v in query(f"SELECT key, sum(amount) FROM {JOURNAL_TABLE} GROUP BY key")}
