"""A short game-day live view with long lines, for test_gameday_live_tmux (run in a real terminal).

``python -m tests.unit.live_view_demo``: a :class:`LiveState` whose lines are all longer than a narrow terminal
(a long scenario name, many probes, long event texts) shown by :class:`LiveView` with a fast refresh for about
two seconds while the state changes, then ``DONE`` on a line of its own.
"""

from __future__ import annotations

import itertools
import time

from chaos.gameday.live import LiveState, LiveView, ProbeStatus

SCENARIO = "leader-kill-under-latency-with-a-long-scenario-name-x"  # fits on one row at 80 columns
EVENTS = 12
EVENT_EVERY_S = 0.15  # EVENTS of them: about two seconds
REFRESH_S = 0.02
DONE = "live-view-demo: done"


def event_text(i: int) -> str:
    """Unique per ``i`` and longer than 80 columns, so that it wraps on a narrow terminal."""
    return (f"demo-event-{i:02d} inject latency 250ms +/- 50ms on link ingest->kafka-{i % 3 + 1} and on every "
            f"link between the brokers, then wait for the budget check (event number {i:02d} of {EVENTS})")


def state() -> LiveState:
    s = LiveState(scenario=SCENARIO, target="env 3f2a91c0de (external target: kafka-cluster-blue.example.internal)")
    s.phase = "during"
    s.timeline = [{"label": "warmup 3s", "status": "done"}, {"label": "before 4s", "status": "done"}]
    s.timeline += [{"label": f"latency ingest->kafka-{i} @{i}s for 6s", "status": "planned"} for i in range(1, 6)]
    s.timeline += [{"label": "after >= 10s"}]
    s.probes = {f"probe_number_{i:02d}_with_a_long_name": ProbeStatus(None, "-") for i in range(14)}
    s.counts = {"sent": 0, "acked": 0, "errors": 0, "applied": 0, "lag": 0}
    s.window = {"window_s": 3, "p50_ms": 12.0, "p99_ms": 3410.0, "error_rate": 0.0, "ops": 0}
    s.budget = "errors <= 50%, p99 <= 8,000 ms, consumer lag <= 100,000 events, steady state restored in 60 s"
    return s


def main() -> None:
    s = state()
    tick = itertools.count()

    def update() -> None:  # what the runner's refresh does: counts, window, probes
        n = next(tick)
        s.counts.update(sent=n * 97, acked=n * 95, errors=n % 3, applied=n * 90, lag=n * 7)
        s.window.update(ops=n * 31, p99_ms=3000.0 + n)
        for j, name in enumerate(s.probes):
            s.probes[name] = ProbeStatus((n + j) % 4 != 0, f"{n + j} of {n + j + 1} fine", time.monotonic())

    view = LiveView(s, refresh_s=REFRESH_S, line_interval_s=0.5, update=update).start()
    for i in range(EVENTS):
        time.sleep(EVENT_EVERY_S)
        s.active = [f"latency ingest->kafka-{k} (active {i * EVENT_EVERY_S:.1f}s)" for k in range(1, i % 4 + 2)]
        s.timeline[2 + i % 5]["status"] = "active"
        view.event(event_text(i))
    s.outcome = "PASSED"
    view.stop()
    print(DONE, flush=True)


if __name__ == "__main__":
    main()
