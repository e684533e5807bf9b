"""The pure parts of the fault library: validation messages, role parsing, rule planning, commands."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos.adapter import Database
from chaos.config import Settings
from chaos.env import Deployment, Link, Topology
from chaos.faults import (
    ActiveController,
    AnyBroker,
    Bandwidth,
    CompetingWriter,
    DiskFull,
    Fault,
    HoldRowLocks,
    Isolate,
    Kill,
    KillInTransaction,
    Latency,
    LeaderOf,
    LimitData,
    Majority,
    Minority,
    NetEm,
    Node,
    Pause,
    Schedule,
    SecondFleet,
    Service,
    Services,
    Slicer,
    Step,
    TerminateBackends,
    Toxic,
    active_faults,
    heal_all,
    links_matching,
    target,
)
from chaos.faults.partition import (
    netem_iptables_script,
    netem_tc_args,
    partition_script,
    plan_partition,
    remove_chains_script,
)
from system_under_test.adapter import PIPELINE


@dataclass
class FakeEnv:
    """What the targets read of an environment, with the reference pipeline's topology; ``deployed`` makes
    its service nodes exist (no engine, no containers)."""

    run_id: str = "unit"
    settings: Settings = field(default_factory=lambda: Settings(seed=3))
    deployment: Any = None
    topology: Topology = field(default_factory=lambda: Topology(PIPELINE))

    @property
    def links(self) -> dict[str, Link]:
        return self.topology.links

    def node_names(self) -> list[str]:
        infra = ["kafka-1", "kafka-2", "kafka-3", "postgres", "toxiproxy"]
        return infra + (self.topology.service_nodes() if self.deployment is not None else [])

    def service_nodes(self, service: str) -> list[str]:
        return self.topology.nodes_of(service) if self.deployment is not None else []


def env(deployed: bool = False) -> Any:
    e = FakeEnv()
    if deployed:
        e.deployment = Deployment(name="unit", tag="unit_1", topics={"events": "events.unit_1"}, groups={},
                                  schema="exp_unit_1", defects=(), pipeline=PIPELINE)
    return e


# -- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("kafka-2", Node("kafka-2")), ("leader:4", LeaderOf(4)), ("controller", ActiveController()),
    ("broker", AnyBroker()), ("minority", Minority()), ("majority", Majority()),
    ("projector-2", Service("projector", 2)), ("sink", Service("sink")), ("all:sink", Services("sink")),
    ("leader:orders.priced:1", LeaderOf(1, "orders.priced")),
])
def test_role_strings(spec: str, expected: object) -> None:
    assert target(spec) == expected
    assert str(expected) == spec  # what reports and progress lines show: the role, not the repr


def test_a_target_without_a_role_string_shows_its_repr() -> None:
    assert str(Minority(seed=3)) == "Minority(seed=3, include=None)"
    assert Kill(Service("projector", 1)).params()["target"] == "projector-1"


def test_unknown_roles_are_refused_before_anything_is_touched() -> None:
    with pytest.raises(ValueError, match="unknown role 'kafka-9': the brokers are kafka-1, kafka-2 and kafka-3"):
        Pause("kafka-9")  # at construction
    with pytest.raises(ValueError, match="unknown role 'Leader!'"):
        target("Leader!")
    with pytest.raises(ValueError, match=r"no service or role 'leaders' in pipeline refpipe; services: ingest, "
                                         r"projector; roles: entry, sink"):
        Kill("leaders").validate(env(deployed=True))  # a service name is known only to the pipeline


def test_services_and_roles_resolve_to_replicas() -> None:
    e = env(deployed=True)
    assert Service("sink", 2).nodes(e) == ["projector-2"]
    assert Service("entry").nodes(e) == ["ingest"]
    assert Services("sink").nodes(e) == ["projector-1", "projector-2"]
    assert Service("projector").nodes(e)[0] in ("projector-1", "projector-2")
    with pytest.raises(ValueError, match=r"sink replica 3 out of range; accepted: 1\.\.2"):
        Service("sink", 3).validate(e)


def test_roles_needing_a_pipeline_say_so() -> None:
    for t in (LeaderOf(0), Service("sink"), target("ingest")):
        with pytest.raises(ValueError, match="needs a deployed pipeline"):
            t.validate(env())


def test_unknown_node_lists_known_nodes() -> None:
    with pytest.raises(ValueError, match="unknown node 'kafka-7'; accepted: kafka-1, kafka-2, kafka-3, postgres"):
        Kill(Node("kafka-7")).validate(env())


def test_partition_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"partition 9 out of range; accepted: 0\.\.5"):
        LeaderOf(9).validate(env(deployed=True))


def test_minority_and_majority_are_seeded_and_sized() -> None:
    e = env()
    assert len(Minority().nodes(e)) == 1 and len(Majority().nodes(e)) == 2
    assert Minority(seed=1).nodes(e) == Minority(seed=1).nodes(e)
    assert Majority(include=Node("kafka-3")).nodes(e)[-1] == "kafka-3"


def test_links_by_glob_and_by_role() -> None:
    e = env()
    assert links_matching(e, "sink->postgres") == ["projector-postgres"]
    assert links_matching(e, "entry->kafka") == ["ingest-kafka-1", "ingest-kafka-2", "ingest-kafka-3"]
    assert links_matching(e, "client->entry") == ["client-ingest"]
    assert links_matching(e, ["projector-kafka-2", "ingest->kafka-3"]) == ["ingest-kafka-3", "projector-kafka-2"]
    with pytest.raises(ValueError, match="no link matches 'sink->entry'"):
        links_matching(e, "sink->entry")


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
    with pytest.raises(ValueError, match="non-empty pattern"):
        LimitData([], 10)


def test_unknown_link_names_the_links() -> None:
    with pytest.raises(ValueError, match="no link matches 'kafka-\\*'; links: client-ingest, ingest-kafka-1"):
        Latency("kafka-*", 10).validate(env())
    Latency(["ingest-kafka-*", "client-ingest"], 10).validate(env())


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


def test_kill_in_transaction_validation() -> None:
    with pytest.raises(ValueError, match="transactional_id must be a glob"):
        KillInTransaction("projector", transactional_id="")
    with pytest.raises(ValueError, match=r"unknown placeholder; accepted: \{deployment\}"):
        KillInTransaction("projector", transactional_id="{service}-*").validate(env(deployed=True))
    with pytest.raises(ValueError, match="needs a deployed pipeline"):
        KillInTransaction("projector").validate(env())
    fault = KillInTransaction("projector", transactional_id="pricer-{deployment}-*")
    fault.validate(env(deployed=True))
    assert fault._pattern(env(deployed=True)) == "pricer-unit_1-*"
    assert fault.params() == {"target": "projector", "signal": "SIGKILL", "transactional_id": "pricer-{deployment}-*"}


def test_database_and_disk_validation() -> None:
    with pytest.raises(ValueError, match="needs a deployed pipeline"):
        HoldRowLocks().validate(env())
    locks = HoldRowLocks()
    locks.validate(env(deployed=True))
    assert (locks.table, locks.key_column, locks.version_column) == ("key_state", "key", "version")
    bare = env(deployed=True)
    bare.deployment.pipeline = dataclasses.replace(PIPELINE, database=Database())
    with pytest.raises(ValueError, match="names no contended table"):
        HoldRowLocks().validate(bare)
    with pytest.raises(ValueError, match="keys must be a list"):
        HoldRowLocks(keys="k1")
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        HoldRowLocks(table="key_state; drop")
    with pytest.raises(ValueError, match="interval_s=0 must be positive"):
        TerminateBackends(interval_s=0)
    writer = CompetingWriter()
    writer.validate(env(deployed=True))
    assert (writer.table, writer.key_column, writer.value_column, writer.version_column) == (
        "key_state", "key", "total", "version")
    no_value = env(deployed=True)
    no_value.deployment.pipeline = dataclasses.replace(PIPELINE, database=Database(contended_table="key_state"))
    with pytest.raises(ValueError, match=r"names no value column \(Database\(value_column=...\)\)"):
        CompetingWriter().validate(no_value)
    with pytest.raises(ValueError, match="rate=0 must be positive"):
        CompetingWriter(rate=0)
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        CompetingWriter(value_column="total = 0 --")
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


def test_a_partition_of_one_port_drops_only_that_tcp_port_both_ways() -> None:
    script = partition_script("CHAOS8", ["10.0.0.3"], ["10.0.0.3"], port=9092)
    assert "$IPT -w -A CHAOS8I -s 10.0.0.3 -p tcp --dport 9092 -j DROP" in script
    assert "$IPT -w -A CHAOS8I -s 10.0.0.3 -p tcp --sport 9092 -j DROP" in script
    assert "$IPT -w -A CHAOS8O -d 10.0.0.3 -p tcp --dport 9092 -j DROP" in script
    assert "$IPT -w -A CHAOS8O -d 10.0.0.3 -p tcp --sport 9092 -j DROP" in script
    assert "-s 10.0.0.3 -j DROP" not in script
