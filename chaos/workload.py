"""Open-loop load over the pipeline's gRPC entry point, recorded into a history.

The generator issues operations on a fixed schedule (operation ``i`` is due at ``t0 + i / rate``)
whether or not earlier ones have returned, and measures latency from that *intended* start, so a stall
shows up in the latency tail instead of silently lowering the rate (no coordinated omission). A
concurrency bound caps the calls in flight; when it is reached the schedule keeps running and the wait
counts as latency. Latencies of acknowledged operations are also kept per phase in HDR histograms
(microseconds, 3 significant digits) for live figures.

``mode="closed"`` is the classic closed loop, kept for comparison only: ``max_in_flight`` workers each
send, wait for the answer, then pace themselves to the target rate, and latency is measured from the
actual send. A stall delays the next sends instead of being measured, so it all but vanishes from the
tail (coordinated omission); ``bench/bench_workload.py`` shows both numbers for the same stall.

Each event gets a unique id, a key, a per-key sequence number (in issue order) and an amount. Each
outcome is recorded: ``ok`` (acknowledged), ``fail`` (the service said definitely not written), or
``unknown`` (deadline, lost connection, or the service said the outcome is uncertain).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from hdrh.histogram import HdrHistogram

from chaos import stubs
from chaos.history import History, Op, Outcome

# gRPC codes that mean "definitely not applied"; everything else that is not OK is uncertain.
DEFINITE_FAILURES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                               grpc.StatusCode.FAILED_PRECONDITION})
HISTOGRAM_MAX_US = 3_600_000_000  # one hour: anything longer is clamped
# gRPC's default reconnect backoff grows to 120 s: after a fault on the entry link the client would keep
# failing fast long after the heal. A load generator must measure the service, not its own backoff.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


@dataclass(frozen=True)
class LoadSpec:
    rate: float = 200.0  # RPCs per second
    keys: int = 16
    key_skew: float = 0.0  # Zipf exponent over keys; 0 = uniform
    batch_size: int = 1  # events per RPC; >1 uses SubmitBatch
    max_in_flight: int = 256  # open loop: calls in flight at most; closed loop: number of workers
    amount_max: int = 100
    mode: str = "open"  # "open" (default, no coordinated omission) or "closed" (for comparison only)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.keys < 1 or self.batch_size < 1 or self.max_in_flight < 1:
            raise ValueError(f"invalid load spec {self}: rate, keys, batch_size, max_in_flight must be positive")
        if self.mode not in ("open", "closed"):
            raise ValueError(f"load mode {self.mode!r} is not one of: open, closed")


def now_us() -> int:
    return time.time_ns() // 1000


class LoadGenerator:
    """Runs in a background thread with its own event loop. ``start()``, ``mark_phase()``, ``stop()``."""

    def __init__(self, target: str, spec: LoadSpec, history: History, *, cache_dir: Path, seed: int,
                 rpc_timeout_s: float, id_prefix: str) -> None:
        self.target = target
        self.spec = spec
        self.history = history
        self.rpc_timeout_s = rpc_timeout_s
        self.id_prefix = id_prefix
        self.pb2, self.pb2_grpc = stubs.load(cache_dir)
        self.rng = random.Random(seed)
        weights = [1.0 / (k + 1) ** spec.key_skew for k in range(spec.keys)]
        self._cum = list(itertools.accumulate(weights))
        self._seq: Counter[str] = Counter()
        self.phase = "before"
        self.counts: Counter[str] = Counter()
        self.behind_max_s = 0.0
        self.issued = 0
        self.histograms: dict[str, HdrHistogram] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- control (any thread) ------------------------------------------------------------------------

    def start(self, phase: str = "before") -> LoadGenerator:
        self.mark_phase(phase)
        self._thread = threading.Thread(target=self._main, name="chaos-load", daemon=True)
        self._thread.start()
        return self

    def mark_phase(self, name: str) -> None:
        self.phase = name
        self.history.mark_phase(name, now_us())

    def stop(self) -> None:
        """Stop issuing; wait (bounded by the RPC deadline) for calls in flight to complete."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.rpc_timeout_s + 10)
            if self._thread.is_alive():
                raise RuntimeError("load generator did not stop within the RPC deadline + 10 s")
        if self._error is not None:
            raise RuntimeError(f"load generator failed: {self._error!r}") from self._error

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ------------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._run() if self.spec.mode == "open" else self._run_closed())
        except BaseException as exc:  # surfaced by stop()
            self._error = exc

    async def _run_closed(self) -> None:
        interval = self.spec.max_in_flight / self.spec.rate
        i = itertools.count()

        async def worker(stub: Any) -> None:
            while not self._stop.is_set():
                n = next(i)
                events = [self._next_event(n, b) for b in range(self.spec.batch_size)]
                sent = time.monotonic()
                self.issued += 1
                await self._call(stub, events, now_us(), self.phase)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - sent)))

        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            stub = self.pb2_grpc.IngestStub(channel)
            await asyncio.gather(*(worker(stub) for _ in range(self.spec.max_in_flight)))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(self.spec.max_in_flight)
        async with grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            stub = self.pb2_grpc.IngestStub(channel)
            t0 = loop.time()
            wall0 = now_us()
            for i in itertools.count():
                if self._stop.is_set():
                    break
                due = t0 + i / self.spec.rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.behind_max_s = max(self.behind_max_s, -delay)
                intended = wall0 + int((due - t0) * 1e6)
                events = [self._next_event(i, b) for b in range(self.spec.batch_size)]
                phase = self.phase
                await sem.acquire()
                self.issued += 1
                task = loop.create_task(self._call(stub, events, intended, phase))
                self._tasks.add(task)
                task.add_done_callback(self._finished(sem))
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.rpc_timeout_s + 5)

    def _finished(self, sem: asyncio.Semaphore) -> Callable[[asyncio.Task[None]], None]:
        """The done-callback of one call: forget the task and free its slot under the concurrency bound."""
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            sem.release()
        return done

    def _next_event(self, i: int, b: int) -> Any:
        k = bisect.bisect_left(self._cum, self.rng.random() * self._cum[-1])
        key = f"k{k:04d}"
        self._seq[key] += 1
        return self.pb2.Event(event_id=f"{self.id_prefix}-{i}-{b}", key=key, seq=self._seq[key],
                              amount=self.rng.randint(1, self.spec.amount_max))

    async def _call(self, stub: Any, events: list[Any], intended: int, phase: str) -> None:
        start = now_us()
        results: list[tuple[Outcome, str | None, int | None, int | None]]
        try:
            if len(events) == 1:
                ack = await stub.Submit(events[0], timeout=self.rpc_timeout_s)
                results = [(Outcome.OK, None, ack.partition, ack.offset)]
            else:
                resp = await stub.SubmitBatch(self.pb2.EventBatch(events=events), timeout=self.rpc_timeout_s)
                by_id = {r.event_id: r for r in resp.results}
                results = [self._batch_result(by_id.get(e.event_id)) for e in events]
        except grpc.aio.AioRpcError as exc:
            outcome = Outcome.FAIL if exc.code() in DEFINITE_FAILURES else Outcome.UNKNOWN
            results = [(outcome, f"{exc.code().name}: {exc.details()}"[:200], None, None)] * len(events)
        except Exception as exc:  # transport-level surprises: the call may have reached the service
            results = [(Outcome.UNKNOWN, repr(exc)[:200], None, None)] * len(events)
        end = now_us()
        if results and results[0][0] is Outcome.OK:
            hist = self.histograms.get(phase)
            if hist is None:
                hist = self.histograms[phase] = HdrHistogram(1, HISTOGRAM_MAX_US, 3)
            hist.record_value(min(max(end - intended, 1), HISTOGRAM_MAX_US))
        for e, (outcome, error, partition, offset) in zip(events, results, strict=True):
            self.counts[outcome.value] += 1
            self.history.add_op(Op(id=e.event_id, key=e.key, seq=e.seq, amount=e.amount, intended_us=intended,
                                   start_us=start, end_us=end, outcome=outcome, phase=phase, error=error,
                                   partition=partition, offset=offset))

    def _batch_result(self, r: Any) -> tuple[Outcome, str | None, int | None, int | None]:
        if r is None:
            return (Outcome.UNKNOWN, "missing from batch answer", None, None)
        if r.status == self.pb2.ACKED:
            return (Outcome.OK, None, r.partition, r.offset)
        if r.status == self.pb2.REJECTED:
            return (Outcome.FAIL, r.error or "rejected", None, None)
        return (Outcome.UNKNOWN, r.error or "uncertain", None, None)
