"""The live terminal view of a running scenario.

On a terminal it keeps one block up to date in place every ``gameday_refresh_s``, with each event printed
once above the block, where the events scroll like a log; anywhere else (a pipe, a CI log, a test) it
writes each event as its own line and a one-line status every ``gameday_line_interval_s``. The block::

    gameday leader-kill on env 3f2a91c0de   t=14.2s   phase during
    timeline  warmup 0-3s | before 3-7s | > kill leader:0 @7s for 6s [active] | after
    faults    kill kafka-2 (active 3.1s)
    steady    entry_serving OK SERVING | error_rate OK 0.0% | consumer_lag OK 12 | full_isr FAIL 4/6
    load      sent 2,840 acked 2,802 errors 0 | applied 2,650 lag 152
    last 3s   p50 12 ms  p99 3,410 ms  errors 0.0%  (budget: errors <= 50%, p99 <= 8,000 ms)

The terminal side is rich's ``Live``, not our own ANSI codes. Redrawing "in place" means moving the
cursor up exactly as many rows as the last draw took; the old hand-written "cursor up N lines, clear"
counted lines, not rows, so on a terminal narrower than the longest line (about 105 columns) every
redraw left the wrapped rows behind as stale copies. rich, a well-kept library, wraps each line to the
terminal's width itself (long words folded), so it knows how many rows it drew, crops a block taller than
the screen, and also handles colour (OK green, FAIL red) and ``NO_COLOR``. A terminal that cannot move the
cursor (``TERM=dumb``) gets the line output. The view never takes the run down: errors in its thread are
swallowed, and a terminal that fails a write (closed, hung up) silences the view for the rest of the run.

The view reads a :class:`LiveState` that the runner updates; rendering is pure (``render``) and tested.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from chaos.run.plan import ProbeStatus


@dataclass
class LiveState:
    scenario: str
    target: str
    t0: float = field(default_factory=time.monotonic)
    phase: str = "starting"
    timeline: list[dict[str, Any]] = field(default_factory=list)  # {"label", "status"}
    active: list[str] = field(default_factory=list)
    probes: dict[str, ProbeStatus] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)  # sent, acked, errors, applied, lag
    window: dict[str, Any] = field(default_factory=dict)  # window_s, p50_ms, p99_ms, error_rate
    budget: str = ""
    events: list[str] = field(default_factory=list)
    outcome: str = ""

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def _n(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def render(s: LiveState, max_events: int = 6) -> list[str]:
    """The block's lines (no colour codes, so it reads the same in a log), with the last ``max_events``
    events (none if 0)."""
    lines = [f"gameday {s.scenario} on {s.target}   t={s.elapsed():.1f}s   phase {s.phase}"
             + (f"   {s.outcome}" if s.outcome else "")]
    tl = " | ".join(("> " if t.get("status") == "active" else "") + t["label"]
                    + (f" [{t['status']}]" if t.get("status") not in (None, "", "planned") else "")
                    for t in s.timeline)
    lines.append(f"timeline  {tl}")
    lines.append(f"faults    {', '.join(s.active) if s.active else 'none active'}")
    if s.probes:
        lines.append("steady    " + " | ".join(
            f"{name} {'?' if p.ok is None else ('OK' if p.ok else 'FAIL')} {p.value}" for name, p in s.probes.items()))
    c = s.counts
    load = f"sent {_n(c.get('sent'))} acked {_n(c.get('acked'))} errors {_n(c.get('errors'))}"
    if c.get("applied") is not None or c.get("lag") is not None:
        load += f" | applied {_n(c.get('applied'))} lag {_n(c.get('lag'))}"
    lines.append(f"load      {load}")
    w = s.window
    if w:
        rate = w.get("error_rate")
        lines.append(f"last {w.get('window_s', 0):g}s   p50 {_ms(w.get('p50_ms'))}  p99 {_ms(w.get('p99_ms'))}  "
                     f"errors {'-' if rate is None else f'{rate:.1%}'}  ({w.get('ops', 0)} ops)"
                     + (f"  budget: {s.budget}" if s.budget else ""))
    for i, e in enumerate(s.events[-max_events:] if max_events > 0 else []):
        lines.append(("events    " if i == 0 else "          ") + e)
    return lines


def status_line(s: LiveState) -> str:
    """One line for logs: time, phase, active faults, counts, window figures, failing probes."""
    c, w = s.counts, s.window
    failing = [n for n, p in s.probes.items() if p.ok is False]
    rate = w.get("error_rate")
    parts = [f"[gameday] {s.elapsed():6.1f}s {s.phase}",
             f"faults: {', '.join(s.active) or 'none'}",
             f"sent {_n(c.get('sent'))} acked {_n(c.get('acked'))} errors {_n(c.get('errors'))}",
             f"p99 {_ms(w.get('p99_ms'))} err {'-' if rate is None else f'{rate:.1%}'}",
             f"steady: {'FAIL ' + ','.join(failing) if failing else 'ok'}"]
    if c.get("lag") is not None:
        parts.insert(3, f"lag {_n(c.get('lag'))}")
    return " | ".join(parts)


_STYLES = ((re.compile(r"\b(?:OK|PASSED)\b"), "bold green"),
           (re.compile(r"\b(?:FAIL|FAILED|ABORTED|INTERRUPTED|REFUSED|NOT STEADY|NOT restored|STILL LEFT)\b"),
            "bold red"))


def _styled(line: str, *, wrap: bool) -> Text:
    """One line as rich text, OK/FAIL coloured (rich drops the colour under ``NO_COLOR`` or without colour).
    ``wrap``: wrapped to the console's width by rich, long words folded (the block, whose rows rich must count);
    otherwise the style of the print applies (events: ``soft_wrap``, left to the terminal)."""
    text = Text(line, no_wrap=False, overflow="fold") if wrap else Text(line)
    for pattern, style in _STYLES:
        text.highlight_regex(pattern, style)
    return text


class _Console(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True  # rich's default exits the process (SystemExit): the heal must go on


class LiveView:
    """Draws :class:`LiveState` from a daemon thread; ``event`` lines are printed at once."""

    def __init__(self, state: LiveState, *, refresh_s: float, line_interval_s: float,
                 out: TextIO | None = None, tty: bool | None = None,
                 update: Callable[[], None] | None = None) -> None:
        self.state = state
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.refresh_s = refresh_s
        self.line_interval_s = line_interval_s
        self.update = update
        self._lock = threading.RLock()  # reentrant: ``event`` also runs in signal handlers of the main thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._console: Console | None = None
        self._live: Live | None = None
        self._finished = False
        if self.tty:
            console = _Console(file=self.out, force_terminal=True, markup=False, emoji=False, highlight=False)
            if console.is_interactive:  # not with TERM=dumb (or TTY_INTERACTIVE=0): no cursor moves, so lines
                self._console = console
            else:
                self.tty = False

    def start(self) -> LiveView:
        if self.tty:
            self.draw()
        self._thread = threading.Thread(target=self._loop, name="gameday-live", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.refresh_s * 4 + 1)
        self.draw(final=True)

    def event(self, text: str) -> None:
        line = f"{self.state.elapsed():6.1f}s {text}"
        with self._lock:
            self.state.events.append(line)
            if not self.tty:
                self.write(f"[gameday] {line}\n")
                return
            self._rich(lambda: self._print_above(line))

    def _print_above(self, line: str) -> None:
        """An event line above the block: rich erases the block, prints the line, draws the block again
        (a fresh one). ``soft_wrap``: the line is left whole for the terminal to wrap, so it copies as one."""
        assert self._console is not None
        if self._live is not None and self._live.is_started:
            self._live.update(self._block())
        self._console.print(_styled(line, wrap=False), soft_wrap=True)

    def write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the healing

    def _block(self) -> Group:
        return Group(*(_styled(line, wrap=True) for line in render(self.state, max_events=0)))

    def _rich(self, action: Callable[[], object]) -> None:
        try:
            action()
        except (OSError, ValueError):  # a closed terminal must not stop the healing; nor fill memory
            if self._console is not None:
                self._console.quiet = True
        except Exception:  # the view must never take the run down
            pass

    def draw(self, final: bool = False) -> None:
        with self._lock:
            if self.tty:
                if self._finished:
                    return
                if self._live is None:
                    self._live = Live(console=self._console, auto_refresh=False, transient=False,
                                      redirect_stdout=False, redirect_stderr=False, vertical_overflow="ellipsis")
                    self._rich(self._live.start)
                live = self._live
                self._rich(lambda: live.update(self._block(), refresh=True))
                if final:
                    self._finished = True
                    self._rich(live.stop)  # the last block stays on the screen; what follows goes below it
            elif final:
                self.write(status_line(self.state) + "\n")

    def _loop(self) -> None:
        last_line = time.monotonic()
        while not self._stop.wait(self.refresh_s):
            try:
                if self.update is not None:
                    self.update()
                if self.tty:
                    self.draw()
                elif time.monotonic() - last_line >= self.line_interval_s:
                    with self._lock:
                        self.write(status_line(self.state) + "\n")
                    last_line = time.monotonic()
            except Exception:  # the view must never take the run down
                continue
