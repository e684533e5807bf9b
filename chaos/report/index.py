"""The run-level pages: ``<run>/index.html`` linking every experiment with its verdict, and ``<run>/summary.md``
(and, written with them, the run's metrics: :mod:`chaos.report.metrics`).

Both are rebuilt from the experiment folders' ``results.json`` files, so they can be written at the end
of a pytest session, by ``python -m chaos.report index RUN``, or again after a partial rerun. A folder
without a readable ``results.json`` (an experiment that crashed before its verdicts) is listed too, with
its logs, because that is exactly the one someone triaging a red run wants to open.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chaos.report.fmt import fmt_ms, fmt_pct, fmt_s
from chaos.report.live import fault_label
from chaos.report.markdown import experiment_markdown, md_escape
from chaos.report.results import load_results
from chaos.report.schema import FaultRecord, Results

__all__ = ["RunEntry", "collect_run", "render_index", "run_markdown", "write_run_index"]

e = html.escape


@dataclass
class RunEntry:
    folder: Path
    results: Results | None
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def ok(self) -> bool | None:
        if self.results is None:
            return None
        ok: bool | None = self.results.get("ok")
        return bool(ok)


def collect_run(run_dir: str | Path) -> list[RunEntry]:
    """Every experiment folder of a run (sub-folders with a results.json, a history or logs), in start order."""
    run = Path(run_dir)
    entries: list[RunEntry] = []
    for sub in sorted(p for p in run.iterdir() if p.is_dir()):
        if not any((sub / n).exists() for n in ("results.json", "history.jsonl", "logs")):
            continue
        try:
            entries.append(RunEntry(sub, load_results(sub / "results.json")))
        except ValueError as exc:
            entries.append(RunEntry(sub, None, str(exc)))
    entries.sort(key=lambda en: (_started_us(en), en.name))
    return entries


def _started_us(en: RunEntry) -> int:
    started: int | None = en.results.get("started_at_us") if en.results else None
    return started or 0


def _phase(r: Results, name: str, key: Literal["p99_ms", "error_rate"]) -> float | None:
    return ((r.get("phases") or {}).get(name) or {}).get(key)


def _p99s(r: Results) -> str:
    return " / ".join(fmt_ms(_phase(r, p, "p99_ms")) for p in ("before", "during", "after"))


def _converged(r: Results) -> str:
    """Convergence after the heal, for the tables: seconds, ``never``, or ``-`` without a fault."""
    rec = r.get("recovery") or {}
    conv: float | None = rec.get("convergence_s", r.get("convergence_s"))
    faults: list[FaultRecord] = r.get("faults") or []
    return fmt_s(conv) if conv is not None else ("never" if faults else "-")


def _failed(r: Results) -> Sequence[str]:
    return r.get("failed") or [v["name"] for v in r.get("verdicts") or [] if not v["ok"]]


def _focus(r: Results) -> str:
    phases = r.get("phases") or {}
    return "during" if "during" in phases else "before"


def render_index(run_dir: str | Path, entries: list[RunEntry]) -> str:
    run = Path(run_dir)
    n_fail = sum(1 for en in entries if en.ok is False)
    n_broken = sum(1 for en in entries if en.ok is None)
    n_pass = sum(1 for en in entries if en.ok)
    first = next((en.results for en in entries if en.results), None)
    started: str | None = first.get("started_at") if first else None
    versions = first.get("versions") if first else None
    suite: str | None = versions.get("suite") if versions else None
    pipeline: str | None = versions.get("pipeline") if versions else None
    rows = []
    for en in entries:
        r = en.results
        href = e(en.name)
        links = [f'<a href="{href}/{n}">{label}</a>' for n, label in
                 (("summary.md", "summary"), ("results.json", "results"), ("history.jsonl", "history"))
                 if (en.folder / n).exists()]
        if (en.folder / "logs").is_dir():
            links.append(f'<a href="{href}/logs/">logs</a>')
        if r is None:
            rows.append(f'<tr class="fail"><td class="name">{e(en.name)}</td><td><span class="badge fail">NO RESULT'
                        f'</span></td><td colspan="7">{e(en.problem or "")}</td><td>{" · ".join(links)}</td></tr>')
            continue
        ok = bool(en.ok)
        badge = '<span class="badge pass">PASS</span>' if ok else '<span class="badge fail">FAIL</span>'
        failed = ", ".join(_failed(r))
        faults = "; ".join(fault_label(str(f["name"]), f) for f in r.get("faults") or []) or "-"
        conv_txt = _converged(r)
        name_cell = (f'<a href="{href}/report.html">{e(en.name)}</a>' if (en.folder / "report.html").exists()
                     else e(en.name))
        rows.append(
            f'<tr class="{"pass" if ok else "fail"}"><td class="name">{name_cell}</td><td>{badge}</td>'
            f"<td>{e(failed) or '-'}</td><td>{e(', '.join(r.get('defects') or []) or '-')}</td><td>{e(faults)}</td>"
            f'<td class="n">{_p99s(r)}</td><td class="n">{fmt_pct(_phase(r, _focus(r), "error_rate"))}</td>'
            f'<td class="n">{conv_txt}</td><td class="n">{fmt_s(r.get("wall_s"), 1)}</td>'
            f'<td>{" · ".join(links)}</td></tr>')
    status = "pass" if n_fail == 0 and n_broken == 0 and entries else "fail"
    summary = f"{len(entries)} experiments: {n_pass} passed, {n_fail} failed" + (
        f", {n_broken} without results" if n_broken else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>chaos run {e(run.name)}: {e(summary)}</title>
<style>
body{{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111827}}
main{{max-width:1240px;margin:0 auto;padding:20px 24px 40px}}h1{{font-size:22px;margin:0 0 4px}}
.sub{{color:#6b7280;font-size:13px;margin-bottom:16px}}
.badge{{display:inline-block;border-radius:4px;padding:1px 8px;font-weight:700;font-size:12px}}
.badge.pass{{background:#dcfce7;color:#15803d}}.badge.fail{{background:#fee2e2;color:#b91c1c}}
table{{border-collapse:collapse;width:100%;font-size:13px}}
th,td{{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}}
th{{background:#f9fafb;font-size:12px;color:#374151}}td.n{{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}}tr.fail td{{background:#fef2f2}}td.name{{font-weight:600}}a{{color:#1d4ed8}}
.status{{font-size:15px;padding:3px 12px;margin-left:8px;vertical-align:3px}}
</style></head><body><main>
<h1>Chaos run {e(run.name)} <span class="badge {status} status">{"PASS" if status == "pass" else "FAIL"}</span></h1>
<div class="sub">{e(summary)} · started {e(str(started or "-"))}
 · suite {e(str(suite or "-"))} · pipeline {e(str(pipeline or "-"))}</div>
<table><thead><tr><th>experiment</th><th>result</th><th>failed invariants</th><th>defects</th><th>fault</th>
<th>p99 ms before / during / after</th><th>error rate (during)</th><th>convergence s</th><th>wall s</th>
<th>artefacts</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
</main></body></html>
"""


