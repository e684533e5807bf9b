"""Markdown summaries, fit for a CI job summary (GitHub's ``$GITHUB_STEP_SUMMARY``) or a pull request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaos.report.fmt import fmt_count, fmt_ms, fmt_pct, fmt_rate, fmt_s
from chaos.report.live import fault_label
from chaos.report.schema import Results, VerdictRecord

__all__ = ["experiment_markdown", "md_escape", "verdict_examples_markdown"]

MAX_EXAMPLE_ROWS = 5


def md_escape(text: str | None) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return md_escape("-" if v is None else v)


def verdict_examples_markdown(v: VerdictRecord) -> str:
    """A small table of a verdict's examples (empty string when it has none)."""
    examples = list(v.get("examples") or [])[:MAX_EXAMPLE_ROWS]
    if not examples:
        return ""
    cols = list(dict.fromkeys(k for ex in examples for k in ex))
    lines = ["| " + " | ".join(md_escape(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for ex in examples:
        lines.append("| " + " | ".join(_cell(ex.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _headline_facts(r: Results) -> list[str]:
    facts: list[str] = []
    faults = r.get("faults") or []
    for f in faults:
        duration: float | None = f.get("duration_s")
        dur = f"{fmt_s(duration)} s" if duration is not None else "never healed"
        facts.append(f"fault **{md_escape(fault_label(str(f['name']), f))}** at {fmt_s(f.get('start_s'))} s "
                     f"for {dur}")
    rec = r.get("recovery") or {}
    if faults:
        conv: float | None = rec.get("convergence_s", r.get("convergence_s"))
        bound: float | None = rec.get("convergence_bound_s")
        facts.append(f"convergence **{fmt_s(conv)} s** after heal" + (f" (bound {bound:g} s)" if bound else "")
                     if conv is not None else "**never converged** after heal")
        avail: float | None = rec.get("availability_recovered_s")
        if avail is not None:
            facts.append(f"latency normal {fmt_s(avail)} s after heal")
    return facts


def experiment_markdown(doc: Results, *, heading: str = "###",
                        html_link: str | None = "report.html") -> str:
    """The summary of one experiment, from its ``results.json`` document."""
    passed: bool | None = doc.get("ok")
    ok = bool(passed)
    failed: Sequence[str] = doc.get("failed") or [str(v["name"]) for v in doc.get("verdicts") or [] if not v["ok"]]
    head = f"{heading} {'✅ PASS' if ok else '❌ FAIL'} `{md_escape(doc.get('experiment'))}`"
    if failed:
        head += f" (failed: {', '.join(md_escape(f) for f in failed)})"
    versions = doc.get("versions")
    pipeline: str | None = versions.get("pipeline") if versions else None
    seed: int | None = doc.get("seed")
    meta_line = (f"defects: {', '.join(doc.get('defects') or []) or 'none'} · seed {seed} · pipeline "
                 f"`{pipeline or '-'}` · {fmt_count((doc.get('counts') or {}).get('ops'))} ops · wall "
                 f"{fmt_s(doc.get('wall_s'), 1)} s")
    lines = [head, ""]
    facts = _headline_facts(doc)
    if facts:
        lines += [" · ".join(facts), ""]
    lines += [meta_line, "",
              "| phase | ops | error rate | ok/s | p50 ms | p90 ms | p99 ms | max ms |",
              "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for name, p in (doc.get("phases") or {}).items():
        lines.append(f"| {md_escape(name)} | {fmt_count(p.get('ops'))} | {fmt_pct(p.get('error_rate'))} | "
                     f"{fmt_rate(p.get('throughput_ok_per_s'))} | {fmt_ms(p.get('p50_ms'))} | "
                     f"{fmt_ms(p.get('p90_ms'))} | {fmt_ms(p.get('p99_ms'))} | {fmt_ms(p.get('max_ms'))} |")
    lines += ["", "| invariant | result | detail |", "|---|---|---|"]
    for v in doc.get("verdicts") or []:
        lines.append(f"| {md_escape(v.get('name'))} | {'pass' if v['ok'] else '**FAIL**'} | "
                     f"{md_escape(v.get('message', ''))} |")
    for v in doc.get("verdicts") or []:
        ex = verdict_examples_markdown(v)
        if ex and not v["ok"]:
            lines += ["", f"<details><summary>{md_escape(v.get('name'))}: examples</summary>", "", ex, "",
                      "</details>"]
    if html_link:
        lines += ["", f"Plots: [{html_link}]({html_link}) (self-contained HTML)."]
    return "\n".join(lines) + "\n"
