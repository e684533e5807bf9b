"""Measuring instruments for the fault tests: each fault's effect is observed from outside, for real.

Nothing here injects anything; these are the probes the tests read: gRPC call latencies through the
``grpc`` link, a raw HTTP/2 probe through the same link (sees bytes, resets, closes), produce latency on
one partition from the host (EXTERNAL listener, no toxics), a Prometheus metric of a pipeline
container, TCP reachability between containers, and ping statistics from a node's namespace.
"""

from __future__ import annotations

import re
import socket
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from chaos import stubs
from chaos.env import Environment, kafka_client_config
from system_under_test.adapter import PROTO

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def deployed(env: Environment, name: str) -> Iterator[Environment]:
    """The body of a fault module's ``env`` fixture: a pipeline deployed for the module, removed after it."""
    env.deploy(name)
    try:
        yield env
    finally:
        env.undeploy()


def submit_latencies_ms(env: Environment, n: int, *, key: str = "probe", deadline_s: float = 10.0) -> list[float]:
    """``n`` sequential Submit calls through the grpc link; latency of each acknowledged call, in ms."""
    import grpc

    pb2, pb2_grpc = stubs.load(PROTO, env.settings.cache_dir)
    out = []
    with grpc.insecure_channel(env.endpoints.grpc) as ch:
        stub = pb2_grpc.IngestStub(ch)
        for i in range(n):
            ev = pb2.Event(event_id=f"probe-{uuid.uuid4().hex}", key=key, seq=i + 1, amount=1)
            t = time.perf_counter()
            stub.Submit(ev, timeout=deadline_s)
            out.append((time.perf_counter() - t) * 1000)
    return out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


@dataclass
class ProbeResult:
    """What a raw HTTP/2 probe through the grpc link saw."""

    connect_ms: float
    first_byte_ms: float | None  # None: nothing came back within the timeout
    received: int  # bytes received before EOF / reset / timeout
    chunks: int  # recv() calls that returned data
    end: str  # "eof", "reset", "timeout", "refused"
    end_ms: float


def h2_probe(env: Environment, *, send: bytes = H2_PREFACE, until_close: bool = False, timeout_s: float = 3.0,
             min_bytes: int = 9) -> ProbeResult:
    """Open a TCP connection to the grpc link, send ``send`` and read what comes back.

    By default it stops once ``min_bytes`` arrived (the server's SETTINGS frame); with ``until_close``
    it reads until the connection ends (EOF or reset) or ``timeout_s`` passes."""
    host, port = env.endpoints.grpc.rsplit(":", 1)
    t0 = time.perf_counter()
    ms = lambda: (time.perf_counter() - t0) * 1000  # noqa: E731
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    except ConnectionRefusedError:
        return ProbeResult(ms(), None, 0, 0, "refused", ms())
    connect_ms = ms()
    first: float | None = None
    received = chunks = 0
    end = "timeout"
    try:
        sock.settimeout(timeout_s)
        sock.sendall(send)
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            sock.settimeout(max(0.01, deadline - time.perf_counter()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                end = "timeout"
                break
            except (ConnectionResetError, BrokenPipeError):
                end = "reset"
                break
            if not data:
                end = "eof"
                break
            if first is None:
                first = ms()
            received += len(data)
            chunks += 1
            if not until_close and received >= min_bytes:
                end = "data"
                break
    except (ConnectionResetError, BrokenPipeError):
        end = "reset"
    finally:
        sock.close()
    return ProbeResult(connect_ms, first, received, chunks, end, ms())


def produce_latency_ms(env: Environment, partition: int, *, timeout_s: float = 30.0,
                       request_timeout_ms: int = 3000, avoid: tuple[int, ...] = ()) -> tuple[float, str | None]:
    """Produce one record to ``partition`` of the deployed topic from the host (acks=all, no toxics).

    Returns (latency in ms, error name or None). The producer retries onto a new leader by itself.
    ``avoid`` keeps brokers out of the bootstrap list: an isolated broker still answers the host, and
    its stale metadata would name itself leader, so the producer would keep writing to it."""
    assert env.deployment is not None
    result: dict[str, Any] = {}
    bootstrap = ",".join(addr for b, addr in env.endpoints.kafka_external_by_broker.items() if b not in avoid)
    p = Producer(kafka_client_config(bootstrap, acks="all",
                                     **{"request.timeout.ms": request_timeout_ms,
                                        "message.timeout.ms": int(timeout_s * 1000), "linger.ms": 0}))

    def done(err: Any, _msg: Any) -> None:
        result["err"] = err.name() if err else None
        result["t"] = time.perf_counter()

    t = time.perf_counter()
    p.produce(env.deployment.topic, key=b"probe", value=b"probe", partition=partition, on_delivery=done)
    p.flush(timeout_s + 5)
    if "t" not in result:
        return (timeout_s + 5) * 1000, "NOT_DELIVERED"
    return (result["t"] - t) * 1000, result["err"]


def metric(env: Environment, node: str, name: str) -> float:
    """A Prometheus counter/gauge of a pipeline container (its /metrics on port 9100, read from inside)."""
    code = ("import urllib.request;"
            "print(urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=5).read().decode())")
    out = env.exec_checked(env.container(node), ["python", "-c", code], f"reading {node}'s metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", out, re.M)
    if not m:
        raise AssertionError(f"{node} exposes no metric {name}")
    return float(m.group(1))


def tcp_reachable(env: Environment, src: str, dst: str, port: int = 9092, timeout_s: int = 2) -> bool:
    """Can ``src`` open a TCP connection to ``dst:port``? (bash's /dev/tcp inside ``src``.)"""
    ip = env.node_ip(dst)
    r = env.container(src).exec_run(["timeout", str(timeout_s), "bash", "-c", f"exec 3<>/dev/tcp/{ip}/{port}"])
    return r.exit_code == 0


@dataclass
class PingStats:
    sent: int
    received: int
    duplicates: int
    avg_ms: float | None

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent


def ping(env: Environment, src: str, dst: str, count: int = 40, interval_s: float = 0.05) -> PingStats:
    """ICMP echo from ``src``'s network namespace (a helper) to ``dst``; parsed statistics."""
    ip = env.node_ip(dst)
    out = env.run_helper(src, f"ping -n -c {count} -i {interval_s} -W 1 {ip} || true", purpose="ping")
    m = re.search(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?", out)
    if not m:
        raise AssertionError(f"unexpected ping output: {out[-500:]}")
    avg = re.search(r"= [\d.]+/([\d.]+)/", out)
    return PingStats(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), float(avg.group(1)) if avg else None)


def topic_view(env: Environment, avoid: tuple[int, ...] = ()) -> dict[int, tuple[int, list[int]]]:
    """{partition: (leader, isr)} of the deployed topic, as a broker outside ``avoid`` sees it."""
    assert env.deployment is not None
    md = env.topic_metadata(env.deployment.topic, avoid=avoid)
    return {p: (m.leader, sorted(m.isrs)) for p, m in md.partitions.items()}
