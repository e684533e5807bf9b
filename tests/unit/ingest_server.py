"""An in-process gRPC ingest server for unit tests of the clients (generator, game-day runner)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import grpc.aio

SERVER_READY_S = 10.0  # bound on the server starting and stopping


@contextlib.contextmanager
def serving(servicer: Any, pb2_grpc: Any) -> Iterator[str]:
    """Serve ``servicer`` as the Ingest service (``pb2_grpc``: the generated module) on a free 127.0.0.1
    port; yields ``host:port``."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        srv = grpc.aio.server()
        pb2_grpc.add_IngestServicer_to_server(servicer, srv)
        holder["port"] = srv.add_insecure_port("127.0.0.1:0")
        await srv.start()
        holder["loop"], holder["srv"] = asyncio.get_running_loop(), srv
        ready.set()
        await srv.wait_for_termination()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(SERVER_READY_S)
    try:
        yield f"127.0.0.1:{holder['port']}"
    finally:
        stopping = asyncio.run_coroutine_threadsafe(holder["srv"].stop(0), holder["loop"])
        with contextlib.suppress(concurrent.futures.CancelledError):  # the loop may end before stop() returns
            stopping.result(SERVER_READY_S)
        thread.join(SERVER_READY_S)
