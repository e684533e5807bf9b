"""Latency judged against the pipeline, not the host's load: the warm-up goes on while the latency still falls
markedly (a JVM compiling its hot paths) and stops once it levels off, whatever the level (noise of a few
milliseconds on a fast pipeline is no trend); a latency fault is judged by the floor it sets while it is surely
in place."""

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


def test_a_latency_fault_is_judged_by_its_floor_while_surely_in_place() -> None:
    from types import SimpleNamespace

    from chaos.experiments.common import fastest_ack_ms
    from chaos.history import History

    def op(i: int, start_s: float, took_ms: float) -> Op:
        start = int(start_s * S)
        return Op(f"e{i}", "k", i, 1, start, start, start + int(took_ms * 1000), Outcome.OK, "during")

    window = {"start_us": 10 * S, "end_us": 21 * S, "active_from_us": 11 * S, "active_until_us": 20 * S}
    history = History(ops=[op(0, 10.2, 5), op(1, 11.2, 8),  # injecting, then not yet settled
                           op(2, 12, 230), op(3, 15, 205), op(4, 19.9, 150)])  # op 4 ends after the heal began
    result = SimpleNamespace(faults=[window], history=history)
    assert fastest_ack_ms(result) == 205.0
    history.ops.append(op(5, 16, 4))  # acknowledged without waiting for the delayed answer
    assert fastest_ack_ms(result) == 4.0
    assert fastest_ack_ms(SimpleNamespace(faults=[], history=history)) is None
