"""Bounded waits for a state: every wait of the suite goes through :func:`wait_until`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(cond: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.2, *,
               abort: Callable[[], None] | None = None) -> T:
    """Poll ``cond`` until it returns a truthy value; raise TimeoutError naming ``what`` after ``timeout_s``.

    Exceptions from ``cond`` count as "not yet" (the last one is named on timeout). ``abort`` is called
    before each poll and its exceptions propagate at once: it says when waiting on is pointless (a
    container that should answer has exited), so the error names the cause within one interval."""
    deadline = time.monotonic() + timeout_s
    last_exc: BaseException | None = None
    while True:
        if abort is not None:
            abort()
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
        time.sleep(interval_s)
