"""The game-day live view in a real terminal (tmux): a redraw leaves no stale rows, at any width.

A redraw in place must move the cursor up by the rows the last block took on the screen, not by its
lines: on a terminal narrower than the lines, the difference stays behind as stacked stale copies of the
block. tests/unit/live_view_demo.py runs the view for about two seconds with lines longer than 80
columns; the pane's scrollback and screen must then hold the block's header once and each event once.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.unit import live_view_demo as demo

TMUX = shutil.which("tmux")
ROOT = Path(__file__).resolve().parents[2]
FINISH_S = 60.0  # bound on the demo (about two seconds) finishing, on a slow machine
POLL_S = 0.1
TMUX_CALL_S = 10.0  # bound on one tmux command

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (the view is checked in a real terminal)")


def tmux(base: list[str], *args: str) -> str:
    return subprocess.run([*base, *args], capture_output=True, text=True, check=True, timeout=TMUX_CALL_S).stdout


@pytest.mark.parametrize("width", [80, 200])
def test_live_view_leaves_no_stale_rows_in_a_real_terminal(width: int, tmp_path: Path) -> None:
    conf = tmp_path / "tmux.conf"  # not the user's: a dead pane stays to be read; room for the scrollback
    conf.write_text("set -g remain-on-exit on\nset -g history-limit 10000\n")
    base = [str(TMUX), "-L", f"chaos-live-{os.getpid()}-{uuid.uuid4().hex[:12]}", "-f", str(conf)]
    # rich would take a COLUMNS or LINES of the test's environment over the terminal's size
    cmd = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", "-u", "TTY_INTERACTIVE", "-u", "TTY_COMPATIBLE",
                      f"PYTHONPATH={ROOT}", sys.executable, "-m", "tests.unit.live_view_demo"])
    socket: str | None = None
    try:
        tmux(base, "new-session", "-d", "-x", str(width), "-y", "40", "-c", str(ROOT), cmd)
        socket = tmux(base, "display-message", "-p", "#{socket_path}").strip()
        deadline = time.monotonic() + FINISH_S
        while True:
            dead, columns = tmux(base, "display-message", "-p", "#{pane_dead} #{pane_width}").split()
            if dead == "1":
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not finish in {FINISH_S:g} s:\n"
                            + tmux(base, "capture-pane", "-p", "-J", "-S", "-"))
            time.sleep(POLL_S)
        # -J: rows the terminal wrapped are joined back into their line; -S -: the whole scrollback too
        text = tmux(base, "capture-pane", "-p", "-J", "-S", "-")
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=TMUX_CALL_S)
        if socket:
            Path(socket).unlink(missing_ok=True)  # tmux leaves the socket file behind
    assert columns == str(width), text
    lines = text.splitlines()
    assert demo.DONE in lines, text  # the demo ran to its end (its last line)
    headers = [i for i, line in enumerate(lines) if line.startswith(f"gameday {demo.SCENARIO} ")]
    assert len(headers) == 1, f"{len(headers)} copies of the block's header at {width} columns:\n{text}"
    for i in range(demo.EVENTS):
        assert text.count(demo.event_text(i)) == 1, f"event {i} not exactly once at {width} columns:\n{text}"
    # the final block: below the events (they scroll above it), its outcome, then what the run prints after it
    last_event = max(i for i, line in enumerate(lines) if demo.event_text(demo.EVENTS - 1) in line)
    assert last_event < headers[0] < lines.index(demo.DONE), text
    assert "PASSED" in " ".join(lines[headers[0]:headers[0] + 3]), text  # the header's end: the outcome
