"""The game-day command line, end to end, against a real local environment (subprocesses only).

One environment for the module: ``gameday up`` (whose process exits, so the environment must survive
other runs' orphan sweeps), two catalogue scenarios, a scenario aborted by a breached budget (healed,
exit 3), Ctrl-C during a fault (healed, nothing left, exit 130), ``gameday heal`` from another terminal,
refusals before anything is done (a malformed scenario, a target outside the allow-list), the external
path (the local environment described in its own file, from ``status --json`` only: docker command
templates, its published ports, its Toxiproxy API), and ``gameday down`` leaving nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from chaos.env import LABEL_RUN, sweep, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CMD_TIMEOUT_S = 240  # one command: up (env start + deploy) or a scenario run, on a busy 2-core machine
FAULT_ACTIVE_TIMEOUT_S = 60  # a fresh-less scenario reaches its injection after warm-up + before + hypothesis
EXIT_TIMEOUT_S = 120  # heal, rollbacks and report after an interruption

# Short scenarios on the pipeline already deployed (fresh = false): no deployment, short phases.
QUICK = """
[pipeline]
fresh = false
[load]
rate = 100
[phases]
warmup_s = 1
before_s = 2
after_s = 2
[[steady_state.probe]]
type = "error_rate"
max = 0.05
window_s = 2
during = "skip"
"""
ABORT = """name = "entry-down-abort"
""" + QUICK + """
[[method]]
fault = "link_down"
links = "client->entry"
duration_s = 60
[budgets]
window_s = 1
max_error_rate = 0.2
"""
HOLD_PAUSE = """name = "hold-pause"
""" + QUICK + """
[[method]]
fault = "pause"
target = "kafka-2"
duration_s = 120
[[method]]
fault = "latency"
links = "ingest-kafka-*"
latency_ms = 50
duration_s = 120
"""
HOLD_TOXIC = """name = "hold-toxic"
""" + QUICK + """
[[method]]
fault = "latency"
links = "projector-postgres"
latency_ms = 20
duration_s = 120
"""
EXTERNAL_SCENARIO = """name = "external-kill"
""" + QUICK.replace("fresh = false", "") .replace("[pipeline]", "") + """
[[steady_state.probe]]
type = "full_isr"
[[method]]
fault = "kill"
target = "kafka-3"
duration_s = 4
[[method]]
fault = "latency"
links = "ingest-kafka-*"
latency_ms = 50
duration_s = 3
[[rollback]]
action = "wait_recovered"
"""


class GameDay:
    def __init__(self, reports: Path) -> None:
        self.reports = reports
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "CHAOS_REPORT_DIR": str(reports),
                    "CHAOS_GAMEDAY_LINE_INTERVAL_S": "1"}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "chaos.gameday", *args]

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(self.argv(*args), cwd=REPO, env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=CMD_TIMEOUT_S, check=False)
        print(f"$ gameday {' '.join(args)}  -> exit {proc.returncode} in {time.monotonic() - started:.1f} s")
        print(proc.stdout[-4000:], proc.stderr[-2000:])
        return proc

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*args), cwd=REPO, env=self.env, stdout=log.open("wb"),
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def status(self) -> dict[str, Any]:
        proc = self("status", "--json")
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    def journal(self) -> list[dict[str, Any]]:
        path = self.reports / "gameday" / "journal.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def run_id(self) -> str:
        return str(json.loads((self.reports / "gameday" / "state.json").read_text())["run_id"])


def assert_clean(st: dict[str, Any]) -> None:
    assert st["active_faults"] == [], st["active_faults"]
    assert all(n["status"] == "running" for n in st["nodes"].values()), st["nodes"]
    assert not [n for n, i in st["nodes"].items() if i["role"] == "helper" and n != "disks"], st["nodes"]


@pytest.fixture(scope="module")
def gd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GameDay]:
    g = GameDay(tmp_path_factory.mktemp("gameday"))
    up = g("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield g
    finally:
        if (g.reports / "gameday" / "state.json").exists():
            g("down")


def wait_journal(g: GameDay, proc: subprocess.Popen[bytes], log: Path, cond: Callable[[dict[str, Any]], bool],
                 what: str) -> None:
    def seen() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early ({proc.returncode}): {log.read_text()[-3000:]}")
        return any(cond(r) for r in g.journal())

    wait_until(seen, FAULT_ACTIVE_TIMEOUT_S, what, 0.2)


def test_up_keeps_the_environment_through_other_runs_sweeps(gd: GameDay) -> None:
    st = gd.status()
    assert st["target"] == "local" and st["pipeline"] and st["active_faults"] == []
    assert st["health"]["entry_serving"]["ok"] and st["health"]["full_isr"]["ok"], st["health"]
    # The process of `up` is gone: without the keep label this sweep (what every test session does at
    # start) would remove the environment.
    sweep(docker.from_env())
    assert gd.status()["nodes"] == st["nodes"]


@pytest.mark.parametrize("name", ["leader-kill", "postgres-outage"])
def test_run_catalogue_scenarios(gd: GameDay, name: str) -> None:
    proc = gd("run", name)
    assert proc.returncode == 0, proc.stdout[-4000:]
    out = proc.stdout
    assert "steady state before: OK" in out and "steady state after: OK" in out
    assert "inject " in out and "heal " in out and "everything healed, nothing left" in out
    assert "[PASS] lost:" in out and "[PASS] convergence:" in out and f"gameday {name}: PASSED" in out
    runs = [r for r in gd.journal() if r["scenario"] == name]
    assert [r["outcome"] for r in runs if r["action"] == "inject"] == ["started", "ok"]
    assert [r["outcome"] for r in runs if r["action"] == "end"] == ["passed"]
    folder = Path([r for r in runs if r["action"] == "end"][-1]["detail"]["report"])
    results = json.loads((folder / "results.json").read_text())
    assert results["ok"] and results["gameday"]["outcome"] == "passed" and results["faults"]
    assert (folder / "report.html").is_file() and (folder / "journal.jsonl").is_file()
    assert_clean(gd.status())


def test_run_an_experiment_of_the_catalogue(gd: GameDay) -> None:
    proc = gd("run", "experiment:steady_state")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "experiment steady_state: PASSED" in proc.stdout and "[chaos] experiment-steady_state" in proc.stdout
    assert_clean(gd.status())


def test_report_and_compare(gd: GameDay) -> None:
    rep = gd("report")
    assert rep.returncode == 0 and "leader-kill-" in rep.stdout and "index.html" in rep.stdout
    folders = sorted((gd.reports / gd.run_id()).glob("*/results.json"))
    cmp_ = gd("compare", str(folders[0].parent), str(folders[1].parent))
    assert cmp_.returncode in (0, 1) and "RESULT" in cmp_.stdout, cmp_.stderr


def test_breached_budget_aborts_heals_and_exits_non_zero(gd: GameDay, tmp_path: Path) -> None:
    sc = tmp_path / "abort.toml"
    sc.write_text(ABORT)
    started = time.monotonic()
    proc = gd("run", str(sc))
    assert proc.returncode == 3, proc.stdout[-3000:]
    assert time.monotonic() - started < 60, "the fault was held for its whole duration instead of aborting"
    out = proc.stdout
    assert "ABORTED: budget breached: error rate" in out and "healing everything now" in out
    assert "heal link_down client->entry" in out and "everything healed, nothing left" in out
    end = [r for r in gd.journal() if r["scenario"] == "entry-down-abort" and r["action"] in ("abort", "end")]
    assert end[0]["action"] == "abort" and "budget breached" in end[0]["detail"]["reason"]
    assert end[-1]["outcome"] == "aborted" and end[-1]["detail"]["exit"] == 3
    assert_clean(gd.status())


def test_ctrl_c_during_a_fault_heals_everything(gd: GameDay, tmp_path: Path) -> None:
    sc = tmp_path / "hold.toml"
    sc.write_text(HOLD_PAUSE)
    log = tmp_path / "run.log"
    proc = gd.popen("run", str(sc), log=log)
    try:
        wait_journal(gd, proc, log, lambda r: r["scenario"] == "hold-pause" and r["action"] == "inject"
                     and r["outcome"] == "ok" and "latency" in (r["step"] or ""), "both faults injected")
        st = gd.status()
        assert st["nodes"]["kafka-2"]["status"] == "paused" and st["running"]["scenario"] == "hold-pause"
        assert any("toxic latency" in f for f in st["active_faults"]), st["active_faults"]
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    out = log.read_text()
    assert rc == 130, out[-3000:]
    assert "INTERRUPTED" in out and "heal pause kafka-2" in out and "everything healed, nothing left" in out
    st = gd.status()
    assert_clean(st)
    assert st["running"] is None


def test_heal_from_another_terminal(gd: GameDay, tmp_path: Path) -> None:
    sc = tmp_path / "toxic.toml"
    sc.write_text(HOLD_TOXIC)
    log = tmp_path / "run.log"
    proc = gd.popen("run", str(sc), log=log)
    try:
        wait_journal(gd, proc, log, lambda r: r["scenario"] == "hold-toxic" and r["action"] == "inject"
                     and r["outcome"] == "ok", "the toxic injected")
        heal = gd("heal")
        assert heal.returncode == 0 and "no fault left" in heal.stdout, heal.stdout + heal.stderr
        assert proc.wait(timeout=EXIT_TIMEOUT_S) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert_clean(gd.status())


def test_malformed_scenario_is_refused_before_anything(gd: GameDay, tmp_path: Path) -> None:
    before = gd.status()
    sc = tmp_path / "bad.toml"
    sc.write_text('[[method]]\nfault = "latency"\nlinks = "ingest-kafka-*"\nlatency_ms = "lots"\nduration_s = 5\n')
    proc = gd("run", str(sc))
    assert proc.returncode == 2 and "refused" in proc.stderr and "latency" in proc.stderr
    sc.write_text('[[method]]\nfault = "latency"\nlinks = "ingest-kafak-*"\nlatency_ms = 5\nduration_s = 5\n')
    proc = gd("run", str(sc))
    assert proc.returncode == 2 and "no link matches 'ingest-kafak-*'" in proc.stderr
    after = gd.status()
    assert after["pipeline"] == before["pipeline"] and after["active_faults"] == []  # not even a deployment


def external_file(st: dict[str, Any], allow: list[str]) -> str:
    e = st["endpoints"]
    nodes = "\n".join(f'{n} = {{ container = "{i["container"]}" }}' for n, i in st["nodes"].items()
                      if i["role"] != "helper")
    return f"""
