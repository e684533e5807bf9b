"""Game-day scenario files: the catalogue parses, and every malformed scenario gets one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.faults import Kill, LeaderOf, Pause
from chaos.gameday import scenario as S

GOOD = """
name = "demo"
[load]
rate = 50
[phases]
warmup_s = 1
before_s = 2
after_s = 3
[[steady_state.probe]]
type = "entry_serving"
during = "abort"
[[steady_state.probe]]
type = "error_rate"
max = 0.05
[[method]]
fault = "kill"
target = "leader:0"
at_s = 1
duration_s = 4
[[method]]
fault = "latency"
links = "ingest-kafka-*"
latency_ms = 100
duration_s = 2
[budgets]
window_s = 2
max_error_rate = 0.3
[budgets.phases.after]
max_error_rate = 0.1
[[rollback]]
action = "wait_recovered"
"""


def test_good_scenario_parses_into_faults_and_budgets() -> None:
    sc = S.parse_toml(GOOD, source="demo.toml")
    assert sc.name == "demo" and sc.load.rate == 50
    assert (sc.warmup_s, sc.before_s, sc.after_s) == (1, 2, 3)
    latency, kill = (s.fault for s in sc.method.steps)  # on the timeline: the latency at 0 s, the kill at 1 s
    assert isinstance(kill, Kill) and kill.target == LeaderOf(0)
    assert latency.name == "latency" and sc.method_s == 5
    assert sc.budgets.max_error_rate == 0.3 and sc.budgets.phases["after"].max_error_rate == 0.1
    assert [p.name for p in sc.probes] == ["entry_serving", "error_rate"]
    assert sc.rollbacks[0].action == "wait_recovered"
    plan = "\n".join(sc.describe())
    assert "at 1s for 4s: kill(target='leader:0')" in plan and "error rate <= 30%" in plan


def test_catalogue_scenarios_are_valid() -> None:
    cat = S.catalogue()
    assert {"leader-kill", "postgres-outage", "entry-kafka-latency", "paused-sink"} <= set(cat)
    for name in cat:
        sc = S.load(name)
        assert sc.method and sc.probes, name


def test_python_scenario_holds_fault_objects() -> None:
    sc = S.load("paused-sink")
    assert isinstance(sc.method.steps[0].fault, Pause)
    assert sc.rollbacks[0].nodes == ("all:sink",)
    assert sc.method.steps[0].describe() == "at 0s for 8s: pause(target='sink-1')"


@pytest.mark.parametrize(("text", "message"), [
    ("name = ", "not valid TOML"),
    ("nme = 'x'", "unknown key(s) 'nme'"),
    ("[[method]]\nfault = 'kil'\nduration_s = 1", "'kil' is not a fault; accepted:"),
    ("[[method]]\nfault = 'kill'\ntarget = 'kafka-7'\nduration_s = 1", "method[0]: fault kill: unknown role 'kafka-7'"),
    ("[[method]]\nfault = 'kill'\ntarget = 'kafka-1'", "method[0]: needs duration_s"),
    ("[[method]]\nfault = 'kill'\nduration_s = 1", "fault kill needs target"),
    ("[[method]]\nfault = 'latency'\nlinks = 'client-ingest'\nlatency_ms = 5\nspeed = 1\nduration_s = 1",
     "fault latency has no parameter 'speed'; accepted: links, latency_ms, jitter_ms, stream, toxicity"),
    ("[[method]]\nfault = 'latency'\nlinks = 'client-ingest'\nlatency_ms = -5\nduration_s = 1",
     "method[0]: fault latency:"),
    ("[[method]]\nfault = 'kill'\ntarget = 'kafka-1'\nduration_s = 'six'", "method[0].duration_s: must be a number"),
    ("[[method]]\nfault = 'kill'\ntarget = 'kafka-1'\nat_s = -1\nduration_s = 1", "method[0].at_s: must be >= 0"),
    ("[[steady_state.probe]]\ntype = 'error_rate'", "probe error_rate needs `max`"),
    ("[[steady_state.probe]]\ntype = 'vibes'", "'vibes' is not a probe; accepted: entry_serving"),
    ("[[steady_state.probe]]\ntype = 'full_isr'\nduring = 'panic'", "'panic' is not one of abort, watch, skip"),
    ("[[steady_state.probe]]\ntype = 'full_isr'\n[[steady_state.probe]]\ntype = 'full_isr'", "names must be unique"),
    ("[budgets]\nmax_error_rate = 20", "is a fraction between 0 and 1"),
    ("[budgets.phases.middle]\nmax_error_rate = 0.1", "phase must be one of before, during, after"),
    ("[load]\nrate = 0", "load: invalid load spec"),
    ("[load]\nrate = 'fast'", "load.rate: must be a number"),
    ("[[rollback]]\naction = 'pray'", "'pray' is not a rollback; accepted: wait_recovered"),
    ("[[rollback]]\naction = 'ensure_running'", "ensure_running needs `nodes`"),
    ("method = 3", "method: must be an array of tables"),
])
def test_malformed_scenarios_are_refused_with_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(S.ScenarioError) as info:
        S.parse_toml(text, name="bad", source="bad.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.toml: ")


def test_load_by_path_and_unknown_names(tmp_path: Path) -> None:
    p = tmp_path / "mine.toml"
    p.write_text(GOOD.replace('name = "demo"', ""))
    assert S.load(str(p)).name == "mine"
    with pytest.raises(S.ScenarioError, match="not in the catalogue"):
        S.load("no-such-scenario")
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(S.ScenarioError, match=r"a \.toml or a \.py file"):
        S.load(str(tmp_path / "x.yaml"))


def test_python_scenario_errors(tmp_path: Path) -> None:
    p = tmp_path / "broken.py"
    p.write_text("x = 1\n")
    with pytest.raises(S.ScenarioError, match="defines no `scenario`"):
        S.load(str(p))
    p.write_text("def scenario():\n    raise RuntimeError('boom')\n")
    with pytest.raises(S.ScenarioError, match="scenario\\(\\) failed: RuntimeError: boom"):
        S.load(str(p))
    p.write_text("scenario = {'method': [{'fault': 'kill', 'duration_s': 1}]}\n")
    with pytest.raises(S.ScenarioError, match="fault kill needs target"):
        S.load(str(p))
