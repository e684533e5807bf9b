"""What the Toxiproxy hop costs: a produce and a gRPC call through the proxy, against the same on a direct link.

    uv run python bench/toxiproxy_hop.py [--calls 2000]

Starts the environment, deploys the reference pipeline, and runs the measurement inside a sink container
(the reference pipeline's image has Python, confluent-kafka, grpcio and the stubs), so both paths start from
the same place on the run's network:

- produce: one record at a time (acks=all, idempotent, waiting for each delivery) to a topic of its own, bootstrapped
  on the sink's own proxies (``toxiproxy:<port>``: the brokers advertise those for its listener) and,
  directly, on the brokers' INTERNAL listener (``kafka-<i>:9092``);
- gRPC: the entry service's health check, through the client's link (``toxiproxy:<port>``) and directly
  (``ingest:50051``).

The two paths alternate in blocks of 100 calls, so a busy moment of the machine hits both. No toxic is set.
Prints p50 and p99 of each path and the ratios. A measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json

from chaos.adapter import load_pipeline
from chaos.config import Settings
from chaos.env import Environment
from chaos.images import resolve

INNER = r'''
import json, sys, time
import grpc
from confluent_kafka import Producer
from grpc_health.v1 import health_pb2, health_pb2_grpc

calls, topic, proxied_kafka, direct_kafka, proxied_grpc, direct_grpc = sys.argv[1:7]
calls = int(calls)

def producer(bootstrap):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0})
    p.produce(topic, b"warm-up"); p.flush(10)
    return p

def produce_once(p):
    done = []
    t0 = time.perf_counter()
    p.produce(topic, b"x" * 100, key=b"hop", on_delivery=lambda err, msg: done.append(err))
    while not done:
        p.poll(0.001)
    assert done[0] is None, done[0]
    return time.perf_counter() - t0

def grpc_once(stub):
    t0 = time.perf_counter()
    stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return time.perf_counter() - t0

paths = {"produce proxied": producer(proxied_kafka), "produce direct": producer(direct_kafka)}
channels = {"grpc proxied": grpc.insecure_channel(proxied_grpc), "grpc direct": grpc.insecure_channel(direct_grpc)}
stubs = {k: health_pb2_grpc.HealthStub(c) for k, c in channels.items()}
for s in stubs.values():
    grpc_once(s)
lat = {k: [] for k in [*paths, *stubs]}
for block in range(calls // 100):
    for name, p in paths.items():
        lat[name] += [produce_once(p) for _ in range(100)]
    for name, s in stubs.items():
        lat[name] += [grpc_once(s) for _ in range(100)]
print(json.dumps(lat))
'''


def percentile_ms(values: list[float], q: float) -> float:
    from chaos.stats import nearest_rank

    return nearest_rank(sorted(values), q) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per path (multiple of 100)")
    args = ap.parse_args()
    settings = Settings.from_env()
    pipeline = load_pipeline(settings.pipeline)
    with Environment(settings, resolve(settings, pipeline), pipeline) as env:
        dep = env.deploy("toxiproxy-hop")
        topic = f"hop.{dep.tag}"  # its own topic: the pipeline's sinks never see these records
        env.create_topic(topic, 1, 3, {"min.insync.replicas": "2"})
        node = env.topology.nodes_of(pipeline.with_role("sink")[0].name)[0]
        sink = pipeline.with_role("sink")[0].name
        entry = pipeline.entry
        proxied_kafka = env.topology.bootstrap_for(sink)
        direct_kafka = ",".join(f"kafka-{i}:9092" for i in (1, 2, 3))
        client_link = env.topology.entry_link(entry.name)
        proxied_grpc = "toxiproxy:" + client_link.listen.rsplit(":", 1)[1]
        direct_grpc = f"{entry.name}:{entry.port}"
        out = env.exec_checked(env.container(node), ["python", "-c", INNER, str(args.calls), topic,
                                                     proxied_kafka, direct_kafka, proxied_grpc, direct_grpc],
                               "the hop measurement")
        lat = json.loads(out.strip().splitlines()[-1])
    print(f"{args.calls} calls per path, alternating in blocks of 100, from {node} on the run's network")
    print(f"{'path':18} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in lat.items():
        print(f"{name:18} {percentile_ms(values, 0.5):8.2f} {percentile_ms(values, 0.99):8.2f}")
    for kind in ("produce", "grpc"):
        p, d = lat[f"{kind} proxied"], lat[f"{kind} direct"]
        print(f"{kind}: proxied / direct = {percentile_ms(p, 0.5) / percentile_ms(d, 0.5):.2f} at p50, "
              f"{percentile_ms(p, 0.99) / percentile_ms(d, 0.99):.2f} at p99; the hop adds "
              f"{percentile_ms(p, 0.5) - percentile_ms(d, 0.5):.2f} ms at p50")


if __name__ == "__main__":
    main()
