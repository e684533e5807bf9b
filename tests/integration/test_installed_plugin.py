"""The suite as another repository uses it: a wheel installed into a fresh virtual environment outside this
checkout, a project with its own adapter (importing only the public API) and no conftest line, and the
shipped experiment catalogue run against real containers through that adapter.

The files and commands are read from the tutorial, ``docs/your-pipeline.md`` (``<!-- file: NAME -->`` before a
fenced block writes it; ``<!-- run -->`` / ``<!-- run: fails -->`` before a ``sh`` block runs it), so the
tutorial's commands are exactly the ones tested. The project's "own images" are this repository's reference
pipeline image (``MYTEAM_IMAGE``), and its proto a copy of the reference proto.

The experiment passes on the correct pipeline and fails, with the ``lost`` verdict, with the defect on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.images import pipeline_tags
from system_under_test.adapter import PIPELINE, PROTO

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "your-pipeline.md"
BUILD_TIMEOUT_S = 300  # building the wheel
INSTALL_TIMEOUT_S = 600  # pip installing it with its dependencies from the package index
RUN_TIMEOUT_S = 600  # one pytest session: the environment, a deployment, one experiment
_BLOCK = re.compile(r"<!-- (file: (?P<file>\S+)|run(?P<fails>: fails)?) -->\n```\w*\n(?P<body>.*?)```", re.S)


def tutorial() -> tuple[dict[str, str], list[tuple[str, bool]]]:
    """The files and the commands (with whether each must fail) of the tutorial, in order."""
    files: dict[str, str] = {}
    runs: list[tuple[str, bool]] = []
    for m in _BLOCK.finditer(TUTORIAL.read_text(encoding="utf-8")):
        if m.group("file"):
            files[m.group("file")] = m.group("body")
        else:
            runs.append((m.group("body").strip(), bool(m.group("fails"))))
    return files, runs


def test_the_tutorial_passes_and_fails_with_the_installed_wheel(tmp_path: Path) -> None:
    files, runs = tutorial()
    assert set(files) == {"myteam_chaos.py", "pyproject.toml"} and len(runs) == 3, (files.keys(), runs)
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist")], cwd=REPO, check=True,
                   capture_output=True, timeout=BUILD_TIMEOUT_S)
    (wheel,) = (tmp_path / "dist").glob("pipeline_chaos-*.whl")
    shutil.copy(wheel, project / wheel.name)
    for name, body in files.items():
        (project / name).write_text(body, encoding="utf-8")
    shutil.copy(PROTO, project / "pipeline.proto")
    assert "system_under_test" not in files["myteam_chaos.py"] and not (project / "conftest.py").exists()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAOS_", "PYTEST_", "VIRTUAL_ENV", "UV_"))}
    env.update(MYTEAM_IMAGE=pipeline_tags(PIPELINE, "local")["pipeline"], CHAOS_REPORT_DIR=str(project / "reports"),
               CHAOS_PROGRESS_INTERVAL="off", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    outputs = []
    for command, must_fail in runs:
        script = command.replace("python -m venv", f"{sys.executable} -m venv")
        timeout = INSTALL_TIMEOUT_S if "pip install" in script else RUN_TIMEOUT_S
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        out = proc.stdout + proc.stderr
        outputs.append(out)
        if must_fail:
            assert proc.returncode == 1, f"{command}\n{out[-4000:]}"
        else:
            assert proc.returncode == 0, f"{command}\n{out[-4000:]}"
    _installed, passed, failed = outputs
    assert str(project / ".venv") in subprocess.run(
        [str(project / ".venv/bin/python"), "-c", "import chaos; print(chaos.__file__)"], cwd=project, env=env,
        capture_output=True, text=True, check=True, timeout=60).stdout, "chaos was not imported from the venv"
    assert "1 passed" in passed, passed[-3000:]
    assert "1 failed" in failed and "lost" in failed and "in Kafka but not in Postgres" in failed, failed[-3000:]
    listing = subprocess.run([str(project / ".venv/bin/gameday"), "list"], cwd=project, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert listing.returncode == 0 and "leader-kill" in listing.stdout, listing.stdout + listing.stderr
