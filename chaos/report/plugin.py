"""pytest side of the reports (loaded by :mod:`chaos.pytest_plugin`).

* Progress: the experiments' live lines (:mod:`chaos.report.live`) go to the terminal, above pytest's
  own output, at most one per phase or fault change plus one every ``--chaos-progress-interval``
  seconds (ini ``chaos_progress_interval``, env ``CHAOS_PROGRESS_INTERVAL``; default 5, or 10 with
  ``CI`` set; 0 = changes only; ``off`` = none).
* JUnit XML: each experiment's key figures become ``<property>`` elements of its test case
  (``chaos.during.p99_ms``, ``chaos.convergence_s``, ``chaos.verdicts``, ...; with several experiments
  in one test, ``chaos.<experiment>.during.p99_ms``), through ``item.user_properties``.
* When a test failed and the container logs were collected, the experiment's page is rebuilt so it
  links them.
* At the end of the session: ``<report dir>/<run id>/index.html``, ``summary.md`` and ``metrics.prom``
  for every run that wrote experiments, the summary appended to ``$GITHUB_STEP_SUMMARY`` when that is
  set, and the index's path in the terminal summary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import pytest

from chaos.report import junit_properties, live
from chaos.report.schema import Results, VerdictRecord

log = logging.getLogger("chaos.report")

RUN_DIRS_KEY = pytest.StashKey[dict[Path, None]]()
INDEXES_KEY = pytest.StashKey[list[Path]]()
_WRITE_LOCK = threading.Lock()


class _Experiment(Protocol):
    name: str
    artefacts: Path


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos")
    help_text = ("seconds between periodic progress lines of a running experiment (0: only phase and fault "
                 "changes; off: none; default 5, 10 with CI set)")
    group.addoption("--chaos-progress-interval", dest="chaos_progress_interval", default=None,
                    help=f"{help_text} (env CHAOS_PROGRESS_INTERVAL, ini chaos_progress_interval)")
    parser.addini("chaos_progress_interval", help=help_text, default=None)


def _progress_setting(config: pytest.Config) -> str | None:
    cli = config.getoption("chaos_progress_interval", None)
    if cli is not None:
        return str(cli)
    env = os.environ.get("CHAOS_PROGRESS_INTERVAL")
    if env:
        return env
    ini = config.getini("chaos_progress_interval")
    return str(ini) if ini else None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RUN_DIRS_KEY] = {}
    config.stash[INDEXES_KEY] = []
    raw = _progress_setting(config)
    interval: float | None = None
    if raw is not None and raw.strip().lower() in ("off", "no", "false", "none"):
        live.set_progress(lambda _line: None, 0)
        return
    if raw is not None:
        try:
            interval = float(raw)
        except ValueError:
            raise pytest.UsageError(f"chaos_progress_interval={raw!r} is not a number of seconds or 'off'") from None
        if interval < 0:
            raise pytest.UsageError("chaos_progress_interval must be 0 or more seconds (or 'off')")

    def to_terminal(line: str) -> None:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            log.info("%s", line)
            return
        capman = config.pluginmanager.get_plugin("capturemanager")
        with _WRITE_LOCK:
            ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
            with ctx:
                tr.write_line(line)
                tr._tw.flush()

    live.set_progress(to_terminal, interval)


def pytest_unconfigure(config: pytest.Config) -> None:
    live.set_progress(None)


def experiments_done(request: pytest.FixtureRequest, experiments: Iterable[_Experiment], *, logs: bool) -> None:
    """Called by the ``experiment`` fixture after each test: JUnit properties, page refresh, run index.

    Never raises: a report problem must not turn a test red (it is logged instead).
    """
    made = list(experiments)
    for exp in made:
        try:
            folder = Path(exp.artefacts)
            request.config.stash[RUN_DIRS_KEY][folder.parent] = None
            path = folder / "results.json"
            if not path.is_file():
                continue
            results: Results = json.loads(path.read_text(encoding="utf-8"))
            prefix = "chaos." if len(made) == 1 else f"chaos.{exp.name}."
            for name, value in junit_properties(results, prefix):
                request.node.user_properties.append((name, value))
            page = folder / "report.html"
            request.node.user_properties.append((f"{prefix}report", str(page)))
            if logs and (folder / "logs").is_dir():
                _refresh_page(folder, results)
        except Exception as exc:
            log.warning("report for %s: %r", getattr(exp, "name", exp), exc)


CHECK_VERDICT = "check"  # the verdict that carries a failed assertion of the experiment's own check


def record_test_failure(experiments: Iterable[_Experiment], message: str) -> list[Path]:
    """A test failed although its experiments' verdicts all passed: an assertion of the experiment's own
    ``check`` (``the toxic did not show``) failed. Add it as a failed ``check`` verdict to each of their
    ``results.json`` and rewrite the page and the summary, so no report says PASS for a red test.
    Returns the folders rewritten; never raises (a report problem must not hide the test's own failure)."""
    folders = [Path(e.artefacts) for e in experiments if (Path(e.artefacts) / "results.json").is_file()]
    try:
        docs: dict[Path, Results] = {f: json.loads((f / "results.json").read_text(encoding="utf-8"))
                                     for f in folders}
    except Exception as exc:
        log.warning("reading results to record a failed check: %r", exc)
        return []
    passed: list[bool] = [d.get("ok", True) for d in docs.values()]
    if not all(passed):
        return []  # a failed verdict already explains the red test
    done = []
    for folder, doc in docs.items():
        try:
            from chaos.history import History
            from chaos.report import write_artefacts

            verdict: VerdictRecord = {"name": CHECK_VERDICT, "ok": False, "message": message, "counts": {},
                                      "examples": []}
            doc["verdicts"] = [*(doc.get("verdicts") or []), verdict]
            doc["ok"] = False
            doc["failed"] = [*(doc.get("failed") or []), CHECK_VERDICT]
            write_artefacts(History.read_jsonl(folder / "history.jsonl"), doc, folder)
            done.append(folder)
        except Exception as exc:
            log.warning("recording the failed check in %s: %r", folder, exc)
    return done


def _refresh_page(folder: Path, results: Results) -> None:
    from chaos.history import History
    from chaos.report.html import render_html

    history = History.read_jsonl(folder / "history.jsonl")
    (folder / "report.html").write_text(render_html(history, results, folder), encoding="utf-8")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from chaos.report.index import write_run_index

    for run in session.config.stash.get(RUN_DIRS_KEY, {}):
        try:
            if run.is_dir():
                index, _ = write_run_index(run)
                session.config.stash[INDEXES_KEY].append(index)
        except Exception as exc:
            log.warning("run index for %s: %r", run, exc)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for index in config.stash.get(INDEXES_KEY, []):
        terminalreporter.write_line(f"chaos report: {index}")
