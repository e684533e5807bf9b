"""Partitions (iptables) and netem, observed through the cluster and the network itself.

An isolated partition leader loses its leadership and drops out of every ISR; a split with the active
controller in the minority elects a new controller in the majority; a bridge cuts exactly the two
outer brokers from each other; a one-way cut drops datagrams in one direction only; netem's delay,
loss, duplication and corruption show in ping statistics (and delay in Postgres round trips). After
each heal the effect is gone and no rule of ours is left in the namespace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from chaos.env import Environment, wait_until
from chaos.faults import ActiveController, Bridge, Isolate, LeaderOf, Minority, NetEm, OneWay, Split
from tests.integration.faults_support import deployed, median, ping, produce_latency_ms, tcp_reachable, topic_view

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(chaos_env: Environment) -> Iterator[Environment]:
    yield from deployed(chaos_env, "faults-partition")


def no_chaos_rules(env: Environment, node: str) -> bool:
    out = env.run_helper(node, "iptables -S; iptables -t mangle -S; iptables-legacy -S 2>/dev/null; true")
    return "CHAOS" not in out


def test_isolated_leader_loses_leadership_and_leaves_the_isr(env: Environment) -> None:
    s = env.settings
    leader = LeaderOf(0).resolve(env)
    broker = int(leader.split("-")[1])
    t = time.monotonic()
    with Isolate(LeaderOf(0)).active(env) as fault:
        assert fault.resolved["a"] == [leader]

        def gone() -> bool:
            view = topic_view(env, avoid=(broker,))
            return all(lead != broker and broker not in isr for lead, isr in view.values())

        wait_until(gone, s.fault_step_timeout_s, f"{leader} to lose leadership and leave every ISR")
        gone_s = time.monotonic() - t
        latency, err = produce_latency_ms(env, 0, avoid=(broker,))  # the majority carries on
        assert err is None, err
        assert not tcp_reachable(env, "kafka-1" if broker != 1 else "kafka-2", leader)
    env.wait_recovered()
    back_s = time.monotonic() - t - gone_s
    print(f"isolated {leader}: out of leadership and ISRs after {gone_s:.1f} s (broker session timeout "
          f"{s.kafka_broker_session_timeout_ms / 1000:.0f} s); produce meanwhile {latency:.0f} ms; "
          f"full ISR {back_s:.1f} s after heal")
    assert no_chaos_rules(env, leader)


def test_split_with_the_controller_in_the_minority_moves_the_controller(env: Environment) -> None:
    s = env.settings
    old = env.active_controller()
    t = time.monotonic()
    with Split(Minority(include=ActiveController())).active(env) as fault:
        assert fault.resolved["a"] == [f"kafka-{old}"] and len(fault.resolved["b"]) == 2
        new = wait_until(lambda: (c := env.active_controller()) != old and c, s.fault_step_timeout_s,
                         "the majority to elect a new controller")
        wait_until(lambda: all(old not in isr for _, isr in topic_view(env, avoid=(old,)).values()),
                   s.fault_step_timeout_s, f"kafka-{old} to leave every ISR")
        elected_s = time.monotonic() - t
        assert tcp_reachable(env, "ingest", f"kafka-{old}")  # clients still reach both sides
    env.wait_recovered()
    states = [env.quorum_state(b) for b in env.broker_names()]
    wait_until(lambda: len({env.quorum_state(b)["leaderId"] for b in env.broker_names()}) == 1,
               s.fault_step_timeout_s, "every voter to agree on the controller again")
    print(f"split: controller {old} in the minority, kafka-{new} elected in {elected_s:.1f} s; after heal "
          f"quorum states {[(st['leaderId'], st['leaderEpoch']) for st in states]}")
    assert new != old
    assert no_chaos_rules(env, f"kafka-{old}")


def test_bridge_and_one_way(env: Environment) -> None:
    pairs = [("kafka-1", "kafka-3"), ("kafka-3", "kafka-1"), ("kafka-1", "kafka-2"), ("kafka-2", "kafka-3")]
    assert all(tcp_reachable(env, a, b) for a, b in pairs)
    with Bridge(bridge="kafka-2").active(env) as fault:
        assert fault.resolved["bridge"] == ["kafka-2"]
        during = {(a, b): tcp_reachable(env, a, b) for a, b in pairs}
    assert during == {("kafka-1", "kafka-3"): False, ("kafka-3", "kafka-1"): False,
                      ("kafka-1", "kafka-2"): True, ("kafka-2", "kafka-3"): True}, during
    assert all(tcp_reachable(env, a, b) for a, b in pairs)

    def datagrams(src: str, dst: str) -> bool:
        """Does a UDP datagram from src reach a listener in dst's namespace?"""
        listener = env.start_helper(dst, ["sh", "-c", "echo ready; exec nc -u -l 9999"], purpose="udp",
                                    ready="ready")
        try:
            ip = env.node_ip(dst)
            env.container(src).exec_run(["bash", "-c", f"for i in 1 2 3 4 5; do echo from-{src} "
                                                       f"> /dev/udp/{ip}/9999; sleep 0.1; done"])
        finally:
            out = env.stop_helper(listener)
        return f"from-{src}" in out

    with OneWay("kafka-1", "kafka-2").active(env):
        one_to_two, two_to_one = datagrams("kafka-1", "kafka-2"), datagrams("kafka-2", "kafka-1")
        tcp = tcp_reachable(env, "kafka-2", "kafka-1")
    assert (one_to_two, two_to_one) == (False, True)
    assert not tcp  # TCP needs both directions: a one-way cut breaks it both ways
    assert datagrams("kafka-1", "kafka-2") and tcp_reachable(env, "kafka-2", "kafka-1")
    assert no_chaos_rules(env, "kafka-2")


