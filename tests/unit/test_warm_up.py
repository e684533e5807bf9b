"""The warm-up goes on while the latency still falls markedly (a JVM compiling its hot paths), and stops once
it levels off, whatever the level; noise of a few milliseconds on a fast pipeline is no trend."""

from __future__ import annotations

from chaos.history import Op, Outcome
from chaos.run.protocol import still_warming

S = 1_000_000


def ops(latencies_ms: list[float], per_s: int = 50) -> list[Op]:
    """One op every 1/per_s seconds from t=0; op i's latency is latencies_ms[i // per_s] (one value a second)."""
    out = []
    for i in range(len(latencies_ms) * per_s):
        end = i * S // per_s
        out.append(Op(f"e{i}", "k", i, 1, end - int(latencies_ms[i // per_s] * 1000), end, end, Outcome.OK, "warmup"))
    return out


def test_a_falling_latency_is_still_warming() -> None:
    history = ops([2000, 1800, 1500, 1200, 900, 700])  # a JVM pipeline's first seconds
    assert still_warming(history, 6 * S) == (1200.0, 700.0)  # medians of seconds 2-4 and 4-6


def test_a_level_latency_is_warm_at_any_level() -> None:
    assert still_warming(ops([300, 310, 290, 305, 295, 300]), 6 * S) is None
    assert still_warming(ops([10, 9, 11, 8, 12, 9]), 6 * S) is None
    assert still_warming(ops([12, 12, 12, 12, 5, 5]), 6 * S) is None, "7 ms less is noise at this level"


def test_a_rising_latency_or_no_answer_is_not_warming() -> None:
    assert still_warming(ops([100, 100, 100, 100, 400, 500]), 6 * S) is None
    assert still_warming([], 6 * S) is None
    failed = [Op("x", "k", 1, 1, 0, 0, t * S // 10, Outcome.UNKNOWN, "warmup") for t in range(60)]
    assert still_warming(failed, 6 * S) is None
