"""The pytest side in a real pytest session (a subprocess, no containers): progress lines reach the
terminal past output capturing, JUnit XML carries the key figures, the run index is written."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from chaos import report
from tests.unit.test_report import make_result

ROOT = Path(__file__).resolve().parents[2]

TEST_FILE = '''
from pathlib import Path
from types import SimpleNamespace

from chaos.report import live
from chaos.report.plugin import experiments_done


class Run:
    phase = "before"
    env = SimpleNamespace(run_id="unit-progress-demo")

    def counts(self):
        return {{"sent": 10, "acked": 10, "errors": 0, "applied": None, "lag": None}}


def test_progress_and_properties(request, monkeypatch):
    print("captured output of the test")
    monkeypatch.setattr(live, "active_faults_of", lambda _run: [])
    run = Run()
    p = live.Progress("exp_demo", interval_s=0.3)
    p.start(run)
    p.event("phase", "phase before")
    run.phase = "during"
    p.event("phase", "phase during")
    p.stop(run, SimpleNamespace(outcome="drained"))
    folder = Path({folder!r})
    experiments_done(request, [SimpleNamespace(name="test_handmade", artefacts=folder)], logs=False)
'''


def test_progress_junit_properties_and_run_index_in_a_real_session(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "run1" / "test_handmade"
    report.write_experiment(make_result(folder), folder)
    test = tmp_path / "test_demo.py"
    test.write_text(textwrap.dedent(TEST_FILE.format(folder=str(folder))))
    junit = tmp_path / "junit.xml"
    step = tmp_path / "step.md"
    env = {"GITHUB_STEP_SUMMARY": str(step), "PATH": "/usr/bin:/bin", "CI": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={junit}", "--rootdir", str(tmp_path), "-c", "/dev/null", str(test)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = [li for li in out.splitlines() if li.startswith("[chaos] exp_demo")]
    assert lines and "(phase before)" in lines[0]
    assert any("(phase during)" in li for li in lines)
    assert "(done: drained)" in lines[-1] and "sent 10 acked 10 errors 0" in lines[-1]
    assert len(lines) == 3, lines  # 2 changes, the last
    assert "captured output of the test" not in out  # capturing still works for the test itself
    assert f"chaos report: {folder.parent / 'index.html'}" in out
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props["chaos.during.p99_ms"] == "1000"
    assert props["chaos.failed"] == "lost"
    assert props["chaos.convergence_s"] == "0.750"
    assert props["chaos.report"] == str(folder / "report.html")
    assert (folder.parent / "index.html").is_file()
    assert "Chaos run `run1`" in step.read_text()
    assert json.loads((folder / "results.json").read_text())["ok"] is False
