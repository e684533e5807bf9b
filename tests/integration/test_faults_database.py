"""Database faults under load: held row locks, a competing writer, terminated backends, a Postgres restart.

Load runs through the whole pipeline (open loop, 100 RPCs/s) while each fault is active. Held row locks
with a concurrent write make the projectors stall on the locks and then see version conflicts, which
they retry (their conflict counter and log say so); a pure lock only stalls them. Terminated backends
and a database restart make the projectors restart from their committed offsets. After each heal the
projectors apply events again and their counters stop moving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from chaos import truth
from chaos.env import Environment, wait_until
from chaos.faults import CompetingWriter, HoldRowLocks, Restart, TerminateBackends
from chaos.faults.database import read_adjustments
from chaos.history import History
from chaos.workload import LoadGenerator, LoadSpec
from tests.integration.faults_support import metric

pytestmark = pytest.mark.integration

PROJECTORS = ("projector-1", "projector-2")
HOLD_S = 4.0  # how long the locks are held: well under refpipe's statement_timeout (10 s)


@pytest.fixture(scope="module")
def env(chaos_env: Environment) -> Iterator[Environment]:
    chaos_env.deploy("faults-database")
    gen = LoadGenerator(chaos_env.pipeline.client, chaos_env.endpoints.grpc, LoadSpec(rate=100, keys=8), History(),
                        seed=7, rpc_timeout_s=chaos_env.settings.rpc_timeout_s, id_prefix="dbf").start()
    try:
        yield chaos_env
    finally:
        gen.stop()
        chaos_env.undeploy()


def total(env: Environment, name: str) -> float:
    return sum(metric(env, p, name) for p in PROJECTORS)


def applied(env: Environment) -> int:
    assert env.deployment is not None
    return truth.count_applied(env, env.deployment)


def wait_applying(env: Environment, what: str) -> None:
    start = applied(env)
    wait_until(lambda: applied(env) > start + 50, env.settings.fault_step_timeout_s, f"the projectors to apply "
               f"events again ({what})")


def test_held_row_locks_cause_write_conflicts_then_pass(env: Environment) -> None:
    wait_until(lambda: applied(env) > 100, env.settings.pipeline_ready_timeout_s, "load to reach Postgres")
    conflicts0 = total(env, "refpipe_projector_conflicts_total")
    with HoldRowLocks().active(env) as fault:
        held_at = applied(env)
        time.sleep(HOLD_S)  # the fault's duration: the projectors are blocked meanwhile
        during = applied(env) - held_at
        assert fault.resolved["locked"] == 8
    wait_applying(env, "after the locks")
    conflicts = total(env, "refpipe_projector_conflicts_total") - conflicts0
    logs = "".join(env.container(p).logs(tail=300).decode() for p in PROJECTORS)
    print(f"locks on {fault.resolved['locked']} rows held {HOLD_S:.0f} s: {during} events applied meanwhile; "
          f"{conflicts:.0f} version conflicts retried after release")
    assert during <= 2, "the projectors applied events through locks held on every row"
    assert conflicts >= 1 and "version conflict on" in logs and "retrying batch" in logs
    settled = total(env, "refpipe_projector_conflicts_total")
    wait_applying(env, "after the conflicts")
    assert total(env, "refpipe_projector_conflicts_total") == settled, "conflicts went on after heal"

    with HoldRowLocks(write=False).active(env):
        held_at = applied(env)
        time.sleep(HOLD_S / 2)
        blocked = applied(env) - held_at
    wait_applying(env, "after a pure lock")
    assert blocked <= 2 and total(env, "refpipe_projector_conflicts_total") == settled  # waited, no conflict


def test_a_competing_writer_journals_exactly_what_it_applied(env: Environment) -> None:
    assert env.deployment is not None
    db = truth.db_of(env, env.deployment)
    conflicts0 = total(env, "refpipe_projector_conflicts_total")
    with CompetingWriter(rate=20.0, seed=3).active(env) as fault:
        time.sleep(3.0)  # the fault's duration
    adjusted, amount = fault.resolved["adjusted"], fault.resolved["amount"]
    rows = db.query("SELECT count(*), sum(amount) FROM chaos_adjustments")[0]
    assert adjusted >= 20 and (int(rows[0]), int(rows[1])) == (adjusted, amount), (fault.resolved, rows)
    assert read_adjustments(db.query) and sum(read_adjustments(db.query).values()) == amount
    time.sleep(0.5)  # healed: nothing more may be written
    assert int(db.query("SELECT count(*) FROM chaos_adjustments")[0][0]) == adjusted, "the writer outlived its heal"
    wait_applying(env, "after the competing writer")
    print(f"{adjusted} adjustments ({amount} in all) in 3 s; "
          f"{total(env, 'refpipe_projector_conflicts_total') - conflicts0:.0f} projector batches retried on them")


def test_terminated_backends_and_a_postgres_restart(env: Environment) -> None:
    restarts0 = total(env, "refpipe_projector_restarts_total")
    with TerminateBackends("refpipe-projector-%").active(env) as fault:
        pass
    assert fault.resolved["terminated"] == 2, fault.resolved
    wait_applying(env, "after their sessions were terminated")
    restarts1 = total(env, "refpipe_projector_restarts_total")
    assert restarts1 >= restarts0 + 2

    # repeated: every second, for 3 seconds
    with TerminateBackends("refpipe-projector-%", interval_s=1.0).active(env) as repeated:
        time.sleep(3.2)
    assert repeated.resolved["terminated"] >= 4, repeated.resolved
    wait_applying(env, "after repeated terminations")

    conn = psycopg.connect(env.endpoints.pg_conninfo(), autocommit=True)
    started = env.container("postgres").attrs["State"]["StartedAt"]
    restarts2 = total(env, "refpipe_projector_restarts_total")
    with Restart("postgres").active(env):
        assert env.container("postgres").attrs["State"]["StartedAt"] != started
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    wait_until(lambda: env._postgres_ready(), env.settings.fault_step_timeout_s, "Postgres to accept connections")
    wait_applying(env, "after the database restart")
    restarts3 = total(env, "refpipe_projector_restarts_total")
    print(f"projector restarts: {restarts1 - restarts0:.0f} after terminating 2 sessions, "
          f"{repeated.resolved['terminated']} sessions terminated in 3 s, {restarts3 - restarts2:.0f} after a "
          f"Postgres restart")
    assert restarts3 >= restarts2 + 2
