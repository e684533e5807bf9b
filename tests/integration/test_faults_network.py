"""Toxiproxy faults, observed for real and gone after heal.

The latency toxic is measured where the pipeline feels it (Submit round trips while a toxic sits on
all three ingest->Kafka links at once); the other toxics are observed with a raw HTTP/2 probe through
the ``grpc`` link from the host, which sees exactly what a client would: delays, trickles, resets,
silence, closes. Every check is repeated after heal to show the effect is gone.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from chaos import stubs
from chaos.env import Environment
from chaos.faults import (
    Bandwidth,
    BlackHole,
    Latency,
    LimitData,
    LinkDown,
    ResetPeer,
    Slicer,
    SlowClose,
    Toxic,
)
from system_under_test.adapter import PROTO
from tests.integration.faults_support import deployed, h2_probe, median, submit_latencies_ms

pytestmark = pytest.mark.integration

# The grpc server answers an HTTP/1 request on its HTTP/2 port by closing the connection: a server-side
# close that slow_close can delay.
HTTP1_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def env(chaos_env: Environment) -> Iterator[Environment]:
    yield from deployed(chaos_env, "faults-network")


def test_latency_on_all_links_to_kafka_in_one_step(env: Environment) -> None:
    submit_latencies_ms(env, 10)  # warm the producer and the JIT
    before = median(submit_latencies_ms(env, 15))
    fault = Latency("ingest-kafka-*", 250, jitter_ms=25)
    with fault.active(env):
        for link in ("ingest-kafka-1", "ingest-kafka-2", "ingest-kafka-3"):
            assert [t.type for t in env.toxiproxy.toxics(link)] == ["latency"]
        during = median(submit_latencies_ms(env, 15))
    after = median(submit_latencies_ms(env, 15))
    print(f"Submit median: before {before:.0f} ms, during +250 ms toxic {during:.0f} ms, after {after:.0f} ms")
    assert 175 <= during - before <= 400, (before, during)  # the toxic's 250 ms (a busy machine adds noise)
    assert after < during - 175, (during, after)
    assert all(not env.toxiproxy.toxics(f"ingest-kafka-{i}") for i in (1, 2, 3))


def test_latency_either_direction_and_toxicity(env: Environment) -> None:
    base = median(submit_latencies_ms(env, 7))
    with Latency("client-ingest", 300, stream="upstream").active(env):
        up = median(submit_latencies_ms(env, 5))  # requests wait
    with Latency("client-ingest", 300, stream="downstream").active(env):
        down = median(submit_latencies_ms(env, 5))  # answers wait
    after = median(submit_latencies_ms(env, 7))
    # toxicity is per connection: about half of the fresh connections are delayed, the others not
    first = median([h2_probe(env).first_byte_ms or 0 for _ in range(5)])
    with Latency("client-ingest", 300, toxicity=0.5).active(env):
        firsts = [h2_probe(env).first_byte_ms or 0 for _ in range(20)]
    slow = sum(1 for t in firsts if t >= 250)
    print(f"Submit median: base {base:.0f} ms, +300 upstream {up:.0f} ms, +300 downstream {down:.0f} ms, "
          f"after {after:.0f} ms; toxicity 0.5: {slow}/20 connections delayed (first byte {first:.1f} ms "
          "without the toxic)")
    assert 220 <= up - base <= 450 and 220 <= down - base <= 450, (base, up, down)
    assert after < min(up, down) - 220
    assert 2 <= slow <= 18
    assert max(firsts) >= 290 and min(firsts) < 100


def test_bandwidth_black_hole_reset_and_link_down(env: Environment) -> None:
    pb2, pb2_grpc = stubs.load(PROTO, env.settings.cache_dir)
    big = pb2.Event(event_id="too-big", key="k" * 200_000, seq=1, amount=1)  # 200 KB, rejected by the service

    def send_big() -> tuple[float, grpc.StatusCode]:
        import time

        with grpc.insecure_channel(env.endpoints.grpc) as ch:
            t = time.perf_counter()
            try:
                pb2_grpc.IngestStub(ch).Submit(big, timeout=15)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            return time.perf_counter() - t, code

    base_s, code = send_big()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    with Bandwidth("client-ingest", rate_kbps=100, stream="upstream").active(env):
        slow_s, code = send_big()
    after_s, _ = send_big()
    print(f"200 KB request: {base_s * 1000:.0f} ms, at 100 KB/s {slow_s * 1000:.0f} ms, after {after_s * 1000:.0f} ms")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert 1.5 <= slow_s <= 6 and base_s < 0.8 and after_s < 0.8

    with BlackHole("client-ingest").active(env):
        hole = h2_probe(env, timeout_s=2)
        with grpc.insecure_channel(env.endpoints.grpc) as ch, pytest.raises(grpc.RpcError) as err:
            pb2_grpc.IngestStub(ch).Submit(pb2.Event(event_id="bh", key="k", seq=1, amount=1), timeout=2)
    assert hole.end == "timeout" and hole.received == 0, hole
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    with ResetPeer("client-ingest", timeout_ms=0).active(env):
        reset = h2_probe(env, until_close=True, timeout_s=3)
    assert reset.end in ("reset", "eof") and reset.received == 0 and reset.end_ms < 1000, reset

    with LinkDown("client-ingest").active(env):
        down = h2_probe(env, until_close=True, timeout_s=3)
    assert down.end in ("refused", "eof", "reset") and down.received == 0 and down.end_ms < 1000, down

    healthy = h2_probe(env)
    assert healthy.end == "data" and healthy.first_byte_ms is not None and healthy.first_byte_ms < 200, healthy


def test_slow_close_slicer_and_limit_data(env: Environment) -> None:
    closed = h2_probe(env, send=HTTP1_REQUEST, until_close=True, timeout_s=5)
    assert closed.end in ("eof", "reset") and closed.end_ms < 500, closed
    with SlowClose("client-ingest", delay_ms=1500).active(env):
        lingering = h2_probe(env, send=HTTP1_REQUEST, until_close=True, timeout_s=5)
    print(f"server close seen after {closed.end_ms:.0f} ms, with slow_close 1500 ms after {lingering.end_ms:.0f} ms")
    assert lingering.end in ("eof", "reset") and 1400 <= lingering.end_ms <= 3500, lingering

    whole = h2_probe(env, until_close=False, min_bytes=9)
    with Slicer("client-ingest", average_size=1, delay_us=20_000).active(env):
        sliced = h2_probe(env, until_close=False, min_bytes=9, timeout_s=5)
    print(f"first 9 bytes: {whole.chunks} chunk(s) in {whole.end_ms:.0f} ms; sliced: {sliced.chunks} chunks "
          f"in {sliced.end_ms:.0f} ms")
    assert sliced.chunks >= 5 and sliced.end_ms >= 100, sliced

    with LimitData("client-ingest", bytes_=5).active(env):
        limited = h2_probe(env, until_close=True, timeout_s=3)
    assert limited.received == 5 and limited.end in ("eof", "reset"), limited
    full = h2_probe(env, min_bytes=9)
    assert full.received >= 9 and full.end == "data", full


def test_bad_toxics_fail_before_anything_is_injected(env: Environment) -> None:
    with pytest.raises(ValueError, match="accepted: latency, bandwidth"):
        Toxic("client-ingest", "lag", {"latency": 1})
    with pytest.raises(ValueError, match="accepted: rate"):
        Toxic("client-ingest", "bandwidth", {"speed": 1})
    with pytest.raises(ValueError, match="stream 'sideways' is not one of upstream, downstream"):
        Latency("client-ingest", 10, stream="sideways")
    with pytest.raises(ValueError, match="no link matches 'kafka-9'; links: client-ingest, ingest-kafka-1"):
        Latency("kafka-9", 10).inject(env)
    assert all(not env.toxiproxy.toxics(name) for name in env.links)
