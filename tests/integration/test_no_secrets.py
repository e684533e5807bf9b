"""No secret reaches output, logs or artefacts.

Known secrets: the password in an external target file's ``postgres_dsn``, and the environment's own random
Postgres password (read from the Postgres container, the only place it is kept). Three runs, each scanned
whole (stdout, stderr and every file under its report folder: journal, state file, results.json, pages,
summaries, collected container logs):

1. ``gameday run --dry-run --target FILE`` (it used to print the whole target, DSN included);
2. ``gameday up``, ``status --json``, a real scenario run, ``down`` against the local environment;
3. a pytest session whose experiment fails its own check (so the container logs are collected too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from chaos.env import LABEL_ROLE, LABEL_RUN
from tests.integration.test_gameday_cli import GameDay

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TARGET_SECRET = "s3cret-TARGET-pw-4242"
INNER_TIMEOUT_S = 300

TARGET = f"""
name = "with-a-dsn"
[endpoints]
grpc = "127.0.0.1:1"
kafka_bootstrap = "127.0.0.1:2"
toxiproxy_api = "http://127.0.0.1:3"
postgres_dsn = "postgresql://app:{TARGET_SECRET}@127.0.0.1:5432/orders"
[pipeline]
topic = "events"
[toxiproxy]
links = ["client-ingest"]
[safety]
allow = ["client-ingest"]
"""
SCENARIO = """name = "short-latency"
[load]
rate = 100
[phases]
warmup_s = 1
before_s = 2
after_s = 2
[[method]]
fault = "latency"
links = "client->entry"
latency_ms = 20
duration_s = 2
"""


def scan(texts: list[str], root: Path, secrets: list[str]) -> list[str]:
    """Where any secret appears: in the texts, or in any file under ``root``."""
    found = [f"output #{i}" for i, t in enumerate(texts) for s in secrets if s in t]
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            found += [str(p) for s in secrets if s.encode() in data]
    return found


def postgres_password(run_id: str) -> str:
    client = docker.from_env()
    (pg,) = client.containers.list(filters={"label": [f"{LABEL_RUN}={run_id}", f"{LABEL_ROLE}=postgres"]})
    env = dict(e.split("=", 1) for e in pg.attrs["Config"]["Env"])
    return env["POSTGRES_PASSWORD"]


def test_a_dry_run_on_a_target_file_shows_no_password(tmp_path: Path) -> None:
    target = tmp_path / "target.toml"
    target.write_text(TARGET)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO.replace('links = "client->entry"', 'links = "client-ingest"'))
    g = GameDay(tmp_path / "reports")
    dry = g("run", str(scenario), "--target", str(target), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "DRY RUN" in dry.stdout and "Postgres given (not shown)" in dry.stdout
    status = g("status", "--target", str(target), "--json")
    assert scan([dry.stdout, dry.stderr, status.stdout, status.stderr], g.reports, [TARGET_SECRET]) == []


def test_a_game_day_against_the_local_environment_leaks_nothing(tmp_path: Path) -> None:
    g = GameDay(tmp_path / "reports")
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    outputs = []
    up = g("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        secret = postgres_password(g.run_id())
        assert len(secret) >= 16
        status = g("status", "--json")
        run = g("run", str(scenario))
        assert run.returncode == 0, run.stdout[-3000:]
        outputs += [up.stdout, up.stderr, status.stdout, status.stderr, run.stdout, run.stderr]
        assert "***" in json.loads(status.stdout)["endpoints"]["postgres_dsn"]
    finally:
        down = g("down")
        outputs += [down.stdout, down.stderr]
    assert down.returncode == 0
    assert scan(outputs, g.reports, [secret]) == []


INNER = '''
import json, os
from pathlib import Path


def test_fails_its_own_check(experiment, chaos_env):
    Path(os.environ["SECRET_OUT"]).write_text(chaos_env.pg_password)  # the harness needs it to scan
    result = experiment().run(warmup_s=1.0, before_s=2.0, after_s=1.0)
    assert result.ok
    assert False, "a failing check: the container logs are collected"
'''


def test_a_pytest_session_with_collected_logs_leaks_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    reports = tmp_path / "reports"
    secret_file = tmp_path / "secret.txt"
    env = {**os.environ, "SECRET_OUT": str(secret_file), "CHAOS_PROGRESS_INTERVAL": "off"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_inner.py"),
         "--rootdir", str(tmp_path), f"--chaos-report-dir={reports}",
         "--chaos-pipeline=system_under_test.adapter:PIPELINE"],
        capture_output=True, text=True, timeout=INNER_TIMEOUT_S, cwd=REPO, env=env, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    secret = secret_file.read_text()
    assert len(secret) >= 16
    assert list(reports.rglob("logs/*.log")), "no container log was collected"
    assert scan([proc.stdout, proc.stderr], reports, [secret]) == []
