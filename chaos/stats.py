"""The one percentile definition of the suite: exact nearest rank.

Every figure (phase statistics in ``results.json``, plot windows, the game-day live window, budgets)
uses :func:`nearest_rank`, so a p99 means the same number everywhere: the ``ceil(q * n)``-th smallest
value (``q`` in [0, 1], computed in per mille without float error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

N = TypeVar("N", int, float)


def nearest_rank(sorted_values: Sequence[N], q: float) -> N:
    """Exact nearest-rank percentile (``q`` in [0, 1]) of an ascending, non-empty sequence."""
    n = len(sorted_values)
    rank = -(-round(q * 1000) * n // 1000)  # ceil(q * n) without float error
    return sorted_values[min(max(rank, 1), n) - 1]
