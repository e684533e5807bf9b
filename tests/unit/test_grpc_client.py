"""GrpcClient reads a call's error by the pipeline's contract: FAIL only for the codes the adapter names as
"definitely not applied", UNKNOWN for every other error (the write may have been applied)."""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

from chaos.adapter import GRPC_RECONNECT_OPTIONS, GrpcClient, Outcome
from examples.orders.adapter import OrdersClient
from system_under_test.adapter import PROTO, RefpipeClient


def _error(code: grpc.StatusCode) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details="from the service")


def test_definite_codes_fail_others_are_unknown() -> None:
    client = RefpipeClient()
    assert client.failure(_error(grpc.StatusCode.INVALID_ARGUMENT)).outcome is Outcome.FAIL
    assert client.failure(_error(grpc.StatusCode.FAILED_PRECONDITION)).outcome is Outcome.FAIL
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL):
        assert client.failure(_error(code)).outcome is Outcome.UNKNOWN, code
    result = client.failure(_error(grpc.StatusCode.RESOURCE_EXHAUSTED))
    assert result.outcome is Outcome.FAIL and result.error == "RESOURCE_EXHAUSTED: from the service"
    assert client.failure(ConnectionResetError("reset")).outcome is Outcome.UNKNOWN


def test_each_adapter_has_its_own_contract() -> None:
    """FAILED_PRECONDITION is definite for the reference pipeline, not in the orders example's contract."""
    assert OrdersClient().failure(_error(grpc.StatusCode.FAILED_PRECONDITION)).outcome is Outcome.UNKNOWN


def test_a_subclass_without_a_read_answers_unknown_and_keeps_the_backoff_short() -> None:
    class Minimal(GrpcClient):
        proto = PROTO
        service = "Ingest"

    import asyncio

    client = Minimal()
    read = asyncio.run(client.read("k0001", 1.0))
    assert read.outcome is Outcome.UNKNOWN and "Minimal" in (read.error or "")
    assert client.failure(_error(grpc.StatusCode.INVALID_ARGUMENT)).outcome is Outcome.UNKNOWN  # no definite codes
    assert dict(client.channel_options)["grpc.max_reconnect_backoff_ms"] <= 500
    assert client.channel_options == GRPC_RECONNECT_OPTIONS