def run_markdown(run_dir: str | Path, entries: list[RunEntry]) -> str:
    run = Path(run_dir)
    n_fail = sum(1 for en in entries if en.ok is False)
    n_broken = sum(1 for en in entries if en.ok is None)
    ok = n_fail == 0 and n_broken == 0
    lines = [f"## {'✅' if ok else '❌'} Chaos run `{md_escape(run.name)}`: {len(entries)} experiments, "
             f"{len(entries) - n_fail - n_broken} passed, {n_fail} failed"
             + (f", {n_broken} without results" if n_broken else ""), "",
             "| experiment | result | failed invariants | p99 ms before / during / after | error rate "
             "| convergence s |",
             "|---|---|---|--:|--:|--:|"]
    for en in entries:
        r = en.results
        if r is None:
            lines.append(f"| {md_escape(en.name)} | **NO RESULT** | {md_escape(en.problem or '')} | | | |")
            continue
        failed = ", ".join(r.get("failed") or []) or "-"
        lines.append(f"| {md_escape(en.name)} | {'pass' if en.ok else '**FAIL**'} | {md_escape(failed)} | "
                     f"{_p99s(r)} | {fmt_pct(_phase(r, _focus(r), 'error_rate'))} | {_converged(r)} |")
    for en in entries:
        if en.results is not None and not en.ok:
            lines += ["", experiment_markdown(en.results, heading="####", html_link=None).rstrip()]
    lines += ["", f"Reports: `{run}/index.html`"]
    return "\n".join(lines) + "\n"


def write_run_index(run_dir: str | Path, *, step_summary: str | None = None) -> tuple[Path, Path]:
    """Write ``index.html``, ``summary.md`` and ``metrics.prom`` (:mod:`chaos.report.metrics`) into the run
    folder; append the summary to ``step_summary`` (default: ``$GITHUB_STEP_SUMMARY`` when set). Returns
    the paths of the index and the summary."""
    from chaos.report.metrics import write_run_metrics

    run = Path(run_dir)
    entries = collect_run(run)
    index = run / "index.html"
    summary = run / "summary.md"
    index.write_text(render_index(run, entries), encoding="utf-8")
    md = run_markdown(run, entries)
    summary.write_text(md, encoding="utf-8")
    target = step_summary if step_summary is not None else os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(md + "\n")
    write_run_metrics(run, entries)
    return index, summary
