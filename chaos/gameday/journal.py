"""The journal: one JSON line per action of every game-day command, next to the reports.

``<report dir>/gameday/journal.jsonl`` (and, for ``run``, a copy of that run's lines in its report folder).
Each record: ``t`` (ISO 8601 UTC), ``session`` (one id per command invocation), ``command`` (the command
line), ``pid``, ``user``, ``target`` (run id or external target name), ``scenario``, ``action`` (``up``,
``down``, ``run``, ``probe``, ``inject``, ``heal``, ``abort``, ``rollback``, ``refused``, ``end``, ...),
``step``, ``outcome`` (``ok``, ``failed``, ``refused``, ``aborted``, ``interrupted``, ...) and ``detail``.
Lines are appended and flushed one at a time, so a killed process leaves every line it wrote.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shlex
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chaos.redact import redact_doc


def journal_path(report_dir: Path) -> Path:
    return Path(report_dir) / "gameday" / "journal.jsonl"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


class Journal:
    def __init__(self, path: Path, argv: Sequence[str], *, target: str = "", scenario: str = "") -> None:
        self.path = Path(path)
        self.session = uuid.uuid4().hex[:12]
        self.command = shlex.join(["gameday", *argv])
        self.target = target
        self.scenario = scenario
        self.copies: list[Path] = []
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []

    def also_to(self, path: Path) -> None:
        """Also append this session's records (past and future) to ``path`` (a run's report folder)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("a", encoding="utf-8") as f:
            for r in self.records:
                f.write(json.dumps(r, default=str) + "\n")
            self.copies.append(path)

    def write(self, action: str, outcome: str = "ok", *, step: str | None = None, **detail: Any) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "t": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "session": self.session,
            "command": self.command, "pid": os.getpid(), "user": _user(), "target": self.target,
            "scenario": self.scenario, "action": action, "step": step, "outcome": outcome,
            "detail": detail or None,
        }
        rec = redact_doc(json.loads(json.dumps(rec, default=str)))  # no secret reaches the journal
        line = json.dumps(rec) + "\n"
        with self._lock:
            self.records.append(rec)
            for p in [self.path, *self.copies]:
                p.parent.mkdir(parents=True, exist_ok=True)
                with p.open("a", encoding="utf-8") as f:
                    f.write(line)
                    f.flush()
        return rec


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a journal file (lines that do not parse are skipped)."""
    if not Path(path).is_file():
        return
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue
