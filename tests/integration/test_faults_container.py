"""Container faults and roles, against the real topology: each effect is observed, then shown gone.

Roles are checked against the cluster's own view (quorum-state files, partition metadata); a paused
leader stalls a produce on its partition until the cluster fences it; a killed leader loses its
partition; a gracefully stopped projector leaves its group at once; a restarted ingest serves again;
a rolling restart of the brokers restarts each of them while a producer loses nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from chaos.env import Environment, kafka_client_config, wait_until
from chaos.env.readiness import grpc_serving
from chaos.faults import (
    ActiveController,
    Isolate,
    Kill,
    LeaderOf,
    Majority,
    Minority,
    Node,
    Pause,
    Restart,
    RollingRestart,
    Service,
    Stop,
    target,
)
from tests.integration.faults_support import deployed, produce_latency_ms, submit_latencies_ms, topic_view

pytestmark = pytest.mark.integration


def test_roles_needing_a_pipeline_fail_clearly_before_injection(chaos_env: Environment) -> None:
    chaos_env.undeploy()
    for t, role in ((Service("projector"), "Service\\('projector'\\)"), (Service("ingest"), "Service\\('ingest'\\)"),
                    (LeaderOf(0), "LeaderOf")):
        with pytest.raises(ValueError, match=f"{role} needs a deployed pipeline"):
            Pause(t).inject(chaos_env)
    with pytest.raises(ValueError, match=r"unknown role 'kafka-9': the brokers are kafka-1, kafka-2 and kafka-3"):
        Pause("kafka-9")
    with pytest.raises(ValueError, match=r"unknown node 'kafka-7'; accepted: kafka-1, kafka-2, kafka-3, postgres"):
        Kill(Node("kafka-7")).inject(chaos_env)
    assert all(chaos_env.container(n).status == "running" for n in chaos_env.node_names())


def test_containers_without_this_runs_label_are_refused(chaos_env: Environment) -> None:
    assert chaos_env.client is not None
    intruder = chaos_env.client.containers.run(chaos_env.images["nethelper"], ["sleep", "60"], detach=True,
                                               network_mode="none", labels={"purpose": "not ours"})
    try:
        chaos_env._containers["intruder"] = intruder  # as if a name pointed at a foreign container
        for fault in (Pause(Node("intruder")), Kill(Node("intruder")), Isolate(Node("intruder"))):
            with pytest.raises(PermissionError, match="does not carry this run's label; refusing to touch it"):
                fault.inject(chaos_env)
        intruder.reload()
        assert intruder.status == "running"
    finally:
        chaos_env._containers.pop("intruder", None)
        intruder.remove(force=True)


@pytest.fixture(scope="module")
def env(chaos_env: Environment) -> Iterator[Environment]:
    yield from deployed(chaos_env, "faults-container")


def test_roles_resolve_to_what_the_cluster_says(env: Environment) -> None:
    states = {b: env.quorum_state(b) for b in env.broker_names()}
    leaders = {s["leaderId"] for s in states.values()}
    assert len(leaders) == 1, states
    assert ActiveController().nodes(env) == [f"kafka-{leaders.pop()}"]
    view = topic_view(env)
    for p in (0, 3):
        assert target(f"leader:{p}").nodes(env) == [f"kafka-{view[p][0]}"]
    minority, majority = Minority().nodes(env), Majority().nodes(env)
    assert len(minority) == 1 and len(majority) == 2
    assert ActiveController().nodes(env)[0] in Minority(include=ActiveController()).nodes(env)
    assert Service("projector", 2).nodes(env) == ["projector-2"] and target("ingest").nodes(env) == ["ingest"]


def test_pause_stalls_requests_until_unpaused(env: Environment) -> None:
    leader = LeaderOf(0).resolve(env)
    broker = int(leader.split("-")[1])
    base, err = produce_latency_ms(env, 0)
    assert err is None
    env.broker_metadata(broker)  # the leader answers on its own listener
    with Pause(leader).active(env) as fault:
        assert env.container(leader).status == "paused"
        assert fault.resolved["nodes"] == [leader]
        stalled, err = produce_latency_ms(env, 0)  # waits on the frozen leader until it is fenced
        with pytest.raises(OSError):  # a frozen broker: the request times out
            env.broker_metadata(broker, timeout_s=2)
    assert env.container(leader).status == "running"
    env.wait_recovered()
    after, err_after = produce_latency_ms(env, 0)
    env.broker_metadata(broker)
    print(f"produce to partition 0: {base:.0f} ms; leader {leader} paused: {stalled:.0f} ms ({err}); "
          f"after unpause {after:.0f} ms")
    assert err is None and stalled >= 2000, (stalled, err)  # stalled, then delivered through a new leader
    assert err_after is None and after < 1000


def test_kill_stop_and_restart(env: Environment) -> None:
    assert env.deployment is not None
    leader = LeaderOf(1).resolve(env)
    broker = int(leader.split("-")[1])
    with Kill(LeaderOf(1)).active(env) as fault:
        assert fault.resolved["nodes"] == [leader]
        c = env.container(leader)
        assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
        moved = wait_until(lambda: topic_view(env, avoid=(broker,))[1][0] not in (broker, -1),
                           env.settings.fault_step_timeout_s, "partition 1 to get a new leader")
        assert moved
    assert env.container(leader).status == "running"
    env.wait_recovered()

    group = env.deployment.groups["projector"]
    clients: list[AdminClient] = []  # kept alive to the end: never garbage-collected from librdkafka's threads

    def members() -> int:
        # a fresh client each time: one whose coordinator died may keep answering NOT_COORDINATOR
        clients.append(AdminClient(kafka_client_config(env.endpoints.kafka_external)))
        desc = clients[-1].describe_consumer_groups([group], request_timeout=20)[group].result(timeout=25)
        return len(desc.members)

    wait_until(lambda: members() == 2, env.settings.pipeline_ready_timeout_s, "both projectors in the group")
    t = time.monotonic()
    with Stop(Service("projector", 1)).active(env):
        c = env.container("projector-1")
        assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 0  # SIGTERM: finished and left
        wait_until(lambda: members() == 1, env.settings.fault_step_timeout_s, "projector-1 to leave the group")
        left_s = time.monotonic() - t
    wait_until(lambda: members() == 2, env.settings.pipeline_ready_timeout_s, "projector-1 to rejoin")
    print(f"graceful stop: projector-1 left the group after {left_s:.1f} s (session timeout "
          f"{env.settings.consumer_session_timeout_ms / 1000:.0f} s)")
    assert left_s < env.settings.consumer_session_timeout_ms / 1000

    started = env.container("ingest").attrs["State"]["StartedAt"]
    with Restart(Service("ingest")).active(env):
        assert env.container("ingest").attrs["State"]["StartedAt"] != started
    wait_until(lambda: grpc_serving(env.entry_address())[0], env.settings.pipeline_ready_timeout_s,
               "ingest to serve again")
    assert len(submit_latencies_ms(env, 3)) == 3


def test_rolling_restart_of_the_brokers_loses_nothing(env: Environment) -> None:
    assert env.deployment is not None
    topic = env.deployment.topic
    started = {b: env.container(b).attrs["State"]["StartedAt"] for b in env.broker_names()}
    delivered: list[bool] = []
    errors: list[str] = []
    stop = threading.Event()
    producer = Producer(kafka_client_config(env.endpoints.kafka_external, acks="all", **{
        "enable.idempotence": True, "message.timeout.ms": 60000, "request.timeout.ms": 5000}))

    def on_delivery(err: object, _msg: object) -> None:
        (errors.append(str(err)) if err else delivered.append(True))

    def produce() -> None:
        i = 0
        while not stop.wait(0.02):  # the load's own pace: 50 records/s
            producer.produce(topic, key=f"k{i % 8}".encode(), value=b"v", on_delivery=on_delivery)
            producer.poll(0)
            i += 1

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    fault = RollingRestart()
    t = time.monotonic()
    try:
        with fault.active(env):
            pass
    finally:
        stop.set()
        thread.join(timeout=5)
        left = producer.flush(60)
    roll_s = time.monotonic() - t
    restarted = {b: env.container(b).attrs["State"]["StartedAt"] for b in env.broker_names()}
    print(f"rolling restart took {roll_s:.1f} s, steps {fault.resolved['steps']}; "
          f"{len(delivered)} records delivered, {len(errors)} errors, {left} undelivered")
    assert all(restarted[b] != started[b] for b in started), (started, restarted)
    assert [s["node"] for s in fault.resolved["steps"]] == env.broker_names()
    assert left == 0 and not errors and len(delivered) > 100
    view = topic_view(env)
    assert all(len(isr) == 3 for _, isr in view.values()), view
