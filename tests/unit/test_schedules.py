"""chaos.schedules without containers: specs, recoverability rules, strategies, profiles, replay files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos import schedules as sch
from chaos.config import HYPOTHESIS_PROFILES, Settings
from chaos.env import Topology
from chaos.faults import Kill, Latency, Schedule, Split
from chaos.faults.catalogue import CATALOGUE
from chaos.schedules import Limits, PlannedStep, Planner, ReplayError, Shape
from system_under_test.adapter import PIPELINE

SHAPE = Shape.of(Topology(PIPELINE))  # the reference pipeline's links and nodes
# built from specs, not generated (kill_in_transaction needs a transactional stage, which a schedule cannot know of)
GENERATED = set(CATALOGUE) - {"toxic", "partition", "second_fleet", "kill_in_transaction"}
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- specs ---------------------------------------------------------------------------------------

@FAST
@given(sch.fault_specs(SHAPE))
def test_every_generated_spec_is_plain_json_and_builds(spec):
    assert json.loads(json.dumps(spec)) == spec
    fault = sch.build_fault(spec)
    assert fault.name == spec["fault"]
    assert sch.build_fault(json.loads(json.dumps(spec))).describe() == fault.describe()


def test_specs_cover_the_catalogue():
    seen: set[str] = set()

    @settings(max_examples=600, deadline=None, database=None)
    @given(sch.fault_specs(SHAPE))
    def collect(spec):
        seen.add(spec["fault"])

    collect()
    assert seen == GENERATED


def test_build_fault_maps_json_names_to_the_constructor():
    f = sch.build_fault({"fault": "kill", "target": "kafka-2", "signal": "SIGTERM"})
    assert isinstance(f, Kill) and f.params()["signal"] == "SIGTERM"
    assert isinstance(sch.build_fault({"fault": "latency", "links": "client-ingest", "latency_ms": 5}), Latency)
    assert isinstance(sch.build_fault({"fault": "split", "side": "kafka-1"}), Split)
    assert sch.build_fault({"fault": "limit_data", "links": "client-ingest", "bytes": 10}).params()


@pytest.mark.parametrize(("spec", "message"), [
    ({"fault": "explode"}, "'explode' is not a fault; accepted: bandwidth"),
    ({"fault": "kill", "target": "kafka-1", "colour": "red"}, "fault kill has no parameter 'colour'; accepted: target"),
    ({"fault": "kill"}, "fault kill needs target"),
    ({"fault": "kill", "target": "kafka-9"}, "unknown role 'kafka-9'"),
    ({"fault": "netem", "target": "kafka-1"}, "netem needs at least one of"),
    ("kill", "a fault spec is a table"),
])
def test_bad_specs_are_rejected_with_one_message(spec, message):
    with pytest.raises(ValueError, match=None) as err:
        sch.build_fault(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


# --- recoverability --------------------------------------------------------------------------------

def test_minority_rule():
    p = Planner(SHAPE, Limits(max_brokers_impaired=1, max_active=5, horizon_s=100))
    p.inject({"fault": "kill", "target": "kafka-1"})
    assert "impair 2 broker(s)" in (p.why_not({"fault": "pause", "target": "kafka-2"}) or "")
    assert "same node" in (p.why_not({"fault": "pause", "target": "kafka-1"}) or "")
    assert p.why_not({"fault": "pause", "target": "controller"})  # a role may be any broker
    assert p.why_not({"fault": "bridge", "bridge": "kafka-3"})  # whole cluster
    assert p.why_not({"fault": "kill", "target": "projector-1"}) is None
    assert p.why_not({"fault": "link_down", "links": "ingest-kafka-*"}) is None
    two = Planner(SHAPE, Limits(max_brokers_impaired=2, max_active=5, horizon_s=100))
    two.inject({"fault": "kill", "target": "kafka-1"})
    assert two.why_not({"fault": "pause", "target": "kafka-2"}) is None
    assert two.broker_budget_left() == 1


def test_links_down_exclude_other_faults_on_them_but_toxics_stack():
    p = Planner(SHAPE, Limits(max_active=5, horizon_s=100))
    p.inject({"fault": "latency", "links": "ingest-kafka-*", "latency_ms": 10})
    assert p.why_not({"fault": "bandwidth", "links": "ingest-kafka-2", "rate_kbps": 5}) is None
    assert p.why_not({"fault": "link_down", "links": "ingest-kafka-2"})
    assert p.why_not({"fault": "link_down", "links": "projector-postgres"}) is None


def test_postgres_down_excludes_host_sessions():
    p = Planner(SHAPE, Limits(max_active=5, horizon_s=100))
    p.inject({"fault": "pause", "target": "postgres"})
    assert p.why_not({"fault": "hold_row_locks", "write": True})
    assert p.why_not({"fault": "terminate_backends"})


def _impaired_at_every_inject(steps: list[PlannedStep], budget: int) -> None:
    for i, s in enumerate(steps):
        active = [t.spec for j, t in enumerate(steps)
                  if (t.at_s, j) <= (s.at_s, i) and t.at_s + (t.duration_s or 0) > s.at_s]
        claims = [sch.claim_of(a, SHAPE) for a in active]
        assert sch.brokers_impaired(claims, budget) <= budget, sch.format_steps(steps)
        nodes = [n for c in claims for n in c.nodes]
        assert len(nodes) == len(set(nodes)), sch.format_steps(steps)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3).flatmap(lambda b: st.tuples(st.just(b), sch.schedules(SHAPE, Limits(max_brokers_impaired=b)))))
def test_every_generated_schedule_keeps_the_rules(budget_and_steps):
    budget, steps = budget_and_steps
    sch.check_steps(steps, Limits(max_brokers_impaired=budget), SHAPE)
    _impaired_at_every_inject(steps, budget)
    for s in steps:
        assert s.duration_s is not None and s.duration_s >= sch.MIN_STEP_S
    assert isinstance(sch.to_schedule(steps), Schedule)


@FAST
@given(sch.schedules(SHAPE, Limits(), overlap=False))
def test_schedules_without_overlap_never_overlap(steps):
    ends = [(s.at_s, s.at_s + (s.duration_s or 0)) for s in steps]
    for (_a0, a1), (b0, _b1) in itertools.pairwise(ends):
        assert b0 >= a1


def test_check_steps_rejects_a_majority_down():
    steps = [PlannedStep(0, 5, {"fault": "kill", "target": "kafka-1"}),
             PlannedStep(2, 5, {"fault": "stop", "target": "kafka-2"})]
    with pytest.raises(ValueError, match=r"step 1 at 2 s: stop kafka-2 would impair 2 broker"):
        sch.check_steps(steps, Limits(), SHAPE)
    sch.check_steps(steps, Limits(max_brokers_impaired=2), SHAPE)
    sch.check_steps([steps[0], PlannedStep(5, 5, steps[1].spec)], Limits(), SHAPE)  # healed first: fine


# --- the state machine ---------------------------------------------------------------------------

def _run(profile: str, seed: int) -> list[tuple[int, list[dict]]]:
    runs: list[tuple[int, list[dict]]] = []
    p = sch.PROFILES[profile]
    machine = sch.schedule_machine(p.limits, lambda steps, ws: runs.append((ws, [s.to_dict() for s in steps])), SHAPE)
    sch.run_machine(machine, p, seed, 10)
    return runs


def test_the_ci_profile_generates_the_same_schedules_every_time():
    seed = sch.choose_seed(sch.PROFILES["ci"])
    assert seed == sch.CI_SEED
    first = _run("ci", seed)
    assert len(first) == sch.PROFILES["ci"].max_examples
    assert first == _run("ci", seed)


def test_a_seed_fixes_the_nightly_schedules_and_every_one_keeps_the_rules():
    a = _run("nightly", 12345)
    assert a == _run("nightly", 12345)
    assert a != _run("nightly", 54321)
    assert len(a) == sch.PROFILES["nightly"].max_examples
    assert all(steps for _, steps in a)  # every schedule has at least one fault
    for _, steps in a:
        planned = [PlannedStep(**d) for d in steps]
        sch.check_steps(planned, sch.PROFILES["nightly"].limits, SHAPE)


def _touches_postgres(spec: dict) -> bool:
    return (spec["fault"] in ("terminate_backends", "hold_row_locks") or spec.get("target") == "postgres"
            or spec.get("links") == "projector-postgres")


def test_a_failing_schedule_is_shrunk_to_the_fault_that_matters():
    """Without being told which fault matters, the machine finds a failing schedule and shrinks it to one
    fault on the database (a stand-in for a projector that loses events when its database fails)."""
    tried: list[list[dict]] = []

    def execute(steps: list[PlannedStep], ws: int) -> None:
        tried.append([s.spec for s in steps])
        if any(_touches_postgres(s.spec) for s in steps):
            raise AssertionError("lost")

    p = sch.PROFILES["nightly"]
    with pytest.raises(AssertionError, match="lost"):
        # shrinking bounded generously: a bound that a busy machine can reach would make this test flaky
        sch.run_machine(sch.schedule_machine(p.limits, execute, SHAPE), p, 777, 600)
    assert len(tried[-1]) == 1 and _touches_postgres(tried[-1][0]), tried[-1]


# --- profiles --------------------------------------------------------------------------------------

def test_profiles_are_registered_with_deadlines_off():
    assert set(sch.PROFILES) == set(HYPOTHESIS_PROFILES)
    for p in sch.PROFILES.values():
        hs = settings.get_profile(p.hypothesis_name)
        assert hs.deadline is None and hs.database is None
        assert hs.max_examples == p.max_examples
    assert settings.get_profile("chaos-ci").derandomize
    assert not settings.get_profile("chaos-nightly").derandomize
    assert sch.PROFILES["nightly"].max_examples > sch.PROFILES["ci"].max_examples


def test_profile_chosen_by_setting_or_ci_variable():
    assert sch.profile_named("nightly").name == "nightly"
    assert sch.profile_named("", {"CI": "true"}).name == "ci"
    assert sch.profile_named("", {}).name == "dev"
    with pytest.raises(ValueError, match="accepted: dev, ci, nightly"):
        sch.profile_named("weekly")
    assert Settings.from_env({"CHAOS_HYPOTHESIS_PROFILE": "nightly"}).hypothesis_profile == "nightly"
    with pytest.raises(ValueError, match="CHAOS_HYPOTHESIS_PROFILE"):
        Settings.from_env({"CHAOS_HYPOTHESIS_PROFILE": "weekly"})


def test_shrink_time_bound_patches_and_restores():
    from hypothesis.internal.conjecture import engine

    before = engine.MAX_SHRINKING_SECONDS
    with sch.shrink_time_bound(12):
        assert engine.MAX_SHRINKING_SECONDS == 12
    assert before == engine.MAX_SHRINKING_SECONDS


# --- replay files ----------------------------------------------------------------------------------

def _replay() -> sch.Replay:
    return sch.Replay(steps=[PlannedStep(0, 4, {"fault": "link_down", "links": "projector-postgres"}),
                             PlannedStep(2, 3.5, {"fault": "kill", "target": "projector-1"})],
                      seed=99, profile="nightly", defects=("commit_before_write",), workload_seed=5, example=3,
                      phases={"warmup_s": 3, "before_s": 3, "after_s": 5}, outcome={"ok": False, "failed": ["lost"]})


def test_replay_file_round_trip(tmp_path: Path):
    path = sch.write_replay(_replay(), tmp_path / "replay.json")
    back = sch.load_replay(path, SHAPE)
    assert back == _replay() or sch.replay_document(back) == sch.replay_document(_replay())
    assert [s.to_dict() for s in back.steps] == [s.to_dict() for s in _replay().steps]
    assert back.defects == ("commit_before_write",) and back.seed == 99 and back.workload_seed == 5


def _doc(**changes):
    doc = sch.replay_document(_replay())
    doc.update(changes)
    return doc


@pytest.mark.parametrize(("doc", "message"), [
    ([], "not a replay file"),
    (_doc(format="other"), "not a replay file"),
    (_doc(format_version=2), "format_version 2 is newer than this suite reads (1)"),
    (_doc(format_version="1"), "format_version '1' is not a positive integer"),
    (_doc(steps={}), "\"steps\" must be a list"),
    (_doc(steps=[{"at_s": 0}]), "step 0 must be an object with at_s, duration_s and spec only"),
    (_doc(steps=[{"at_s": 0, "duration_s": 1, "spec": {"fault": "explode"}}]), "step 0: 'explode' is not a fault"),
    (_doc(steps=[{"at_s": -1, "duration_s": 1, "spec": {"fault": "pause", "target": "ingest"}}]), "at_s=-1"),
    (_doc(steps=[{"at_s": 0, "duration_s": 0, "spec": {"fault": "pause", "target": "ingest"}}]), "duration_s=0"),
    (_doc(steps=[{"at_s": 0, "duration_s": 5, "spec": {"fault": "kill", "target": "kafka-1"}},
                 {"at_s": 1, "duration_s": 5, "spec": {"fault": "kill", "target": "kafka-3"}}]),
     "step 1 at 1 s: kill kafka-3 would impair 2 broker(s) at once"),
    (_doc(defects="acks1"), "\"defects\" must be a list"),
    (_doc(seed="x"), "seed='x' must be an integer"),
    (_doc(max_brokers_impaired=7), "max_brokers_impaired=7"),
])
def test_bad_replay_files_are_rejected_with_one_clear_message(tmp_path: Path, doc, message):
    path = tmp_path / "replay.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ReplayError) as err:
        sch.load_replay(path, SHAPE)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_unreadable_replay_files(tmp_path: Path):
    with pytest.raises(ReplayError, match="no such replay file"):
        sch.load_replay(tmp_path / "missing.json", SHAPE)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ReplayError, match="not readable JSON"):
        sch.load_replay(tmp_path / "bad.json", SHAPE)


def test_the_schedules_can_generate_the_compound_broker_loss():
    """Jepsen's classic Kafka loss (followers cut from the leader until the ISR is the leader alone, then the
    leader lost) is one step of the catalogue, so a random schedule can hold it, within the recoverability
    rules (it impairs one broker)."""
    from hypothesis import find

    steps = find(sch.schedules(SHAPE, Limits()),
                 lambda st: any(s.spec["fault"] == "leader_loss_after_isr_shrink" for s in st),
                 settings=settings(max_examples=2000, database=None))
    sch.check_steps(steps, Limits(), SHAPE)
    (step,) = [s for s in steps if s.spec["fault"] == "leader_loss_after_isr_shrink"]
    assert sch.build_fault(step.spec).name == "leader_loss_after_isr_shrink"
    claim = sch.claim_of(step.spec, SHAPE)
    assert claim.wildcard_brokers == 1 and sch.admissible([step.spec], {"fault": "kill", "target": "broker"},
                                                          Limits(), SHAPE) is not None
