"""chaos.signals: a run stops (as on Ctrl-C) on SIGINT even when it inherited SIGINT ignored, and on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

EXIT_TIMEOUT_S = 30  # bound on the child reacting to the signal

CHILD = """
import signal, sys, time
from chaos import signals
print("inherited:", "ignored" if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else "default", flush=True)
signals.install()
try:
    print("ready", flush=True)  # inside the try: the signal may land before print returns
    # Short sleeps, as the suite's waits poll: a signal that lands between Python's last check for pending
    # signals and the start of one long sleep() syscall is only acted on when that sleep returns.
    for _ in range(600):
        time.sleep(0.1)
except KeyboardInterrupt as exc:
    print("interrupted:", exc, flush=True)
    sys.exit(3)
"""


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a non-interactive shell does


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_run_started_with_sigint_ignored_still_stops_on_signals(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=ignore_sigint)
    seen: list[str] = []
    err = ""
    try:
        assert proc.stdout is not None
        seen += [proc.stdout.readline(), proc.stdout.readline()]
        assert [x.strip() for x in seen] == ["inherited: ignored", "ready"], seen
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 3 and "interrupted" in out, (proc.returncode, seen, out, err)
