"""The report pages in a real headless browser (Debian's Chromium), driven over the DevTools protocol.

No containers: the pages are generated from the hand-made history of tests/unit/test_report.py. Each
page must load with no console error, no uncaught exception and no request but itself, and show its
plots (laid out, with content) and its verdict table; the hover readout's script must work. A control
page proves the checks can fail. Chromium is installed here when missing (``apt-get install -y
chromium``, needs root); without root or apt the tests skip and say how to provide one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos import report
from chaos.report.browser import find_chromium, inspect_page
from chaos.report.index import write_run_index
from tests.unit.test_report import make_result

INSTALL_TIMEOUT_S = 600


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", *args], env=env, capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is not None:
        return exe
    if shutil.which("apt-get") is None:
        pytest.skip("no Chromium found and no apt-get to install it: install Chromium or set CHAOS_CHROMIUM "
                    "to a Chromium/Chrome executable")
    if os.geteuid() != 0:
        pytest.skip("no Chromium found, and installing Debian's chromium needs root: run "
                    "`sudo apt-get install -y chromium` or set CHAOS_CHROMIUM")
    proc = _apt("install", "-y", "chromium")
    if proc.returncode != 0:  # a stale package index: refresh it once
        _apt("update")
        proc = _apt("install", "-y", "chromium")
    exe = find_chromium()
    if exe is None:
        pytest.fail(f"apt-get install -y chromium failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return exe


HOVER = """(() => {
  const s = document.querySelector('svg.latency'); const r = s.getBoundingClientRect();
  s.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width * 0.5, clientY: r.top + r.height / 2,
                                               bubbles: true}));
  const c = document.querySelector('svg.backlog .cursor');
  return [document.getElementById('readout').textContent, c.style.display, c.getAttribute('x1')];
})()"""


def test_experiment_page_renders_plots_and_verdicts_without_errors_or_requests(chromium: str,
                                                                              tmp_path: Path) -> None:
    result = make_result(tmp_path)
    report.write_experiment(result, tmp_path)
    check = inspect_page(
        tmp_path / "report.html", executable=chromium,
        expressions=[
            "document.querySelectorAll('svg.chart').length",
            "Array.from(document.querySelectorAll('svg.chart'), s => Math.round(s.getBoundingClientRect().height))",
            "document.querySelector('svg.latency path.dots').getBBox().width",
            "document.querySelectorAll('svg.latency rect.fault').length",
            "document.querySelector('svg.throughput path.area').getBBox().height",
            "document.querySelectorAll('#verdicts tr.verdict').length",
            "Array.from(document.querySelectorAll('#verdicts tr.verdict.fail td.name'), td => td.textContent)",
            "document.querySelector('#verdicts tr.examples-row.fail details').open",
            "document.querySelectorAll('table.phases tbody tr').length",
            HOVER,
        ])
    assert check.errors == [], check.console
    assert check.foreign_requests == [], check.requests
    assert check.requests == [check.url]
    v = list(check.values.values())
    assert v[0] == 4  # latency, throughput, backlog, timeline
    assert all(h > 100 for h in v[1]), v[1]  # laid out at a readable size
    assert v[2] > 800  # dots across the whole run (SVG units, plot width 912)
    assert v[3] == 1  # the fault window shaded
    assert v[4] > 50  # the throughput area has height
    assert v[5] == len(result.verdicts) == 8
    assert v[6] == ["lost"]
    assert v[7] is True  # a failed verdict shows its examples
    assert v[8] == 4  # warmup, before, during, after
    readout, display, x1 = v[9]
    # the middle of the plot is about 3.3 s into the run: during the fault, where ops took 1000 ms
    assert re.match(r"t=3\.\d\d s  during  \|  p50 1000\.0 ms  p99 1000\.0 ms", readout), readout
    assert display == "" and 450 < float(x1) < 560  # the cursor is shown in every plot, mid-way


def test_run_index_renders_without_errors_or_requests(chromium: str, tmp_path: Path) -> None:
    run = tmp_path / "run1"
    report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    index, _ = write_run_index(run, step_summary="")
    check = inspect_page(index, executable=chromium, expressions=[
        "document.querySelectorAll('tbody tr').length",
        "document.querySelector('td.name a').getAttribute('href')",
    ])
    assert check.errors == [] and check.foreign_requests == []
    assert list(check.values.values()) == [1, "test_handmade/report.html"]


def test_the_checks_can_fail(chromium: str, tmp_path: Path) -> None:
    """A control: an external image and a console error are caught, with and without our CSP."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                   '<script>console.error("boom")</script></body></html>')
    check = inspect_page(bad, executable=chromium, settle_s=0.3)
    assert "http://127.0.0.1:9/x.png" in check.foreign_requests
    assert any("boom" in e for e in check.errors)
    guarded = tmp_path / "guarded.html"
    guarded.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                       "content=\"default-src 'none'\"></head><body><img src=\"http://127.0.0.1:9/y.png\">"
                       "</body></html>")
    check = inspect_page(guarded, executable=chromium, settle_s=0.3)
    # the attempt is still reported (then blocked by the policy before it leaves), with a console error
    assert check.foreign_requests == ["http://127.0.0.1:9/y.png"]
    assert check.blocked == {"http://127.0.0.1:9/y.png": "csp"}
    assert any("Content Security Policy" in e for e in check.errors), check.console
