"""Every way a run can be asked to stop ends in KeyboardInterrupt, so it tears down as on Ctrl-C.

SIGTERM (CI cancelling a job, ``docker stop``-like supervisors, ``gameday heal`` from another terminal)
and SIGHUP (a closed terminal) are turned into KeyboardInterrupt. SIGINT normally is already; but a
process started as ``cmd &`` from a non-interactive shell inherits SIGINT *ignored*, and Python then
keeps ignoring it, so ``kill -INT`` would not stop the run at all. That inherited ignore is undone.
"""

from __future__ import annotations

import contextlib
import signal
from types import FrameType


def interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """Install the handlers (main thread only; elsewhere it does nothing)."""
    with contextlib.suppress(ValueError):
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, interrupt)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