def test_netem_delay_loss_duplication_corruption(env: Environment) -> None:
    def icmp_csum_errors() -> int:
        out = env.exec_checked(env.container("kafka-1"), ["cat", "/proc/net/snmp"], "reading snmp")
        head, values = [line.split() for line in out.splitlines() if line.startswith("Icmp:")][:2]
        return int(values[head.index("InCsumErrors")])

    base = ping(env, "kafka-3", "kafka-1")
    assert base.loss_pct == 0 and base.duplicates == 0 and base.avg_ms is not None and base.avg_ms < 20
    with NetEm("kafka-3", delay_ms=100, jitter_ms=10).active(env) as fault:
        delayed = ping(env, "kafka-3", "kafka-1", count=20)
    backend = fault.resolved["backend"]["kafka-3"]
    with NetEm("kafka-3", loss_pct=40).active(env):
        lossy = ping(env, "kafka-3", "kafka-1", count=60)
    with NetEm("kafka-3", duplicate_pct=50).active(env):
        duplicated = ping(env, "kafka-3", "kafka-1")
    csum_before = icmp_csum_errors()
    with NetEm("kafka-3", corrupt_pct=40).active(env):
        corrupted = ping(env, "kafka-3", "kafka-1", count=60)
    csum_errors = icmp_csum_errors() - csum_before
    after = ping(env, "kafka-3", "kafka-1")

    def pg_round_trip_ms() -> float:
        with psycopg.connect(env.endpoints.pg_conninfo(), autocommit=True) as conn:
            samples = []
            for _ in range(7):
                t = time.perf_counter()
                conn.execute("SELECT 1").fetchall()
                samples.append((time.perf_counter() - t) * 1000)
        return median(samples)

    pg_base = pg_round_trip_ms()
    with NetEm("postgres", delay_ms=100).active(env):
        pg_delayed = pg_round_trip_ms()
    pg_after = pg_round_trip_ms()
    print(f"netem backend {backend}: ping avg {base.avg_ms:.2f} ms -> +100+-10 ms delay {delayed.avg_ms:.0f} ms; "
          f"40% loss -> {lossy.loss_pct:.0f}% lost; 50% duplication -> {duplicated.duplicates}/{duplicated.sent} "
          f"duplicates; 40% corruption -> {corrupted.loss_pct:.0f}% lost, {csum_errors} ICMP checksum errors at "
          f"the receiver; after heal {after.avg_ms:.2f} ms, {after.loss_pct:.0f}% lost, {after.duplicates} dups; "
          f"Postgres SELECT 1 {pg_base:.1f} -> {pg_delayed:.0f} -> {pg_after:.1f} ms")
    assert delayed.avg_ms is not None and 80 <= delayed.avg_ms <= 160, delayed
    assert 15 <= lossy.loss_pct <= 70, lossy
    assert duplicated.duplicates >= 8 and duplicated.loss_pct == 0, duplicated
    assert 15 <= corrupted.loss_pct <= 70 and csum_errors >= 5, (corrupted, csum_errors)
    assert after.loss_pct == 0 and after.duplicates == 0 and after.avg_ms is not None and after.avg_ms < 20, after
    assert 80 <= pg_delayed - pg_base <= 200 and pg_after < pg_delayed - 70, (pg_base, pg_delayed, pg_after)
    assert no_chaos_rules(env, "kafka-3") and no_chaos_rules(env, "postgres")
