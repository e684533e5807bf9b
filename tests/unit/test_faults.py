"""The pure parts of the fault library: validation messages, role parsing, rule planning, commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos.config import Settings
from chaos.env import Link
from chaos.faults import (
    ActiveController,
    AnyBroker,
    Bandwidth,
    DiskFull,
    Fault,
    HoldRowLocks,
    Isolate,
    Kill,
    Latency,
    LeaderOf,
    LimitData,
    Majority,
    Minority,
    NetEm,
    Node,
    Pause,
    Projector,
    Schedule,
    SecondFleet,
    Slicer,
    Step,
    TerminateBackends,
    Toxic,
    active_faults,
    heal_all,
    target,
)
from chaos.faults.partition import (
    netem_iptables_script,
    netem_tc_args,
    partition_script,
    plan_partition,
    remove_chains_script,
)


@dataclass
class FakeEnv:
    run_id: str = "unit"
    settings: Settings = field(default_factory=lambda: Settings(seed=3))
    deployment: Any = None
    nodes: tuple[str, ...] = ("kafka-1", "kafka-2", "kafka-3", "postgres", "toxiproxy")
    links: dict[str, Link] = field(default_factory=lambda: {
        n: Link(n, "", "") for n in ("grpc", "ingest-kafka-1", "ingest-kafka-2", "ingest-kafka-3", "projector-pg")})

    def node_names(self) -> list[str]:
        return list(self.nodes)


def env() -> Any:
    return FakeEnv()


# -- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("kafka-2", Node("kafka-2")), ("leader:4", LeaderOf(4)), ("controller", ActiveController()),
    ("broker", AnyBroker()), ("minority", Minority()), ("majority", Majority()), ("projector-2", Projector(2)),
])
def test_role_strings(spec: str, expected: object) -> None:
    assert target(spec) == expected
    assert str(expected) == spec  # what reports and progress lines show: the role, not the repr


def test_a_target_without_a_role_string_shows_its_repr() -> None:
    assert str(Minority(seed=3)) == "Minority(seed=3, include=None)"
    assert str(LeaderOf(1, topic="other")) == "LeaderOf(partition=1, topic='other')"
    assert Kill(Projector(1)).params()["target"] == "projector-1"


def test_unknown_role_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown role 'leaders'; accepted: broker, brokers, controller, "
                                         r"leader:<partition>, minority, majority, projector"):
        target("leaders")
    with pytest.raises(ValueError, match="unknown role"):
        Pause("kafka-9")  # fails at construction, before any environment is touched


def test_roles_needing_a_pipeline_say_so() -> None:
    for t in (LeaderOf(0), Projector(), target("ingest")):
        with pytest.raises(ValueError, match="needs a deployed pipeline"):
            t.validate(env())


def test_unknown_node_lists_known_nodes() -> None:
    with pytest.raises(ValueError, match="unknown node 'kafka-7'; accepted: kafka-1, kafka-2, kafka-3, postgres"):
        Kill(Node("kafka-7")).validate(env())


def test_partition_out_of_range() -> None:
    e = env()
    e.deployment = object()
    with pytest.raises(ValueError, match=r"partition 9 out of range; accepted: 0\.\.5"):
        LeaderOf(9).validate(e)


def test_minority_and_majority_are_seeded_and_sized() -> None:
    e = env()
    assert len(Minority().nodes(e)) == 1 and len(Majority().nodes(e)) == 2
    assert Minority(seed=1).nodes(e) == Minority(seed=1).nodes(e)
    assert Majority(include=Node("kafka-3")).nodes(e)[-1] == "kafka-3"


# -- toxics -----------------------------------------------------------------------------------------


def test_bad_toxics_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="accepted: latency, bandwidth, slow_close, timeout"):
        Toxic("grpc", "lag", {})
    with pytest.raises(ValueError, match=r"has no attribute.*accepted: rate"):
        Toxic("grpc", "bandwidth", {"speed": 5})
    with pytest.raises(ValueError, match="must be a non-negative integer"):
        Bandwidth("grpc", rate_kbps=-1)
    with pytest.raises(ValueError, match="toxicity 2 must be between 0 and 1"):
        Latency("grpc", 10, toxicity=2)
    with pytest.raises(ValueError, match="size_variation=5 must not exceed average_size=1"):
        Slicer("grpc", average_size=1, size_variation=5)
    with pytest.raises(ValueError, match="non-empty glob"):
        LimitData([], 10)


def test_unknown_link_names_the_links() -> None:
    with pytest.raises(ValueError, match="no link matches 'kafka-\\*'; links: grpc, ingest-kafka-1"):
        Latency("kafka-*", 10).validate(env())
    Latency(["ingest-kafka-*", "grpc"], 10).validate(env())


def test_two_toxics_of_one_type_have_their_own_names() -> None:
    assert Latency("grpc", 1).toxic_name != Latency("grpc", 1).toxic_name


# -- other faults' validation --------------------------------------------------------------------------


def test_netem_validation() -> None:
    with pytest.raises(ValueError, match="at least one of delay_ms"):
        NetEm("kafka-1")
    with pytest.raises(ValueError, match="loss_pct=120 must be a percentage"):
        NetEm("kafka-1", loss_pct=120)
    with pytest.raises(ValueError, match="backend 'ebpf' not accepted; accepted: auto, tc, nfqueue"):
        NetEm("kafka-1", delay_ms=1, backend="ebpf")
    with pytest.raises(ValueError, match=r"delay_ms=1\.5 must be a non-negative integer"):
        NetEm("kafka-1", delay_ms=1.5)  # type: ignore[arg-type]


def test_database_and_disk_validation() -> None:
    with pytest.raises(ValueError, match="needs a deployed pipeline"):
        HoldRowLocks().validate(env())
    with pytest.raises(ValueError, match="keys must be a list"):
        HoldRowLocks(keys="k1")
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        HoldRowLocks(table="key_state; drop")
    with pytest.raises(ValueError, match="interval_s=0 must be positive"):
        TerminateBackends(interval_s=0)
    with pytest.raises(ValueError, match="leave_bytes=-1"):
        DiskFull("kafka-1", leave_bytes=-1)
    with pytest.raises(ValueError, match="signal 'SIGSTOP' not accepted"):
        Kill("kafka-1", signal="SIGSTOP")
    with pytest.raises(ValueError, match="needs a deployed pipeline"):
        SecondFleet().validate(env())
    with pytest.raises(ValueError, match="replicas=0 must be an integer >= 1"):
        SecondFleet(replicas=0)
    with pytest.raises(ValueError, match="must be a plain identifier"):
        SecondFleet(fleet="b-1")


# -- rules and commands ------------------------------------------------------------------------------


def test_partition_plan_puts_two_way_cuts_on_one_side_and_one_way_on_the_receiver() -> None:
    plan = plan_partition([("a", "b", True), ("a", "c", True), ("d", "e", False)])
    assert plan == {"a": {"from": {"b", "c"}, "to": {"b", "c"}}, "e": {"from": {"d"}, "to": set()}}
    # a stopped node has no namespace: the rules go to the other side
    assert plan_partition([("a", "b", True)], down={"a"}) == {"b": {"from": {"a"}, "to": {"a"}}}


def test_partition_script() -> None:
    script = partition_script("CHAOS7", ["10.0.0.3", "10.0.0.2"], ["10.0.0.2"])
    assert script.splitlines() == [
        "set -e",
        "IPT=iptables; $IPT -w -S >/dev/null 2>&1 || IPT=iptables-legacy",
        "$IPT -w -N CHAOS7I", "$IPT -w -N CHAOS7O",
        "$IPT -w -A CHAOS7I -s 10.0.0.2 -j DROP", "$IPT -w -A CHAOS7I -s 10.0.0.3 -j DROP",
        "$IPT -w -A CHAOS7O -d 10.0.0.2 -j DROP",
        "$IPT -w -I INPUT 1 -j CHAOS7I", "$IPT -w -I OUTPUT 1 -j CHAOS7O", 'echo "backend=$IPT"',
    ]


def test_heal_script_is_idempotent_in_both_backends() -> None:
    script = remove_chains_script("filter", [("INPUT", "CHAOS7I"), ("OUTPUT", "CHAOS7O")])
    assert script.startswith("for IPT in iptables iptables-legacy; do")
    assert "while $IPT -w -t filter -D INPUT -j CHAOS7I 2>/dev/null; do :; done" in script
    assert "$IPT -w -t filter -X CHAOS7O 2>/dev/null || true" in script
    assert script.rstrip().endswith("true")


def test_netem_commands() -> None:
    assert netem_tc_args(100, 10, 5, 0, 1.5) == ["netem", "delay", "100ms", "10ms", "loss", "5%", "corrupt", "1.5%"]
    assert netem_tc_args(0, 0, 0, 20, 0) == ["netem", "duplicate", "20%"]
    script = netem_iptables_script("CHAOS9", "eth0", 109, 50, ["10.0.0.2"])
    assert ("$IPT -w -t mangle -A CHAOS9 -o eth0 -d 10.0.0.2 -m statistic --mode random --probability 0.500000 "
            "-j TEE --gateway 10.0.0.2") in script
    assert "-A CHAOS9 -o eth0 -j NFQUEUE --queue-num 109 --queue-bypass" in script
    assert "NFQUEUE" not in netem_iptables_script("CHAOS9", "eth0", None, 50, ["10.0.0.2"])


# -- lifecycle -------------------------------------------------------------------------------------------


class Recorder(Fault):
    name = "recorder"

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.fail = fail

    def _inject(self, env: Any) -> None:
        self.calls.append("inject")
        if self.fail:
            raise RuntimeError("boom")

    def _heal(self, env: Any) -> None:
        self.calls.append("heal")


def test_heal_is_idempotent_and_runs_on_a_failed_inject() -> None:
    e = env()
    f = Recorder()
    with f.active(e):
        assert active_faults(e) == [f]
    f.heal(e)
    assert f.calls == ["inject", "heal"] and active_faults(e) == []
    broken = Recorder(fail=True)
    with pytest.raises(RuntimeError, match="boom"):
        broken.inject(e)
    assert broken.calls == ["inject", "heal"] and active_faults(e) == []


def test_safety_net_heals_what_is_left() -> None:
    e = env()
    a, b = Recorder(), Recorder()
    a.inject(e)
    b.inject(e)
    assert heal_all(e) == ["recorder", "recorder"]
    assert a.calls == b.calls == ["inject", "heal"] and active_faults(e) == []


def test_schedule_heals_everything_even_when_stopped_early() -> None:
    import threading

    e = env()
    first, second = Recorder(), Recorder()
    timeline = Schedule([Step(0, first, 0.05), Step(0.01, second, 10)]).run(e, stop=_set_after(threading, 0.2))
    assert first.calls == second.calls == ["inject", "heal"]
    assert [t["action"] for t in timeline] == ["inject", "inject", "heal", "heal"]
    with pytest.raises(ValueError, match="at_s and duration_s must be >= 0"):
        Step(-1, Recorder(), 1)
    isolate = Isolate("kafka-1")
    with pytest.raises(ValueError, match="only once"):
        Schedule([Step(0, isolate, 1), Step(1, isolate, 1)])


def test_schedule_zero_length_step_is_injected_before_it_is_healed() -> None:
    e = env()
    blip, later, next_ = Recorder(), Recorder(), Recorder()
    timeline = Schedule([Step(0, later, 0.02), Step(0.02, blip, 0), Step(0.02, next_, 0.01)]).run(e)
    assert blip.calls == later.calls == next_.calls == ["inject", "heal"]
    assert [t["action"] for t in timeline] == ["inject", "heal", "inject", "inject", "heal", "heal"]


def _set_after(threading: Any, s: float) -> Any:
    ev = threading.Event()
    threading.Timer(s, ev.set).start()
    return ev
