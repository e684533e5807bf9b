"""Open-loop load over the pipeline's entry point, through its adapter's client, recorded into a history.

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

A share of the scheduled calls (``read_share``) are reads of one key through the client's ``read``,
recorded in the history as reads (:class:`chaos.history.Read`); they take their slot in the schedule, so
``rate`` counts reads and writes together.

Each event gets a unique id, a key, a per-key sequence number (in issue order) and an amount; the
adapter's client (:class:`chaos.adapter.Client`) turns it into the pipeline's own request and its answer
into ``ok`` (acknowledged), ``fail`` (definitely not written) or ``unknown`` (may or may not be). A
client that raises is treated as ``unknown`` for every event of the call.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from chaos.adapter import Client, Event, ReadResult, WriteResult
from chaos.history import History, Op, Outcome, Read

HISTOGRAM_MAX_US = 3_600_000_000  # one hour: anything longer is clamped


@dataclass(frozen=True)
class LoadSpec:
    rate: float = 200.0  # RPCs per second
    keys: int = 16
    key_skew: float = 0.0  # Zipf exponent over keys; 0 = uniform
    batch_size: int = 1  # events per call (at most the client's max_batch)
    max_in_flight: int = 256  # open loop: calls in flight at most; closed loop: number of workers
    amount_max: int = 100
    mode: str = "open"  # "open" (default, no coordinated omission) or "closed" (for comparison only)
    read_share: float = 0.0  # share of the calls that are reads of one key (0: writes only)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.keys < 1 or self.batch_size < 1 or self.max_in_flight < 1:
            raise ValueError(f"invalid load spec {self}: rate, keys, batch_size, max_in_flight must be positive")
        if not 0.0 <= self.read_share < 1.0:
            raise ValueError(f"read_share {self.read_share} must be at least 0 and below 1")
        if self.mode not in ("open", "closed"):
            raise ValueError(f"load mode {self.mode!r} is not one of: open, closed")


def now_us() -> int:
    return time.time_ns() // 1000


class LoadGenerator:
    """Runs in a background thread with its own event loop. ``start()``, ``mark_phase()``, ``stop()``."""

    def __init__(self, client: Callable[[], Client], target: str, spec: LoadSpec, history: History, *, seed: int,
                 rpc_timeout_s: float, id_prefix: str) -> None:
        self.make_client = client
        self.target = target
        self.spec = spec
        self.history = history
        self.rpc_timeout_s = rpc_timeout_s
        self.id_prefix = id_prefix
        self.rng = random.Random(seed)
        weights = [1.0 / (k + 1) ** spec.key_skew for k in range(spec.keys)]
        self._cum = list(itertools.accumulate(weights))
        self._seq: Counter[str] = Counter()
        self.phase = "before"
        self.counts: Counter[str] = Counter()
        self.read_counts: Counter[str] = Counter()
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
            asyncio.run(self._session())
        except BaseException as exc:  # surfaced by stop()
            self._error = exc

    async def _session(self) -> None:
        client = self.make_client()
        if self.spec.batch_size > client.max_batch:
            raise ValueError(f"batch_size {self.spec.batch_size} exceeds the client's max_batch {client.max_batch}")
        await client.open(self.target)
        try:
            await (self._run(client) if self.spec.mode == "open" else self._run_closed(client))
        finally:
            await client.close()

    async def _run_closed(self, client: Client) -> None:
        interval = self.spec.max_in_flight / self.spec.rate
        i = itertools.count()

        async def worker() -> None:
            while not self._stop.is_set():
                n = next(i)
                sent = time.monotonic()
                if self._is_read():
                    await self._read(client, self._next_key(), now_us(), self.phase)
                else:
                    events = [self._next_event(n, b) for b in range(self.spec.batch_size)]
                    self.issued += 1
                    await self._call(client, events, now_us(), self.phase)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - sent)))

        await asyncio.gather(*(worker() for _ in range(self.spec.max_in_flight)))

    async def _run(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(self.spec.max_in_flight)
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
            phase = self.phase
            call: Coroutine[Any, Any, None]
            if self._is_read():
                call = self._read(client, self._next_key(), intended, phase)
            else:
                events = [self._next_event(i, b) for b in range(self.spec.batch_size)]
                self.issued += 1
                call = self._call(client, events, intended, phase)
            await sem.acquire()
            task = loop.create_task(call)
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

    def _is_read(self) -> bool:
        # no draw at all without reads, so a seed gives the same writes as before reads existed
        return self.spec.read_share > 0 and self.rng.random() < self.spec.read_share

    def _next_key(self) -> str:
        k = bisect.bisect_left(self._cum, self.rng.random() * self._cum[-1])
        return f"k{k:04d}"

    def _next_event(self, i: int, b: int) -> Event:
        key = self._next_key()
        self._seq[key] += 1
        return Event(id=f"{self.id_prefix}-{i}-{b}", key=key, seq=self._seq[key],
                     amount=self.rng.randint(1, self.spec.amount_max))

    async def _read(self, client: Client, key: str, intended: int, phase: str) -> None:
        read = await read_key(client, key, self.rpc_timeout_s, intended, phase)
        self.history.add_read(read)
        self.read_counts[read.outcome.value] += 1

    async def _call(self, client: Client, events: list[Event], intended: int, phase: str) -> None:
        start = now_us()
        results: Sequence[WriteResult]
        try:
            results = await client.write(events, self.rpc_timeout_s)
            if len(results) != len(events):
                raise ValueError(f"the client answered {len(results)} results for {len(events)} events")
        except Exception as exc:  # the call may have reached the service
            results = [WriteResult(Outcome.UNKNOWN, f"client error: {exc!r}"[:200])] * len(events)
        end = now_us()
        if results and results[0].outcome is Outcome.OK:
            hist = self.histograms.get(phase)
            if hist is None:
                hist = self.histograms[phase] = HdrHistogram(1, HISTOGRAM_MAX_US, 3)
            hist.record_value(min(max(end - intended, 1), HISTOGRAM_MAX_US))
        for e, r in zip(events, results, strict=True):
            self.counts[r.outcome.value] += 1
            self.history.add_op(Op(id=e.id, key=e.key, seq=e.seq, amount=e.amount, intended_us=intended,
                                   start_us=start, end_us=end, outcome=r.outcome, phase=phase,
                                   error=r.error[:200] if r.error else None, partition=r.partition,
                                   offset=r.offset))


async def read_key(client: Client, key: str, timeout_s: float, intended: int, phase: str) -> Read:
    """One read through the client, as the history records it (a client that raises: ``unknown``)."""
    start = now_us()
    try:
        r = await client.read(key, timeout_s)
    except Exception as exc:  # the read may have reached the service; it returned nothing usable
        r = ReadResult(Outcome.UNKNOWN, error=f"client error: {exc!r}"[:200])
    return Read(key=key, intended_us=intended, start_us=start, end_us=now_us(), outcome=r.outcome, phase=phase,
                error=r.error[:200] if r.error else None, found=r.found, value=r.value, count=r.count,
                version=r.version)
