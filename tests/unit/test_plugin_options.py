"""How the pytest plugin meets pytest's own options: ``-m`` selects as pytest users expect, and
pytest-xdist is refused at start with a message that says why (no container is started by any of these)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = '''
import pytest

def test_gate():
    pass

@pytest.mark.nightly
def test_nightly():
    pass

@pytest.mark.matrix
def test_matrix():
    pass
'''


def inner(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiers.py").write_text(TESTS)
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)


def collected(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.split("::")[-1] for line in proc.stdout.splitlines() if "::" in line}


def test_the_tier_selects_when_no_marker_expression_is_given(tmp_path: Path) -> None:
    assert collected(inner(tmp_path)) == {"test_gate"}
    assert collected(inner(tmp_path, "--chaos-tier=nightly")) == {"test_gate", "test_nightly"}
    assert collected(inner(tmp_path, "--chaos-tier=matrix")) == {"test_matrix"}


def test_an_explicit_marker_expression_decides(tmp_path: Path) -> None:
    assert collected(inner(tmp_path, "-m", "nightly")) == {"test_nightly"}
    assert collected(inner(tmp_path, "-m", "nightly or matrix")) == {"test_nightly", "test_matrix"}
    assert collected(inner(tmp_path, "-m", "not matrix")) == {"test_gate", "test_nightly"}


def test_xdist_is_refused_with_the_reason(tmp_path: Path) -> None:
    proc = inner(tmp_path, "-n", "2")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    assert "does not run under pytest-xdist" in proc.stderr and "one container environment" in proc.stderr
    assert inner(tmp_path, "-n", "0").returncode == 0


def test_defects_cannot_be_combined_with_the_matrix_tier(tmp_path: Path) -> None:
    proc = inner(tmp_path, "--chaos-tier=matrix", "--chaos-defects=acks1")
    assert proc.returncode == 4 and "cannot be combined with the matrix tier" in proc.stderr, proc.stderr


def test_reads_asked_of_a_pipeline_without_a_read_contract_are_refused(tmp_path: Path) -> None:
    env = {"CHAOS_PIPELINE": "examples.orders.adapter:PIPELINE", "CHAOS_READ_SHARE": "0.2"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2], check=False,
                          env={**os.environ, **env})
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "pipeline orders declares no reads" in proc.stderr and "CHAOS_READ_SHARE=0" in proc.stderr
