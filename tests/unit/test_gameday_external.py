"""External targets: the file is validated, the allow-list refuses before anything is done, commands are
templated without a shell, and the command line's dry run and refusals touch nothing (no engine here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chaos.faults import Kill, Latency, LinkDown, Pause, Split
from chaos.gameday import cli, external
from chaos.gameday.external import CommandNode, ExternalError, ExternalTarget

TARGET = """
name = "staging"
[endpoints]
grpc = "127.0.0.1:1"
kafka_bootstrap = "127.0.0.1:2"
toxiproxy_api = "http://127.0.0.1:3"
[pipeline]
topic = "events"
group = "projector"
[toxiproxy]
links = ["grpc", "ingest-kafka-1", "ingest-kafka-2", "projector-pg"]
[nodes]
kafka-1 = { container = "k1" }
kafka-2 = { container = "k2" }
postgres = { container = "pg" }
[commands]
kill = "false -c 'print(1)' kill {signal} {container}"
stop = "docker stop --time {timeout} {container}"
start = "docker start {container}"
pause = "docker pause {container}"
unpause = "docker unpause {container}"
status = "docker inspect --format {{.State.Status}} {container}"
[safety]
allow = ["kafka-*", "ingest-kafka-*"]
"""


def target(text: str = TARGET) -> ExternalTarget:
    return external.parse(text, "t.toml")


def test_parse_and_templates() -> None:
    t = target()
    assert t.name == "staging" and t.links[0] == "grpc" and t.confirm
    assert t.command("kill", "kafka-2", signal="SIGKILL") == ["false", "-c", "print(1)", "kill", "SIGKILL", "k2"]
    # only known placeholders are replaced; Go template braces stay
    assert t.command("status", "kafka-1") == ["docker", "inspect", "--format", "{{.State.Status}}", "k1"]
    assert t.allowed("kafka-3") and t.allowed("ingest-kafka-2") and not t.allowed("postgres")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace('grpc = "127.0.0.1:1"', ""), "endpoints.grpc: required"),
    (lambda s: s.replace('grpc = "127.0.0.1:1"', 'grpc = "nowhere"'), "is not host:port"),
    (lambda s: s.replace('allow = ["kafka-*", "ingest-kafka-*"]', ""), "[safety] allow is required"),
    (lambda s: s.replace('unpause = "docker unpause {container}"', ""), "needs the command templates unpause"),
    (lambda s: s.replace("{container}\"\nstart", "{host}\"\nstart"), "uses {host} but nodes.kafka-1 does not define"),
    (lambda s: s.replace('toxiproxy_api = "http://127.0.0.1:3"', ""), "toxiproxy.links needs endpoints.toxiproxy_api"),
    (lambda s: s + "\n[extra]\n", "unknown key(s) 'extra'"),
    (lambda s: s.replace("[commands]", "[commands]\nreboot = 'x'"), "unknown command(s) reboot"),
])
def test_bad_target_files(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ExternalError) as info:
        external.parse(edit(TARGET), "t.toml")
    assert message in str(info.value)


def test_allow_list_counts_every_node_a_role_could_resolve_to() -> None:
    t = target()
    assert external.check_allowed([Kill("leader:0"), Latency("ingest-kafka-*", 100)], t) == [
        "ingest-kafka-1", "ingest-kafka-2", "kafka-1", "kafka-2"]
    with pytest.raises(ExternalError, match=r"not in the allow-list: postgres"):
        external.check_allowed([Pause("postgres")], t)
    with pytest.raises(ExternalError, match=r"not in the allow-list: grpc, projector-pg"):
        external.check_allowed([LinkDown(["grpc", "projector-pg"]), Kill("kafka-1")], t)
    narrow = external.parse(TARGET.replace('allow = ["kafka-*", "ingest-kafka-*"]', 'allow = ["kafka-2"]'), "t")
    with pytest.raises(ExternalError, match=r"not in the allow-list: kafka-1"):
        external.check_allowed([Kill("broker")], narrow)  # any broker may be chosen: all must be allowed
    with pytest.raises(ExternalError, match="needs the suite's own container engine"):
        external.check_allowed([Split()], t)
    with pytest.raises(ExternalError, match="cannot be resolved on an external target"):
        external.check_allowed([Kill("controller")], t)
    with pytest.raises(ExternalError, match="projector-1 names no node of the target file's"):
        external.check_allowed([Kill("projector-1")], target(TARGET.replace('allow = ["kafka-*"', 'allow = ["*"')))


def test_command_node_runs_templates_without_a_shell_and_refuses_outside_the_list(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    script = write(tmp_path, "record.py",
                   f"import sys\nopen({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    text = TARGET.replace("false -c 'print(1)' kill {signal} {container}",
                          f"{sys.executable} {script} {{signal}} {{container}}")
    t = external.parse(text, "t.toml")
    seen: list[tuple[list[str], int]] = []
    node = CommandNode(t, "kafka-2", 10, lambda argv, rc, out: seen.append((argv, rc)))
    node.kill(signal="SIGTERM")
    assert log.read_text() == "SIGTERM k2\n" and node.status == "exited" and seen[0][1] == 0
    with pytest.raises(PermissionError, match="not in the allow-list"):
        CommandNode(t, "postgres", 10).kill()


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


KILL_PG = """
name = "kill-postgres"
[[method]]
fault = "kill"
target = "postgres"
duration_s = 2
"""


def run_cli(tmp_path: Path, *args: str, stdin: str = "") -> tuple[int, str, str, list[dict]]:  # type: ignore[type-arg]
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = cli.main(["--report-dir", str(tmp_path / "reports"), *args])
    finally:
        sys.stdin = old_stdin
    jpath = tmp_path / "reports" / "gameday" / "journal.jsonl"
    journal = [json.loads(line) for line in jpath.read_text().splitlines()] if jpath.exists() else []
    return rc, out.getvalue(), err.getvalue(), journal


def test_cli_refuses_a_target_outside_the_allow_list_before_anything(tmp_path: Path) -> None:
    tfile = write(tmp_path, "t.toml", TARGET)
    sc = write(tmp_path, "kill-pg.toml", KILL_PG)
    rc, _, err, journal = run_cli(tmp_path, "run", str(sc), "--target", str(tfile), "--yes")
    assert rc == 2
    assert "refused: may not run on this target: not in the allow-list: postgres" in err
    assert [r["action"] for r in journal] == ["command", "refused"]
    assert journal[-1]["target"] == "external:staging" and journal[-1]["scenario"] == "kill-postgres"


def test_cli_refuses_a_malformed_scenario(tmp_path: Path) -> None:
    sc = write(tmp_path, "bad.toml", "[[method]]\nfault = 'kill'\ntarget = 'kafka-9'\nduration_s = 1\n")
    rc, _, err, journal = run_cli(tmp_path, "run", str(sc))
    assert rc == 2 and "unknown role 'kafka-9'" in err
    assert journal[-1]["action"] == "refused" and journal[-1]["detail"]["exit"] == 2


def test_cli_dry_run_prints_the_commands_it_would_run(tmp_path: Path) -> None:
    tfile = write(tmp_path, "t.toml", TARGET)
    sc = write(tmp_path, "kill.toml", KILL_PG.replace('"postgres"', '"kafka-2"').replace("kill-postgres", "k2"))
    rc, out, _, journal = run_cli(tmp_path, "run", str(sc), "--target", str(tfile), "--dry-run")
    assert rc == 0, out
    assert "DRY RUN: nothing will be started, injected or changed" in out
    assert "kill kafka-2: would run `false -c print(1) kill SIGKILL k2`, heal: `docker start k2`" in out
    assert "this scenario may touch: kafka-2" in out
    assert journal[-2]["action"] == "dry-run"
    # the dry run asked for no confirmation and ran nothing: no "command" record with an argv
    assert not any((r.get("detail") or {}).get("argv") for r in journal)


def test_cli_asks_for_a_typed_yes(tmp_path: Path) -> None:
    tfile = write(tmp_path, "t.toml", TARGET)
    sc = write(tmp_path, "kill.toml", KILL_PG.replace('"postgres"', '"kafka-2"'))
    rc, out, err, journal = run_cli(tmp_path, "run", str(sc), "--target", str(tfile), stdin="no\n")
    assert rc == 2 and "Type yes to go on" in out and "not confirmed" in err
    assert [r["outcome"] for r in journal if r["action"] == "confirm"] == ["refused"]


def test_cli_without_an_environment(tmp_path: Path) -> None:
    rc, out, _, _ = run_cli(tmp_path, "run", "leader-kill", "--dry-run")
    assert rc == 0 and "none is up now" in out
    rc, _, err, journal = run_cli(tmp_path, "status")
    assert rc == 2 and "no environment is up" in err
    assert [r["action"] for r in journal] == ["command", "dry-run", "command"], "status and list journal nothing"
    rc, out, _, journal = run_cli(tmp_path, "list")
    assert rc == 0 and "leader-kill" in out
    assert len(journal) == 3
