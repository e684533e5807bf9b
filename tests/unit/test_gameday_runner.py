"""The run protocol without containers: a scripted gRPC endpoint stands in for the entry point, and a fault
object that makes it fail stands in for a fault. Checks the hypothesis gate, the budget abort (healed at
once, exit 3) and a passing run's report; the real thing is tests/integration/test_gameday_cli.py."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from chaos.config import Settings
from chaos.faults import Fault
from chaos.gameday import scenario as S
from chaos.gameday.journal import Journal
from chaos.gameday.runner import run_scenario
from chaos.run import EXIT_ABORTED, EXIT_NOT_STEADY, EXIT_OK
from system_under_test.adapter import PIPELINE
from tests.unit.ingest_server import serving
from tests.unit.test_workload import CACHE, ScriptedIngest, pb2_grpc


class Failing(ScriptedIngest):
    failing = False

    async def Submit(self, request, context):  # type: ignore[no-untyped-def]
        if self.failing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        return await super().Submit(request, context)


class BreakIt(Fault):
    name = "break_it"

    def __init__(self, servicer: Any) -> None:
        super().__init__()
        self.servicer = servicer

    def _inject(self, env: Any) -> None:
        self.servicer.failing = True
        self.resolved = {"node": "ingest"}

    def _heal(self, env: Any) -> None:
        self.servicer.failing = False


class FakeEnv:
    run_id = "fake-env"


class FakeTarget:
    """Where the run goes: the scripted endpoint, through the reference pipeline's client; nothing deployed."""

    kind = "fake"
    name = "fake target"
    bootstrap = ""
    brokers = 3
    deployment = None
    watched = None
    pipeline = PIPELINE

    def __init__(self, entry: str) -> None:
        self.env = FakeEnv()
        self.entry = entry

    def applied(self) -> None:
        return None

    def leftovers(self) -> list[str]:
        return []

    def heal_everything(self) -> list[str]:
        return []


def scenario(fault: Fault, duration_s: float, max_error_rate: float | None) -> S.Scenario:
    doc: dict[str, Any] = {
        "name": "fake", "load": {"rate": 100}, "phases": {"warmup_s": 0.3, "before_s": 0.7, "after_s": 0.7},
        "steady_state": {"probe": [{"type": "error_rate", "max": 0.0, "window_s": 0.5, "during": "skip"}]},
        "method": [{"fault": fault, "at_s": 0.2, "duration_s": duration_s}],
    }
    if max_error_rate is not None:
        doc["budgets"] = {"window_s": 0.5, "max_error_rate": max_error_rate}
    return S.from_dict(doc, source="test")


def run(tmp_path: Path, sc: S.Scenario, target: str) -> tuple[int, str, list[dict[str, Any]], Path]:
    settings = Settings.from_env({}, cache_dir=CACHE, report_dir=tmp_path, gameday_steady_timeout_s=1.5,
                                 gameday_probe_interval_s=0.2, rpc_timeout_s=2)
    journal = Journal(tmp_path / "journal.jsonl", ["run", "fake"], target="fake", scenario="fake")
    out = io.StringIO()
    code = run_scenario(sc, FakeTarget(target), settings, journal, tmp_path, out=out, tty=False)  # type: ignore[arg-type]
    (folder,) = (tmp_path / "fake-env").iterdir()
    return code, out.getvalue(), [json.loads(x) for x in (tmp_path / "journal.jsonl").read_text().splitlines()], folder


@pytest.fixture
def failing() -> Iterator[tuple[str, Failing]]:
    servicer = Failing()
    with serving(servicer, pb2_grpc) as target:
        yield target, servicer


def test_breached_budget_aborts_and_heals_at_once(failing: tuple[str, Failing], tmp_path: Path) -> None:
    target, servicer = failing
    fault = BreakIt(servicer)
    started = time.monotonic()
    code, out, journal, folder = run(tmp_path, scenario(fault, 30, 0.2), target)
    assert code == EXIT_ABORTED, out
    assert time.monotonic() - started < 15  # not the fault's 30 s
    assert fault.healed_at is not None and not servicer.failing
    assert "ABORTED: budget breached: error rate" in out and "healing everything now" in out
    assert "everything healed, nothing left" in out
    actions = [(r["action"], r["outcome"]) for r in journal]
    assert ("abort", "healing") in actions and ("heal", "ok") in actions and actions[-1] == ("end", "aborted")
    results = json.loads((folder / "results.json").read_text())
    assert results["gameday"]["outcome"] == "aborted" and "budget breached" in results["gameday"]["reason"]
    assert results["faults"][0]["name"] == "break_it"


def test_no_injection_unless_steady(failing: tuple[str, Failing], tmp_path: Path) -> None:
    target, servicer = failing
    servicer.failing = True  # errors from the start: the hypothesis fails
    fault = BreakIt(servicer)
    code, out, journal, _ = run(tmp_path, scenario(fault, 1, None), target)
    assert code == EXIT_NOT_STEADY, out
    assert fault.injected_at is None and "REFUSED to inject" in out
    assert not [r for r in journal if r["action"] == "inject"]


def test_a_passing_run(failing: tuple[str, Failing], tmp_path: Path) -> None:
    target, servicer = failing
    fault = BreakIt(servicer)
    code, out, journal, folder = run(tmp_path, scenario(fault, 0.5, None), target)
    assert code == EXIT_OK, out
    assert "steady state before: OK" in out and "steady state after: OK" in out
    assert [r["outcome"] for r in journal if r["action"] == "inject"] == ["started", "ok"]
    results = json.loads((folder / "results.json").read_text())
    assert results["ok"] and {v["name"] for v in results["verdicts"]} == {"steady_state_before", "steady_state_after"}
    assert (folder / "report.html").is_file()
