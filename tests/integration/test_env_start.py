"""A container that exits while the environment starts is named at once, with its status and log tail.

The brokers here are given a heap too small for the JVM to start (``kafka_heap=1k``), so each exits
with status 1 right after formatting its storage. The start must fail with an error that names the
broker, its exit status and its last log lines within seconds of the exit, not after the start bound;
and the failed start must leave nothing behind.
"""

from __future__ import annotations

import datetime as dt
import time

import docker
import pytest

from chaos.config import Settings
from chaos.env import LABEL_RUN, Environment, EnvironmentError_
from chaos.images import resolve
from system_under_test.adapter import PIPELINE

pytestmark = pytest.mark.integration

REPORTED_WITHIN_S = 10.0  # from the broker's exit to the error


def test_a_broker_that_exits_at_start_is_reported_with_its_status_and_log() -> None:
    settings = Settings.from_env().replace(kafka_heap="1k", env_start_timeout_s=120.0)
    env = Environment(settings, resolve(settings, PIPELINE), PIPELINE)
    started = time.monotonic()
    try:
        with pytest.raises(EnvironmentError_) as caught:
            env.start()
        raised_at = dt.datetime.now(dt.UTC)
        message = str(caught.value)
        assert "kafka-" in message and "exited with status 1" in message, message
        assert "heap" in message.lower(), f"the log tail should show the JVM's complaint: {message}"
        broker = message.split(" ", 1)[0]
        assert env.client is not None
        c = env.client.containers.get(f"{env.prefix}-{broker}")
        finished = dt.datetime.fromisoformat(c.attrs["State"]["FinishedAt"].replace("Z", "+00:00")[:26] + "+00:00")
        lag_s = (raised_at - finished).total_seconds()
        assert lag_s < REPORTED_WITHIN_S, f"reported {lag_s:.1f} s after {broker} exited"
        assert time.monotonic() - started < settings.env_start_timeout_s / 2, "it waited for the start bound"
    finally:
        env.stop()
    client = docker.from_env()
    flt = {"label": f"{LABEL_RUN}={env.run_id}"}
    left = client.containers.list(all=True, filters=flt) + client.networks.list(filters=flt) \
        + client.volumes.list(filters=flt)
    assert not left, f"a failed start left {left} behind"