name = "local-as-external"
[endpoints]
grpc = "{e['entry']}"
kafka_bootstrap = "{e['kafka_bootstrap']}"
toxiproxy_api = "{e['toxiproxy_api']}"
[pipeline]
topic = "{st['pipeline']['topics']['events']}"
group = "{st['pipeline']['groups']['projector']}"
[toxiproxy]
links = {json.dumps(st['links'])}
[nodes]
{nodes}
[commands]
kill = "docker kill --signal {{signal}} {{container}}"
stop = "docker stop --time {{timeout}} {{container}}"
start = "docker start {{container}}"
pause = "docker pause {{container}}"
unpause = "docker unpause {{container}}"
status = "docker inspect --format {{{{.State.Status}}}} {{container}}"
[safety]
allow = {json.dumps(allow)}
"""


def test_external_target_described_in_its_own_file(gd: GameDay, tmp_path: Path) -> None:
    st = gd.status()
    target = tmp_path / "local-as-external.toml"
    target.write_text(external_file(st, ["kafka-3", "ingest-kafka-*"]))
    sc = tmp_path / "external.toml"
    sc.write_text(EXTERNAL_SCENARIO)
    # outside the allow-list: refused before anything (no confirmation asked, no command run)
    bad = tmp_path / "bad.toml"
    bad.write_text(EXTERNAL_SCENARIO.replace('target = "kafka-3"', 'target = "postgres"'))
    proc = gd("run", str(bad), "--target", str(target), "--yes")
    assert proc.returncode == 2 and "not in the allow-list: postgres" in proc.stderr
    # no typed yes: nothing done
    proc = gd("run", str(sc), "--target", str(target), stdin="")
    assert proc.returncode == 2 and "not confirmed" in proc.stderr
    dry = gd("run", str(sc), "--target", str(target), "--dry-run")
    container = st["nodes"]["kafka-3"]["container"]
    assert dry.returncode == 0 and f"would run `docker kill --signal SIGKILL {container}`" in dry.stdout
    assert not [r for r in gd.journal() if (r.get("detail") or {}).get("argv")], "a command ran before the real run"
    ext = gd("status", "--target", str(target), "--json")
    assert ext.returncode == 0 and json.loads(ext.stdout)["nodes"]["postgres"]["status"] == "not allowed"
    run = gd("run", str(sc), "--target", str(target), "--yes")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "inject kill kafka-3" in run.stdout and "steady state after: OK" in run.stdout
    argvs = [r["detail"]["argv"] for r in gd.journal() if (r.get("detail") or {}).get("argv")]
    assert ["docker", "kill", "--signal", "SIGKILL", container] in argvs and ["docker", "start", container] in argvs
    assert all(a[-1] == container for a in argvs), argvs  # only the one allowed node was ever touched
    assert_clean(gd.status())


def test_down_leaves_nothing(gd: GameDay) -> None:
    run_id = gd.run_id()
    proc = gd("down")
    assert proc.returncode == 0 and "nothing left" in proc.stdout
    client = docker.from_env()
    flt = {"label": f"{LABEL_RUN}={run_id}"}
    assert not client.containers.list(all=True, filters=flt)
    assert not client.networks.list(filters=flt) and not client.volumes.list(filters=flt)
    assert not (gd.reports / "gameday" / "state.json").exists()
    assert gd("status").returncode == 2
    assert [r["outcome"] for r in gd.journal() if r["action"] == "down"] == ["ok"]
