"""Readiness checks of a deployed service, evaluated from the test process.

The checks are objects of the adapter API (:mod:`chaos.adapter`): ``GrpcHealth`` asks the standard gRPC
health service through the client's link (an entry service); ``ConsumerGroup`` asks the admin API that
every replica joined the service's group and got partitions; ``LogLine`` looks for a pattern in every
replica's log; ``Http`` sends ``GET`` from a helper in the replica's network namespace (no published
port needed). Each ``probe`` returns True when ready and never blocks longer than a few seconds.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chaos.adapter import ConsumerGroup, GrpcHealth, Http, LogLine, Readiness, Service

if TYPE_CHECKING:
    from chaos.env.environment import Deployment, Environment

PROBE_TIMEOUT_S = 2.0


def grpc_serving(target: str, service: str = "", timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(serving, status name) of the gRPC health service at ``target``."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, name


def probe(env: Environment, dep: Deployment, service: Service, check: Readiness, nodes: list[str]) -> bool:
    """Whether ``check`` holds for ``nodes`` (replicas of ``service`` in ``dep``)."""
    if isinstance(check, GrpcHealth):
        return grpc_serving(env.entry_address(service.name), check.service)[0]
    if isinstance(check, ConsumerGroup):
        return env.group_members(dep.groups[service.name]) >= len(nodes)
    if isinstance(check, LogLine):
        pattern = re.compile(check.pattern)
        for node in nodes:
            logs = dep.containers[node].logs(tail=2000).decode(errors="replace")
            if not pattern.search(logs):
                return False
        return True
    if isinstance(check, Http):
        port = check.port or service.metrics_port or service.port
        if port is None:
            raise ValueError(f"Http readiness of {service.name} needs a port (or a metrics port)")
        script = (f"printf 'GET {check.path} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 {port} | head -n 1 "
                  "| grep -q ' 2[0-9][0-9]'")
        for node in nodes:
            try:
                env.run_helper(node, script, purpose="ready")
            except RuntimeError:
                return False
        return True
    raise ValueError(f"unknown readiness check {check!r}")
