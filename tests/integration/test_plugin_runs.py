"""The pytest plugin's reports agree with pytest, for a real run against real containers.

One inner pytest session (a subprocess, with its own environment) runs a parametrised test of two short
experiments with ``--chaos-defects=no_dedup``: ``[plain]`` passes; ``[checked]`` fails an assertion of
its own check although every verdict passed. Afterwards:
- each parameter has its own artefact folder (they used to share one and overwrite each other);
- the failed check is in that experiment's ``results.json`` (ok false, a failed ``check`` verdict with
  the assertion's message), its ``summary.md`` says FAIL, and the run's summary counts it as failed;
- the defect named on the command line was switched on in the deployed pipeline and recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INNER_TIMEOUT_S = 300  # environment start + two ~10 s experiments, on a busy two-core machine

INNER = '''
import pytest

MESSAGE = "the figure this experiment promises did not show"


@pytest.mark.parametrize("case", ["plain", "checked"])
def test_short(case, experiment, chaos_env):
    exp = experiment()
    result = exp.run(warmup_s=1.0, before_s=2.0, after_s=1.0)
    envs = [c.attrs["Config"]["Env"] for c in chaos_env.deployment.containers.values()]
    assert all("PIPELINE_DEFECTS=no_dedup" in e for e in envs), envs
    assert result.ok, result.failed()
    if case == "checked":
        assert result.stats["before"].ops < 0, MESSAGE
'''


def test_reports_follow_the_test_outcome_per_parameter(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(tmp_path / "test_inner.py"),
         "--rootdir", str(tmp_path), f"--chaos-report-dir={reports}", "--chaos-defects=no_dedup",
         "--chaos-pipeline=system_under_test.adapter:PIPELINE",
         "--chaos-progress-interval=off"],
        capture_output=True, text=True, timeout=INNER_TIMEOUT_S, cwd=REPO, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    (run,) = [p for p in reports.iterdir() if p.is_dir()]
    folders = sorted(p.name for p in run.iterdir() if (p / "results.json").is_file())
    assert folders == ["test_short-checked-no_dedup", "test_short-plain-no_dedup"], folders

    plain = json.loads((run / "test_short-plain-no_dedup" / "results.json").read_text())
    assert plain["ok"] and plain["defects"] == ["no_dedup"]

    checked = json.loads((run / "test_short-checked-no_dedup" / "results.json").read_text())
    assert not checked["ok"] and checked["failed"] == ["check"], checked["failed"]
    (verdict,) = [v for v in checked["verdicts"] if v["name"] == "check"]
    assert "the figure this experiment promises did not show" in verdict["message"]
    summary = (run / "test_short-checked-no_dedup" / "summary.md").read_text()
    assert "FAIL" in summary and "did not show" in summary, summary
    run_summary = (run / "summary.md").read_text()
    assert "1 failed" in run_summary, run_summary
