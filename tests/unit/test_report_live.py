"""The progress lines of a run: one per phase and fault change, periodic ones rate-limited, never a flood of a
CI log; and how faults are labelled. (The samples behind the plots are the run protocol's: see
tests/unit/test_gameday_runner.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos.report import live


@dataclass
class FakeRun:
    """What the progress lines read of a run."""

    phase: str = "warmup"
    counts_: dict[str, Any] = field(default_factory=lambda: {"sent": 0, "acked": 0, "errors": 0, "applied": None,
                                                             "lag": None})
    env: Any = field(default_factory=lambda: type("E", (), {"run_id": "unit-progress"})())

    def counts(self) -> dict[str, Any]:
        return dict(self.counts_)


@dataclass
class FakeFault:
    name: str
    resolved: dict[str, Any]
    injected_at: float | None = None


@pytest.fixture
def lines() -> Iterator[list[str]]:
    out: list[str] = []
    live.set_progress(out.append, None)
    yield out
    live.set_progress(None)


def test_one_line_per_phase_and_fault_change(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRun()
    active: list[FakeFault] = []
    monkeypatch.setattr(live, "active_faults_of", lambda _run: active)
    p = live.Progress("test_x", interval_s=0)
    p.start(run)
    p.event("phase", "phase warmup")
    run.phase = "during"
    run.counts_.update(sent=100, acked=90, errors=4, applied=80, lag=3)
    p.event("phase", "phase during")
    p.event("inject", "injecting kill leader:0", "started")  # the journal's business: no line
    active.append(FakeFault("kill", {"node": "kafka-2"}, injected_at=time.time()))
    p.event("inject", "inject kill leader:0 @0s for 6s -> kill kafka-2")
    for _ in range(50):
        p.tick(run)  # interval 0: no periodic line
    active.clear()
    p.event("heal", "heal kill leader:0 @0s for 6s (0.05 s)", step="kill leader:0 @0s for 6s")
    p.stop(run, type("R", (), {"outcome": "passed"})())
    assert [li.split(" (", 1)[1].split(")")[0] for li in lines] == [
        "phase warmup", "phase during", "inject kill leader:0 @0s for 6s -> kill kafka-2",
        "heal kill leader:0 @0s for 6s (0.05 s", "done: passed"]
    assert "fault kill kafka-2 active" in lines[2]
    assert "fault kill leader:0 @0s for 6s healed" in lines[3]
    assert lines[-1].startswith("[chaos] test_x") and "sent 100 acked 90 errors 4 | applied 80 lag 3" in lines[-1]


def test_periodic_lines_are_rate_limited(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "active_faults_of", lambda _run: [])
    run = FakeRun(phase="before")
    p = live.Progress("t", interval_s=0.1)
    p.start(run)
    deadline = time.monotonic() + 0.55
    ticks = 0
    while time.monotonic() < deadline:
        p.tick(run)
        ticks += 1
        time.sleep(0.005)
    # about one per 0.1 s, never one per tick
    assert ticks > 50 and 2 <= len(lines) <= 7, lines


def test_a_broken_sink_falls_back_to_logging(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_line: str) -> None:
        raise OSError("terminal gone")

    monkeypatch.setattr(live, "active_faults_of", lambda _run: [])
    live.set_progress(broken, 0)
    try:
        with caplog.at_level("INFO", logger="chaos.progress"):
            p = live.Progress("t")
            p.start(FakeRun())
            p.event("phase", "phase before")
    finally:
        live.set_progress(None)
    assert any("[chaos] t" in r.message for r in caplog.records)


def test_the_default_interval_is_longer_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    live.set_progress(None)
    monkeypatch.delenv("CI", raising=False)
    assert live.progress_interval_s() == 5.0
    monkeypatch.setenv("CI", "true")
    assert live.progress_interval_s() == 10.0
    live.set_progress(None, 2.5)
    assert live.progress_interval_s() == 2.5
    live.set_progress(None)


def test_fault_labels() -> None:
    assert live.fault_label("kill", {"resolved": {"node": "kafka-2"}}) == "kill kafka-2"
    assert live.fault_label("latency", {"resolved": {"links": ["a", "b"]}}) == "latency a,b"
    assert live.fault_label("kill", {"target": "LeaderOf(partition=0)"}) == "kill LeaderOf(partition=0)"
    assert live.fault_label("pause") == "pause"
    split = {"a": ["kafka-3"], "b": ["kafka-1", "kafka-2"], "one_way": False, "chain": "CHAOS1",
             "rules": {"kafka-3": {"drop_from": ["172.20.0.3"]}}, "backend": "iptables"}
    assert live.fault_label("split", {"resolved": split}) == "split kafka-3 kafka-1,kafka-2"
    netem = {"nodes": ["kafka-3"], "backend": {"kafka-3": "nfqueue"}, "stats": {"seen": 3}}
    assert live.fault_label("netem", {"resolved": netem}) == "netem kafka-3"
    assert len(live.fault_label("latency", {"resolved": {"links": ["x" * 50, "y" * 50]}})) == live.FAULT_LABEL_MAX
