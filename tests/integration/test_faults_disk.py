"""A broker's log disk filling up: the broker sees "No space left on device", produce fails, the
broker shuts itself down (its only log dir failed) and its partitions move; heal frees the space and
starts it again, and it rejoins with its data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from chaos.env import Environment, kafka_client_config, wait_until
from chaos.faults import DiskFull, LeaderOf
from tests.integration.faults_support import deployed, produce_latency_ms, topic_view

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(chaos_env: Environment) -> Iterator[Environment]:
    yield from deployed(chaos_env, "faults-disk")


def avail_bytes(env: Environment, node: str) -> int:
    out = env.exec_checked(env.disks_keeper(), ["df", "-B1", "--output=avail", f"/disks/{node}"], "df")
    return int(out.split()[-1])


def test_full_log_disk_fails_produce_and_heals(env: Environment) -> None:
    assert env.deployment is not None
    leader = LeaderOf(0).resolve(env)
    broker = int(leader.split("-")[1])
    free_before = avail_bytes(env, leader)
    _, err = produce_latency_ms(env, 0)
    assert err is None
    errors: dict[str, int] = {}

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            name = err.name()  # type: ignore[attr-defined]
            errors[name] = errors.get(name, 0) + 1

    # no retries: the first answer of the full broker is what the client sees; connected beforehand
    producer = Producer(kafka_client_config(env.endpoints.kafka_external, acks="all", retries=0,
                                            **{"enable.idempotence": False, "message.timeout.ms": 10000}))
    producer.produce(env.deployment.topic, value=b"warm", partition=0)
    assert producer.flush(10) == 0
    t = time.monotonic()
    # 256 KiB left: the broker's small periodic writes (checkpoints) still fit, a 2 MB produce does not
    with DiskFull(LeaderOf(0), leave_bytes=256 * 1024).active(env) as fault:
        assert fault.resolved["nodes"] == [leader] and avail_bytes(env, leader) <= 256 * 1024
        for _ in range(20):
            producer.produce(env.deployment.topic, value=b"x" * 100_000, partition=0, on_delivery=on_delivery)
        producer.flush(15)
        wait_until(lambda: env.container(leader).status == "exited", env.settings.fault_step_timeout_s,
                   f"{leader} to stop on its failed log dir")
        down_s = time.monotonic() - t
        log = env.container(leader).logs(tail=2000).decode(errors="replace")
        moved = wait_until(lambda: (lead := topic_view(env, avoid=(broker,))[0][0]) not in (broker, -1) and lead,
                           env.settings.fault_step_timeout_s, "partition 0 to get a new leader")
    assert env.container(leader).status == "running"
    assert avail_bytes(env, leader) > free_before - 16 * 1024 * 1024  # the ballast is gone
    env.wait_recovered()
    latency, err_after = produce_latency_ms(env, 0)
    print(f"disk of {leader} filled ({fault.resolved['filled_bytes'][leader] / 2**20:.0f} MiB ballast): produce "
          f"errors {errors}; broker down after {down_s:.1f} s, partition 0 led by kafka-{moved}; "
          f"after heal produce {latency:.0f} ms")
    assert "No space left on device" in log
    assert "KAFKA_STORAGE_ERROR" in errors or "NOT_LEADER_OR_FOLLOWER" in errors, errors
    assert err_after is None
