"""The live monitor: samples for the plots, and a progress line that does not flood a CI log."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos.report import live


@dataclass
class FakeLoad:
    phase: str = "warmup"
    issued: int = 0
    counts: Counter[str] = field(default_factory=Counter)


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


def wait_for(cond: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_one_line_per_phase_and_fault_change_and_samples_with_probe_values(lines: list[str]) -> None:
    load = FakeLoad()
    active: list[FakeFault] = []
    probes = iter(range(1000))

    def probe() -> dict[str, Any]:
        n = next(probes)
        return {"applied": n * 10, "consumer_lag": 3, "ignored": 1}

    mon = live.Monitor("test_x", load, active=lambda: active, probe=probe, events_per_op=2,
                       sample_every_s=0.05, interval_s=0, tick_s=0.01).start()
    wait_for(lambda: len(lines) >= 1)
    load.issued, load.counts["ok"], load.counts["unknown"] = 50, 90, 4
    load.phase = "during"
    wait_for(lambda: any("phase during" in li for li in lines))
    fault = FakeFault("kill", {"node": "kafka-2"}, injected_at=time.time())
    active.append(fault)
    wait_for(lambda: any("fault kill kafka-2 injected" in li for li in lines))
    time.sleep(0.2)  # several samples, but no periodic line: interval 0
    active.clear()
    load.phase = "after"
    wait_for(lambda: any("fault kill kafka-2 healed" in li for li in lines))
    samples = mon.stop("drained")
    assert "phase warmup" in lines[0]
    # warmup, during, injected, healed and phase after (one line, or two if a tick fell between), drained
    assert len(lines) in (5, 6), lines
    assert lines[-1].startswith("[chaos] test_x") and "(drained)" in lines[-1]
    assert "sent 100 acked 90 errors 4" in lines[-1] and "lag 3" in lines[-1]
    assert "fault kill kafka-2 healed" in lines[-1]
    assert len(samples) >= 5
    s = samples[-1]
    assert set(s) == {"t_us", "phase", "sent", "acked", "errors", "applied", "consumer_lag"}
    assert (s["sent"], s["acked"], s["errors"], s["consumer_lag"], s["phase"]) == (100, 90, 4, 3, "after")
    assert [x["applied"] for x in samples] == sorted(x["applied"] for x in samples)


def test_merged_changes_are_one_line(lines: list[str]) -> None:
    load = FakeLoad(phase="before")
    active: list[FakeFault] = []
    mon = live.Monitor("t", load, active=lambda: active, interval_s=0, tick_s=0.2).start()
    wait_for(lambda: len(lines) == 1)
    load.phase = "during"
    active.append(FakeFault("link_down", {"links": ["projector-pg"]}, time.time()))
    wait_for(lambda: len(lines) == 2)
    mon.stop()
    assert "(phase during, fault link_down projector-pg injected)" in lines[1]
    assert "fault link_down projector-pg active" in lines[1]


def test_periodic_lines_are_rate_limited(lines: list[str]) -> None:
    load = FakeLoad(phase="before")
    mon = live.Monitor("t", load, interval_s=0.1, sample_every_s=0.01, tick_s=0.005).start()
    time.sleep(0.55)
    mon.stop()
    # one for the phase, about one per 0.1 s, one at the end; never one per tick (~100)
    assert 2 <= len(lines) <= 9, lines


def test_a_failing_probe_records_nulls_and_the_monitor_goes_on(lines: list[str]) -> None:
    def probe() -> dict[str, Any]:
        raise ConnectionError("broker down")

    mon = live.Monitor("t", FakeLoad(), probe=probe, sample_every_s=0.01, interval_s=0, tick_s=0.005).start()
    time.sleep(0.1)
    samples = mon.stop()
    assert len(samples) >= 3
    assert all(s["applied"] is None and s["consumer_lag"] is None for s in samples)
    assert "applied" not in lines[-1]


def test_a_broken_sink_falls_back_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_line: str) -> None:
        raise OSError("terminal gone")

    live.set_progress(broken, 0)
    try:
        with caplog.at_level("INFO", logger="chaos.progress"):
            mon = live.Monitor("t", FakeLoad(), interval_s=0, tick_s=0.005).start()
            time.sleep(0.05)
            mon.stop()
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


def test_a_slow_probe_does_not_delay_the_lines(lines: list[str]) -> None:
    def slow() -> dict[str, Any]:
        time.sleep(0.6)  # a probe waiting on a dead broker
        return {"applied": 1, "consumer_lag": 0}

    load = FakeLoad(phase="before")
    mon = live.Monitor("t", load, probe=slow, interval_s=0, tick_s=0.01, sample_every_s=0.01).start()
    wait_for(lambda: len(lines) == 1)
    time.sleep(0.05)
    load.phase = "during"
    t0 = time.monotonic()
    wait_for(lambda: len(lines) == 2)
    assert time.monotonic() - t0 < 0.4
    mon.stop()
