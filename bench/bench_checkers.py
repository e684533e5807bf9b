"""Benchmark the checkers on a large synthetic history.

    uv run python bench/bench_checkers.py [--ops 1000000] [--keys 1000] [--runs 3]

Builds a clean history (several ops in flight per key, ~1% failed, ~1% unknown
of which half were applied) with matching ground truth, then prints the median
wall time of check_all and of phase_stats, and the JSONL write/read times.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.checkers import (
    AppliedRow,
    KafkaRecord,
    KeyState,
    assert_verdicts,
    check_all,
    phase_stats,
)
from chaos.history import History, Op, Outcome

T = TypeVar("T")

T0_US = 1_700_000_000_000_000
PARTITIONS = 12


def build(
    n_ops: int, n_keys: int, rate_per_s: float = 40_000.0, seed: int = 1
) -> tuple[History, list[AppliedRow], list[KafkaRecord], list[KeyState]]:
    """A clean synthetic run: open-loop arrivals at ``rate_per_s``, 2-200 ms latency."""
    rng = random.Random(seed)
    rand = rng.random
    h = History(meta={"run_id": "bench", "experiment": "synthetic", "seed": seed, "started_at_us": T0_US})
    interval = 1e6 / rate_per_s
    thirds = (n_ops // 3, 2 * n_ops // 3)
    h.mark_phase("before", T0_US)
    lin: list[tuple[float, int]] = []  # (linearisation point, op index) of the ops that take effect
    seqs = [0] * n_keys
    ops = h.ops
    for i in range(n_ops):
        if i == thirds[0]:
            h.mark_phase("during", T0_US + int(i * interval))
            h.add_fault("partition-kafka", T0_US + int(i * interval), None, {"target": "kafka-1"})
        elif i == thirds[1]:
            h.mark_phase("after", T0_US + int(i * interval))
            h.end_fault("partition-kafka", T0_US + int(i * interval))
        k = rng.randrange(n_keys)
        seqs[k] += 1
        intended = T0_US + int(i * interval)
        start = intended + int(rand() * 200)
        end = start + 2_000 + int(rand() * 198_000)
        r = rand()
        if r < 0.98:
            outcome = Outcome.OK
            lin.append((start + rand() * (end - start), i))
        elif r < 0.99:
            outcome = Outcome.FAIL
        else:
            outcome = Outcome.UNKNOWN
            if r < 0.995:
                lin.append((start + rand() * 500_000, i))
        phase = "before" if i < thirds[0] else "during" if i < thirds[1] else "after"
        ops.append(
            Op(
                f"e-{i}",
                f"k-{k}",
                seqs[k],
                1 + int(rand() * 100),
                intended,
                start,
                end,
                outcome,
                phase,
                None if outcome is Outcome.OK else "deadline exceeded",
            )
        )
    lin.sort()
    applied: list[AppliedRow] = []
    kafka: list[KafkaRecord] = []
    next_offset = [0] * PARTITIONS
    totals: dict[str, list[int]] = {}
    for pos, (_, i) in enumerate(lin, 1):
        op = ops[i]
        applied.append(AppliedRow(op.id, op.key, op.seq, op.amount, pos))
        p = hash(op.key) % PARTITIONS
        kafka.append(KafkaRecord(op.id, op.key, p, next_offset[p]))
        next_offset[p] += 1
        t = totals.setdefault(op.key, [0, 0, 0])
        t[0] += op.amount
        t[1] += 1
        t[2] = op.seq
    states = [KeyState(k, t[0], t[1], t[1], t[2]) for k, t in totals.items()]
    return h, applied, kafka, states


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def median_time(fn: Callable[[], object], runs: int) -> str:
    """Median wall and CPU time of ``runs`` calls (CPU time is less disturbed by a busy machine)."""
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return (
        f"median of {runs}: {statistics.median(walls):.3f} s wall, {statistics.median(cpus):.3f} s CPU "
        f"(runs: {', '.join(f'{x:.2f}' for x in walls)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    build_s, (h, applied, kafka, states) = timed(lambda: build(args.ops, args.keys))
    gc.collect()
    print(
        f"built {len(h.ops):,} ops / {len(applied):,} applied rows / {len(kafka):,} Kafka records / "
        f"{len(states):,} keys in {build_s:.2f} s"
    )
    verdicts = check_all(h, applied, kafka, states)
    assert_verdicts(verdicts)  # the synthetic ground truth matches: everything must pass
    print(f"all {len(verdicts)} checks pass:")
    for v in verdicts:
        print(f"  {v.name}: {v.message}")

    print(f"check_all:   {median_time(lambda: check_all(h, applied, kafka, states), args.runs)}")
    print(f"phase_stats: {median_time(lambda: phase_stats(h), args.runs)}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        w, _ = timed(lambda: h.write_jsonl(path))
        size = path.stat().st_size
        r, back = timed(lambda: History.read_jsonl(path))
    assert back == h, "JSONL round trip changed the history"
    print(f"write_jsonl: {w:.3f} s ({size / 1e6:.0f} MB)")
    print(f"read_jsonl:  {r:.3f} s")


if __name__ == "__main__":
    main()
