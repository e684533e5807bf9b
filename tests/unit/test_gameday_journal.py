"""The game-day journal (JSONL, one record per action, copied into a run's folder) and the live view."""

from __future__ import annotations

import io
import json
from pathlib import Path

from chaos.gameday import journal as J
from chaos.gameday.live import LiveState, LiveView, ProbeStatus, render, status_line
from chaos.history import Op, Outcome
from chaos.run import window_stats


def test_journal_records_every_action_and_copies_a_runs_lines(tmp_path: Path) -> None:
    path = J.journal_path(tmp_path)
    j = J.Journal(path, ["run", "leader-kill"], target="abc", scenario="leader-kill")
    j.write("command", "started")
    j.also_to(tmp_path / "run1" / "journal.jsonl")
    j.write("inject", "ok", step="kill leader:0", resolved={"nodes": ["kafka-2"]})
    recs = list(J.read(path))
    assert [r["action"] for r in recs] == ["command", "inject"]
    r = recs[1]
    assert r["command"] == "gameday run leader-kill" and r["target"] == "abc" and r["scenario"] == "leader-kill"
    assert r["step"] == "kill leader:0" and r["outcome"] == "ok" and r["detail"] == {"resolved": {"nodes": ["kafka-2"]}}
    assert r["t"].endswith("+00:00") and r["session"] == recs[0]["session"] and r["pid"] > 0
    copy = [json.loads(x) for x in (tmp_path / "run1" / "journal.jsonl").read_text().splitlines()]
    assert [c["action"] for c in copy] == ["command", "inject"]  # earlier lines too


def op(i: int, end_s: float, ok: bool, latency_ms: float) -> Op:
    end = int(end_s * 1e6)
    return Op(id=str(i), key="k", seq=i, amount=1, intended_us=end - int(latency_ms * 1000), start_us=end - 10,
              end_us=end, outcome=Outcome.OK if ok else Outcome.UNKNOWN, phase="during")


def test_window_stats_looks_only_at_the_last_window() -> None:
    ops = [op(i, 1.0 + i * 0.01, True, 500) for i in range(100)]  # old and slow
    ops += [op(100 + i, 10.0 + i * 0.01, i % 4 != 0, 10 + i) for i in range(100)]  # last second
    w = window_stats(ops, int(11.0 * 1e6), 2.0)
    assert w["ops"] == 100 and w["errors"] == 25 and w["error_rate"] == 0.25
    assert w["p50_ms"] is not None and w["p50_ms"] < 100 and w["p99_ms"] <= 110
    empty = window_stats([], 0, 1.0)
    assert empty["error_rate"] is None and empty["p99_ms"] is None


def state() -> LiveState:
    s = LiveState(scenario="leader-kill", target="env abc")
    s.phase = "during"
    s.timeline = [{"label": "warmup 3s", "status": "done"}, {"label": "kill leader:0 @0s for 6s", "status": "active"}]
    s.active = ["kill kafka-2 (3.1s)"]
    s.probes = {"ingest_serving": ProbeStatus(True, "SERVING"), "full_isr": ProbeStatus(False, "4/6 full")}
    s.counts = {"sent": 2840, "acked": 2802, "errors": 0, "applied": 2650, "lag": 152}
    s.window = {"window_s": 3, "ops": 600, "p50_ms": 12.0, "p99_ms": 3410.0, "error_rate": 0.0}
    s.budget = "errors <= 50%"
    s.events = ["7.0s inject kill leader:0 -> kill kafka-2"]
    return s


def test_render_shows_timeline_faults_probes_counts_and_window() -> None:
    text = "\n".join(render(state()))
    assert "phase during" in text
    assert "> kill leader:0 @0s for 6s [active]" in text and "warmup 3s [done]" in text
    assert "faults    kill kafka-2 (3.1s)" in text
    assert "ingest_serving OK SERVING | full_isr FAIL 4/6 full" in text
    assert "sent 2,840 acked 2,802 errors 0 | applied 2,650 lag 152" in text
    assert "p99 3,410 ms" in text and "errors 0.0%" in text and "budget: errors <= 50%" in text
    assert "events    7.0s inject kill leader:0" in text
    line = status_line(state())
    assert "faults: kill kafka-2 (3.1s)" in line and "steady: FAIL full_isr" in line and "lag 152" in line


def test_view_redraws_in_place_on_a_terminal_and_writes_lines_elsewhere() -> None:
    tty = io.StringIO()
    v = LiveView(state(), refresh_s=0.05, line_interval_s=1, out=tty, tty=True)
    v.draw()
    v.draw()
    assert "\x1b[" in tty.getvalue() and tty.getvalue().count("gameday leader-kill") == 2
    log = io.StringIO()
    v = LiveView(state(), refresh_s=0.05, line_interval_s=1, out=log, tty=False)
    v.event("inject kill")
    v.stop()
    assert "\x1b[" not in log.getvalue() and "[gameday]" in log.getvalue() and "inject kill" in log.getvalue()
