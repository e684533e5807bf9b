"""Open a report in headless Chromium and report what the browser saw: console messages, uncaught
exceptions, every network request, the result of a few DOM queries, and optionally a screenshot.

The DevTools protocol is spoken over ``--remote-debugging-pipe`` (JSON messages separated by NUL bytes
on file descriptors 3 and 4 of the browser, as Puppeteer's ``pipe: true`` does), so there is no
debugging port to find or expose and no websocket library to depend on.

Used by ``tests/integration/test_report_browser.py`` and by ``python -m chaos.report screenshot``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BrowserError", "PageCheck", "find_chromium", "inspect_page"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """``$CHAOS_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    env = os.environ.get("CHAOS_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    url: str
    console: list[dict[str, Any]] = field(default_factory=list)  # {"level", "text"} from console.* and Log
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, the page itself included
    blocked: dict[str, str] = field(default_factory=dict)  # URL -> why the browser refused it (e.g. "csp")
    values: dict[str, Any] = field(default_factory=dict)  # expression -> value
    screenshot: bytes | None = None
    load_s: float = 0.0

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions."""
        return [f"{c['level']}: {c['text']}" for c in self.console if c["level"] == "error"] + self.exceptions

    @property
    def foreign_requests(self) -> list[str]:
        """Requests other than the page itself (and ``data:`` URLs, which never leave the browser),
        including attempts the browser then blocked."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


class _Pipe:
    """A DevTools protocol connection over the browser's fds 3 (commands in) and 4 (messages out)."""

    def __init__(self, executable: str, user_dir: str, extra: Sequence[str]) -> None:
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # keep the child's ends clear of 3 and 4 so the dup2s below cannot clobber each other
        child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(out_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(out_w)

        def setup() -> None:  # in the child, before exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [executable, *FLAGS, f"--user-data-dir={user_dir}", *extra, "about:blank"]
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self.stderr, preexec_fn=setup, pass_fds=(3, 4),
                                         start_new_session=True)
        finally:
            os.close(child_in)
            os.close(child_out)
        self._w = cmd_w
        self._r = out_r
        self._next = 0
        self._lock = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    with self._lock:
                        if "id" in msg:
                            self._replies[msg["id"]] = msg
                        else:
                            self.events.append(msg)
                        self._lock.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout_s: float = 30.0) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            mid = self._next
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise BrowserError(f"no answer to {method} within {timeout_s} s"
                                       + (" (the browser exited)" if self._closed else "") + self.stderr_tail())
                self._lock.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(self, method: str, session: str | None, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                for ev in self.events:
                    if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                        return ev
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise BrowserError(f"no {method} within {timeout_s} s" + self.stderr_tail())
                self._lock.wait(left)

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace").strip()
            if text:
                return "; browser stderr: " + text[-600:]
        return ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.poll() is None:
                self.send("Browser.close", timeout_s=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._w, self._r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stderr.close()


def inspect_page(path: str | Path, *, expressions: Sequence[str] = (), screenshot: bool = False,
                 width: int = 1280, height: int = 900, settle_s: float = 0.5, timeout_s: float = 60.0,
                 executable: str | None = None, hover: tuple[float, float] | None = None) -> PageCheck:
    """Load ``path`` (a local HTML file) in a fresh headless Chromium and report what happened.

    ``expressions`` are evaluated in the page after it loaded (JSON-serialisable results);
    ``hover`` moves the mouse to (x, y) CSS pixels before evaluating them.
    """
    exe = executable or find_chromium()
    if exe is None:
        raise BrowserError("no Chromium found: install Debian's chromium (apt-get install -y chromium) "
                           "or set CHAOS_CHROMIUM to a Chromium or Chrome executable")
    url = Path(path).resolve().as_uri()
    check = PageCheck(url=url)
    with tempfile.TemporaryDirectory(prefix="chaos-chromium-") as user_dir:
        pipe = _Pipe(exe, user_dir, [f"--window-size={width},{height}"])
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout_s=timeout_s)["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            started = time.monotonic()
            nav = pipe.send("Page.navigate", {"url": url}, session=session)
            if nav.get("errorText"):
                raise BrowserError(f"navigating to {url}: {nav['errorText']}")
            pipe.wait_event("Page.loadEventFired", session, timeout_s)
            check.load_s = time.monotonic() - started
            time.sleep(settle_s)  # late console messages
            if hover is not None:
                for kind in ("mouseMoved",):
                    pipe.send("Input.dispatchMouseEvent", {"type": kind, "x": hover[0], "y": hover[1]},
                              session=session)
            for expr in expressions:
                res = pipe.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
                if "exceptionDetails" in res:
                    raise BrowserError(f"evaluating {expr!r}: {res['exceptionDetails'].get('text')}")
                check.values[expr] = res.get("result", {}).get("value")
            if screenshot:
                metrics = pipe.send("Page.getLayoutMetrics", session=session)
                size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
                full_h = int(size.get("height", height))
                shot = pipe.send("Page.captureScreenshot",
                                 {"format": "png", "captureBeyondViewport": True,
                                  "clip": {"x": 0, "y": 0, "width": width, "height": full_h, "scale": 1}},
                                 session=session, timeout_s=timeout_s)
                check.screenshot = base64.b64decode(shot["data"])
            with pipe._lock:
                events = [ev for ev in pipe.events if ev.get("sessionId") == session]
        finally:
            pipe.close()
    ids: dict[str, str] = {}
    for ev in events:
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            level = {"warning": "warning", "error": "error", "assert": "error"}.get(params.get("type", ""), "info")
            check.console.append({"level": level, "text": text})
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            check.console.append({"level": entry.get("level", "info"), "text": f"{entry.get('source')}: "
                                  f"{entry.get('text')} {entry.get('url', '')}".strip()})
        elif method == "Runtime.exceptionThrown":
            det = params.get("exceptionDetails", {})
            check.exceptions.append(str(det.get("exception", {}).get("description") or det.get("text")))
        elif method == "Network.requestWillBeSent":
            check.requests.append(params.get("request", {}).get("url", ""))
            ids[params.get("requestId", "")] = check.requests[-1]
        elif method == "Network.loadingFailed" and params.get("blockedReason"):
            check.blocked[ids.get(params.get("requestId", ""), "?")] = str(params["blockedReason"])
    return check
