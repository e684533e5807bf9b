"""The experiment page, the run index and the pytest hooks, without a browser (see
tests/integration/test_report_browser.py for the page in headless Chromium)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaos import report
from chaos.history import FaultWindow, History, Op, Outcome, PhaseMark
from chaos.report import plugin
from chaos.report.html import MAX_DOTS, render_html
from chaos.report.index import collect_run, write_run_index
from chaos.report.schema import as_results
from chaos.report.series import in_flight, nearest_rank, nice_width_us, windows_by_intended
from tests.unit.test_report import T0, make_result

S = 1_000_000


@pytest.fixture(scope="module")
def page() -> str:
    r = make_result()
    return render_html(r.history, as_results(r.to_dict()))


def big_history(n: int, seed: int = 1) -> History:
    """n ops at 200/s with a 3 s stall in the middle, a few failures: a realistic long history."""
    rng = random.Random(seed)
    h = History(meta={"experiment": "big", "run_id": "r", "seed": seed})
    span = n / 200 * S
    for name, frac in (("before", 0.0), ("during", 0.4), ("after", 0.6)):
        h.phases.append(PhaseMark(name, T0 + int(span * frac)))
    h.faults.append(FaultWindow("pause", T0 + int(span * 0.4), T0 + int(span * 0.6), {"resolved": {"node": "kafka-1"}}))
    for i in range(n):
        t = T0 + i * 5000
        phase = "before" if t < T0 + span * 0.4 else ("during" if t < T0 + span * 0.6 else "after")
        lat = rng.lognormvariate(9.3, 0.5) * (30 if phase == "during" and rng.random() < 0.3 else 1)
        outcome = Outcome.UNKNOWN if rng.random() < 0.002 else Outcome.OK
        h.ops.append(Op(f"e{i}", f"k{i % 16}", i // 16, 1, t, t + 50, t + int(lat), outcome, phase))
    return h


def test_the_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"\b(src|href)=\"(https?:)?//", page), "nothing may be loaded from the network"
    assert "http://" not in page and "https://" not in page
    assert '<link rel="icon" href="data:,">' in page  # no favicon request either


def test_the_page_has_the_plots_and_the_tables(page: str) -> None:
    for cls in ("latency", "throughput", "backlog", "timeline"):
        assert f'<svg class="chart {cls}"' in page
    assert page.count('<tr class="verdict fail">') == 1  # lost
    assert page.count('<tr class="verdict pass">') == 7
    assert page.count('<tr class="examples-row fail">') == 1
    assert 'class="fault"' in page and "kill kafka-2" in page  # shaded window, labelled
    assert "consumer lag (records)" in page and "applied lag" in page  # from the samples
    assert "converged +0.75 s" in page and "latency normal +1.00 s" in page
    assert "c1-abc123" in page and "pipeline-chaos/kafka:4.1.1-c1-aaa" in page
    m = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page)
    assert m is not None
    data = json.loads(m.group(1))
    assert data["span"] == pytest.approx(7.01) and len(data["p99"]) == len(data["fl"])


def test_text_is_escaped() -> None:
    r = make_result()
    doc = as_results(r.to_dict())
    doc["experiment"] = "<script>alert(1)</script>"
    doc["verdicts"][0]["message"] = "a < b & c"
    html = render_html(r.history, doc)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "a &lt; b &amp; c" in html


def test_a_history_without_ops_still_renders() -> None:
    h = History(meta={"experiment": "empty"})
    html = render_html(h, report.build_results(h, verdicts=[]))
    assert '<svg class="chart latency"' in html


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_a_long_history_stays_under_a_megabyte(n: int) -> None:
    h = big_history(n)
    html = render_html(h, report.build_results(h, verdicts=[]))
    assert len(html.encode()) < 1_000_000
    m = re.search(r'<path class="dots" d="([^"]*)"', html)
    assert m is not None
    drawn = m.group(1).count("M")
    assert drawn <= MAX_DOTS * 1.1 if n > MAX_DOTS else drawn == sum(o.outcome == Outcome.OK for o in h.ops)


def test_series_helpers() -> None:
    assert nearest_rank([1, 2, 3, 4], 0.5) == 2 and nearest_rank([1, 2, 3, 4], 0.99) == 4
    assert nearest_rank([7], 0.0) == 7
    assert nice_width_us(25 * S, 400) == 100_000 and nice_width_us(600 * S, 400) == 2 * S
    r = make_result()
    wins = windows_by_intended(r.history.ops, T0 + 3 * S, T0 + 5 * S, S)
    assert [(w.ok, w.fail, w.unknown, w.never_completed) for w in wins] == [(100, 0, 0, 0), (90, 5, 5, 2)]
    # at 3.5 s the 1000 ms ops of "during" due at 3.00, 3.01, ..., 3.50 s are all still out (51);
    # every op of "before" (at most 100 ms) has been answered
    assert in_flight(r.history.ops, [T0 + 3_500_000]) == [51]


# --------------------------------------------------------------------------- run index


def test_run_index_links_every_experiment_with_its_verdict(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    report.write_experiment(make_result(run / "test_handmade"), run / "test_handmade")
    good = make_result(run / "test_good").to_dict()
    good["experiment"], good["ok"], good["failed"] = "test_good", True, []
    for v in good["verdicts"]:
        v["ok"] = True
    (run / "test_good").mkdir()
    (run / "test_good" / "results.json").write_text(json.dumps(good))
    (run / "test_crashed" / "logs").mkdir(parents=True)
    (run / "test_crashed" / "logs" / "kafka-1.log").write_text("boom")
    (run / "not_an_experiment").mkdir()
    step = tmp_path / "step_summary.md"
    step.write_text("earlier\n")
    index, summary = write_run_index(run, step_summary=str(step))
    html = index.read_text()
    assert {e.name for e in collect_run(run)} == {"test_crashed", "test_good", "test_handmade"}
    assert '<a href="test_handmade/report.html">test_handmade</a>' in html
    assert html.count('class="badge pass"') == 1 and "NO RESULT" in html
    assert '<a href="test_crashed/logs/">logs</a>' in html
    assert "not_an_experiment" not in html
    assert "3 experiments: 1 passed, 1 failed, 1 without results" in html
    md = summary.read_text()
    assert "| test_handmade | **FAIL** | lost | 99.0 / 1,000 / 300 | 5% | 0.75 |" in md
    assert "#### ❌ FAIL `test_handmade`" in md  # the failing experiment's own summary follows
    assert step.read_text() == "earlier\n" + md + "\n"


# --------------------------------------------------------------------------- pytest hooks


def test_experiments_done_records_junit_properties_and_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "test_handmade"
    report.write_experiment(make_result(folder), folder)
    config = SimpleNamespace(stash=pytest.Stash())
    config.stash[plugin.RUN_DIRS_KEY] = {}
    node = SimpleNamespace(user_properties=[])
    request: Any = SimpleNamespace(config=config, node=node)
    exp = SimpleNamespace(name="test_handmade", artefacts=folder)
    missing = SimpleNamespace(name="test_crashed", artefacts=tmp_path / "run" / "test_crashed")
    plugin.experiments_done(request, [exp], logs=False)
    props = dict(node.user_properties)
    assert props["chaos.during.p99_ms"] == "1000" and props["chaos.failed"] == "lost"
    assert props["chaos.report"] == str(folder / "report.html")
    assert list(config.stash[plugin.RUN_DIRS_KEY]) == [tmp_path / "run"]
    node.user_properties.clear()
    plugin.experiments_done(request, [exp, missing], logs=False)  # two experiments: prefixed by name
    assert dict(node.user_properties)["chaos.test_handmade.during.p99_ms"] == "1000"


def test_the_page_is_rebuilt_to_link_logs_collected_after_a_failure(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "test_handmade"
    report.write_experiment(make_result(folder), folder)
    assert "logs/" not in (folder / "report.html").read_text()
    (folder / "logs").mkdir()
    (folder / "logs" / "projector-1.log").write_text("...")
    config = SimpleNamespace(stash=pytest.Stash())
    config.stash[plugin.RUN_DIRS_KEY] = {}
    request: Any = SimpleNamespace(config=config, node=SimpleNamespace(user_properties=[]))
    plugin.experiments_done(request, [SimpleNamespace(name="x", artefacts=folder)], logs=True)
    assert '<a href="logs/projector-1.log">projector-1.log</a>' in (folder / "report.html").read_text()
