"""The experiment page: one self-contained HTML file (inline CSS, inline SVG, a few lines of inline JS).

Nothing is loaded from anywhere: a Content-Security-Policy (``default-src 'none'``) makes the browser
refuse any external resource, so a regression would show up as a console error in the browser test.
The plots share one time axis (seconds since ``t0_us``):

* latency of every operation (a dot per op, capped at :data:`MAX_DOTS` by stride sampling that keeps
  each window's slowest op; failed and unknown ops in red and orange) with p50/p99 lines per window,
  log scale, fault windows shaded, phase boundaries marked;
* throughput: acknowledgements and errors per second by completion time, and the offered load;
* backlog: requests in flight (due and not yet answered, from the history), and, when the run was
  sampled (``results["samples"]``), the projector group's consumer lag and the applied lag
  (acknowledged minus applied rows in Postgres);
* a timeline of phases, faults, convergence and availability recovery.

Then the verdict table (pass/fail, message, counts, examples), the per-phase table and the run's
details (seed, versions of the images and the pipeline, load, links to the other artefacts).
The gate experiments' pages (about 5,000 ops) are about 100 KB; a 10,000-op history gives 110 KB and a
100,000-op one 130 KB: beyond the dot cap the size hardly grows with the history.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos.history import History, Outcome
from chaos.report.fmt import fmt_count, fmt_ms, fmt_pct, fmt_rate, fmt_s
from chaos.report.live import fault_label
from chaos.report.schema import FaultRecord, PhaseFigures, Results, VerdictRecord
from chaos.report.series import completion_rate, in_flight, nice_width_us, time_span, windows_by_intended

__all__ = ["MAX_DOTS", "render_html"]

MAX_DOTS = 6000  # ok ops drawn as dots; beyond that, stride-sampled
MAX_ERROR_DOTS = 2000
MAX_WINDOWS = 400  # windows of the p50/p99 lines and the in-flight line

# geometry of every time plot (SVG user units); the same left edge and width keep the x axes aligned
W = 1000
L = 70
R = 18
PW = W - L - R

PHASE_COLOURS = {"warmup": "#9ca3af", "before": "#60a5fa", "during": "#f87171", "after": "#34d399"}
C_OK = "#2563eb"
C_P50 = "#0f766e"
C_P99 = "#7c3aed"
C_FAIL = "#dc2626"
C_UNKNOWN = "#ea580c"
C_FAULT = "rgba(220,38,38,0.10)"
C_OFFERED = "#6b7280"
C_LAG = "#d97706"
C_APPLIED_LAG = "#7c3aed"
C_INFLIGHT = "#2563eb"

e = html.escape


# --------------------------------------------------------------------------- axes and scales


class _X:
    def __init__(self, t0_us: int, span_us: int) -> None:
        self.t0 = t0_us
        self.span_s = max(span_us / 1e6, 1e-3)

    def s(self, t_s: float) -> float:
        return L + max(0.0, min(t_s, self.span_s)) / self.span_s * PW

    def us(self, t_us: int) -> float:
        return self.s((t_us - self.t0) / 1e6)


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _x_axis(x: _X, top: float, bottom: float) -> str:
    step = _nice_step(x.span_s, 10)
    out = [f'<line class="axis" x1="{L}" y1="{bottom}" x2="{L + PW}" y2="{bottom}"/>']
    t = 0.0
    while t <= x.span_s + 1e-9:
        px = x.s(t)
        out.append(f'<line class="grid" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}"/>')
        label = f"{t:g} s"
        out.append(f'<text class="tick" x="{px:.1f}" y="{bottom + 14}" text-anchor="middle">{label}</text>')
        t = round(t + step, 9)
    return "".join(out)


def _shading(x: _X, faults: Sequence[FaultRecord], phases: Mapping[str, PhaseFigures], top: float, bottom: float,
             labels: bool) -> str:
    out: list[str] = []
    for f in faults:
        s0 = f.get("start_s")
        end_s = f.get("end_s")
        s1: float = end_s if end_s is not None else x.span_s
        if s0 is None:
            continue
        x0, x1 = x.s(s0), x.s(s1)
        title = e(f"{fault_label(str(f['name']), f)}: {fmt_s(s0)} s - {fmt_s(s1)} s")
        out.append(f'<rect class="fault" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{bottom - top}" fill="{C_FAULT}"><title>{title}</title></rect>')
        if labels:
            out.append(f'<text class="faultlabel" x="{x0 + 4:.1f}" y="{top + 12}">'
                       f'{e(fault_label(str(f["name"]), f))}</text>')
    for name, p in phases.items():
        s0 = p.get("start_s")
        if s0 is None:
            continue
        px = x.s(s0)
        if s0 > 0:
            out.append(f'<line class="phase" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}"/>')
        if labels:
            out.append(f'<text class="phaselabel" x="{px + 4:.1f}" y="{bottom - 6}">{e(name)}</text>')
    return "".join(out)


def _svg(cls: str, height: int, body: str, label: str) -> str:
    return (f'<svg class="chart {cls}" viewBox="0 0 {W} {height}" role="img" aria-label="{e(label)}" '
            f'preserveAspectRatio="xMidYMid meet">{body}'
            f'<line class="cursor" x1="0" y1="8" x2="0" y2="{height - 24}" style="display:none"/></svg>')


def _legend(items: Sequence[tuple[str, str, str]], y: float = 14) -> str:
    """items: (colour, kind 'dot'|'line'|'dash'|'area', label), right-aligned at the top."""
    out: list[str] = []
    xpos: float = L + 4
    for colour, kind, label in items:
        if kind == "dot":
            out.append(f'<circle cx="{xpos + 5}" cy="{y - 4}" r="3.5" fill="{colour}"/>')
        elif kind == "area":
            out.append(f'<rect x="{xpos}" y="{y - 9}" width="12" height="9" fill="{colour}" fill-opacity="0.35" '
                       f'stroke="{colour}"/>')
        else:
            dash = ' stroke-dasharray="4 3"' if kind == "dash" else ""
            out.append(f'<line x1="{xpos}" y1="{y - 4}" x2="{xpos + 14}" y2="{y - 4}" stroke="{colour}" '
                       f'stroke-width="2"{dash}/>')
        out.append(f'<text class="legend" x="{xpos + 18}" y="{y}">{e(label)}</text>')
        xpos += 26 + 6.6 * len(label)
    return "".join(out)


# --------------------------------------------------------------------------- the plots


def _latency_plot(history: History, x: _X, wins: Sequence[Any], results: Results) -> str:
    height, top, bottom = 300, 24, 272
    ok = Outcome.OK
    lats = [(op.end_us - op.intended_us) for op in history.ops if op.end_us is not None]
    lo_ms = max(min(lats) / 1000, 0.1) if lats else 1.0
    hi_ms = max(max(lats) / 1000, lo_ms * 10) if lats else 1000.0
    y0 = math.floor(math.log10(lo_ms))
    y1 = math.ceil(math.log10(hi_ms))
    if y1 <= y0:
        y1 = y0 + 1

    def y(ms: float) -> float:
        v = math.log10(max(ms, 10 ** y0))
        return bottom - (v - y0) / (y1 - y0) * (bottom - top)

    body = [_shading(x, results.get("faults") or [], results.get("phases") or {}, top, bottom, labels=True)]
    for d in range(y0, y1 + 1):
        ms = 10.0**d
        py = y(ms)
        body.append(f'<line class="grid" x1="{L}" y1="{py:.1f}" x2="{L + PW}" y2="{py:.1f}"/>')
        label = f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"
        body.append(f'<text class="tick" x="{L - 6}" y="{py + 4:.1f}" text-anchor="end">{label}</text>')
        if d < y1:
            for m in (2, 5):
                body.append(f'<line class="minor" x1="{L}" y1="{y(ms * m):.1f}" x2="{L + PW}" y2="{y(ms * m):.1f}"/>')
    body.append(_x_axis(x, top, bottom))
    # dots: ok ops, stride-sampled beyond MAX_DOTS but keeping every window's slowest op
    ok_ops = [op for op in history.ops if op.outcome == ok and op.end_us is not None]
    keep: set[int] = set()
    if len(ok_ops) > MAX_DOTS:
        stride = math.ceil(len(ok_ops) / MAX_DOTS)
        slowest: dict[int, tuple[int, int]] = {}
        width = wins[0].width_us if wins else 1
        for i, op in enumerate(ok_ops):
            lat = op.end_us - op.intended_us  # type: ignore[operator]
            k = (op.intended_us - x.t0) // width
            if k not in slowest or lat > slowest[k][0]:
                slowest[k] = (lat, i)
        keep = {i for _, i in slowest.values()} | set(range(0, len(ok_ops), stride))
    dots: list[str] = []
    for i, op in enumerate(ok_ops):
        if keep and i not in keep:
            continue
        dots.append(f"M{x.us(op.intended_us):.1f} {y((op.end_us - op.intended_us) / 1000):.1f}h0")  # type: ignore[operator]
    body.append(f'<path class="dots" d="{"".join(dots)}" stroke="{C_OK}"/>')
    for outcome, colour in ((Outcome.UNKNOWN, C_UNKNOWN), (Outcome.FAIL, C_FAIL)):
        bad = [op for op in history.ops if op.outcome == outcome][:MAX_ERROR_DOTS]
        if bad:
            path = "".join(f"M{x.us(op.intended_us):.1f} "
                           f"{(y((op.end_us - op.intended_us) / 1000) if op.end_us is not None else top):.1f}h0"
                           for op in bad)
            body.append(f'<path class="dots err" d="{path}" stroke="{colour}"/>')
    for q, colour, cls in ((0.5, C_P50, "p50"), (0.99, C_P99, "p99")):
        pts: list[str] = []
        segs: list[str] = []
        for w in wins:
            v = w.percentile_ms(q)
            if v is None:
                if len(pts) > 1:
                    segs.append("M" + "L".join(pts))
                pts = []
                continue
            pts.append(f"{x.us(w.start_us + w.width_us // 2):.1f} {y(v):.1f}")
        if len(pts) > 1:
            segs.append("M" + "L".join(pts))
        if segs:
            body.append(f'<path class="line {cls}" d="{"".join(segs)}" stroke="{colour}"/>')
    n_drawn = len(dots)
    legend = [(C_OK, "dot", f"ok op ({n_drawn:,} of {len(ok_ops):,} drawn)" if keep else "ok op"),
              (C_UNKNOWN, "dot", "unknown"), (C_FAIL, "dot", "failed"),
              (C_P50, "line", f"p50 per {wins[0].width_us / 1e6:g} s" if wins else "p50"),
              (C_P99, "line", "p99"), (C_FAULT, "area", "fault active")]
    body.append(_legend(legend))
    return _svg("latency", height, "".join(body), "latency of each operation over time, log scale")


def _throughput_plot(history: History, x: _X, t1_us: int,
                     faults: Sequence[FaultRecord]) -> tuple[str, dict[str, list[int]]]:
    height, top, bottom = 200, 24, 172
    width = max(1_000_000, nice_width_us(t1_us - x.t0, 120))
    oks, errs = completion_rate(history.ops, x.t0, t1_us, width)
    offered = [0] * len(oks)
    for op in history.ops:
        i = (op.intended_us - x.t0) // width
        if 0 <= i < len(offered):
            offered[i] += 1
    per_s = 1e6 / width
    top_v = max([1, *(v * per_s for v in oks), *(v * per_s for v in offered), *(v * per_s for v in errs)]) * 1.12
    step = _nice_step(top_v, 4)

    def y(v: float) -> float:
        return bottom - v / top_v * (bottom - top)

    body = [_shading(x, faults, {}, top, bottom, labels=False)]
    v = 0.0
    while v <= top_v:
        body.append(f'<line class="grid" x1="{L}" y1="{y(v):.1f}" x2="{L + PW}" y2="{y(v):.1f}"/>')
        body.append(f'<text class="tick" x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}/s</text>')
        v = round(v + step, 9)
    body.append(_x_axis(x, top, bottom))

    def steps(vals: Sequence[int], from_zero: bool = True) -> str:
        pts = [f"M{x.us(x.t0):.1f} {y(0):.1f}"] if from_zero else []
        for i, c in enumerate(vals):
            a = x.us(x.t0 + i * width)
            b = x.us(x.t0 + (i + 1) * width)
            pts.append(f"L{a:.1f} {y(c * per_s):.1f}L{b:.1f} {y(c * per_s):.1f}")
        d = "".join(pts)
        return d if from_zero else "M" + d[1:]

    body.append(f'<path class="area" d="{steps(oks)}L{x.us(x.t0 + len(oks) * width):.1f} {y(0):.1f}Z" '
                f'fill="#16a34a" fill-opacity="0.22" stroke="#16a34a" stroke-width="1.5"/>')
    if any(errs):
        body.append(f'<path class="area" d="{steps(errs)}L{x.us(x.t0 + len(errs) * width):.1f} {y(0):.1f}Z" '
                    f'fill="{C_FAIL}" fill-opacity="0.35" stroke="{C_FAIL}" stroke-width="1.5"/>')
    body.append(f'<path class="line" d="{steps(offered, from_zero=False)}" stroke="{C_OFFERED}" '
                f'stroke-dasharray="5 4"/>')
    body.append(_legend([("#16a34a", "area", "acknowledged/s"), (C_FAIL, "area", "failed or unknown/s"),
                         (C_OFFERED, "dash", "offered/s (due)")]))
    series = {"ok": [round(v * per_s) for v in oks], "err": [round(v * per_s) for v in errs],
              "offered": [round(v * per_s) for v in offered], "width_us": [width]}
    return _svg("throughput", height, "".join(body), "throughput per second"), series


def _backlog_plot(history: History, x: _X, wins: Sequence[Any], results: Results) -> tuple[str, list[int]]:
    height, top, bottom = 200, 24, 172
    instants = [w.start_us + w.width_us for w in wins]
    flight = in_flight(history.ops, instants)
    samples = [s for s in results.get("samples") or [] if isinstance(s["t_us"], int)]
    lag_pts = [(s["t_us"], s["consumer_lag"]) for s in samples if isinstance(s["consumer_lag"], int)]
    applied_pts = [(s["t_us"], max(0, s["acked"] - s["applied"])) for s in samples
                   if isinstance(s["applied"], int) and isinstance(s["acked"], int)]
    vals = [1, *flight, *(v for _, v in lag_pts), *(v for _, v in applied_pts)]
    top_v = max(vals) * 1.12
    step = _nice_step(top_v, 4)

    def y(v: float) -> float:
        return bottom - v / top_v * (bottom - top)

    body = [_shading(x, results.get("faults") or [], {}, top, bottom, labels=False)]
    v = 0.0
    while v <= top_v:
        body.append(f'<line class="grid" x1="{L}" y1="{y(v):.1f}" x2="{L + PW}" y2="{y(v):.1f}"/>')
        body.append(f'<text class="tick" x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
        v = round(v + step, 9)
    body.append(_x_axis(x, top, bottom))
    if instants:
        d = "M" + "L".join(f"{x.us(t):.1f} {y(n):.1f}" for t, n in zip(instants, flight, strict=True))
        body.append(f'<path class="line" d="{d}" stroke="{C_INFLIGHT}"/>')
    legend = [(C_INFLIGHT, "line", "requests in flight (due, not answered)")]
    for pts, colour, label in ((lag_pts, C_LAG, "consumer lag (records)"),
                               (applied_pts, C_APPLIED_LAG, "applied lag (acked - applied)")):
        if pts:
            d = "M" + "L".join(f"{x.us(t):.1f} {y(n):.1f}" for t, n in pts)
            body.append(f'<path class="line" d="{d}" stroke="{colour}"/>')
            body.append("".join(f'<circle cx="{x.us(t):.1f}" cy="{y(n):.1f}" r="2.2" fill="{colour}"/>'
                                for t, n in pts))
            legend.append((colour, "line", label))
    if not samples:
        legend.append(("#9ca3af", "dash", "consumer lag: not sampled in this run"))
    body.append(_legend(legend))
    return _svg("backlog", height, "".join(body), "backlog: requests in flight and consumer lag"), flight


def _timeline(x: _X, results: Results) -> str:
    faults = results.get("faults") or []
    rec = results.get("recovery") or {}
    rows: list[tuple[str, list[str]]] = []
    row_h = 26
    # phases
    parts: list[str] = []
    for name, p in (results.get("phases") or {}).items():
        start_s, end_s = p.get("start_s"), p.get("end_s")
        if start_s is None or end_s is None:
            continue
        x0, x1 = x.s(start_s), x.s(end_s)
        colour = PHASE_COLOURS.get(name, "#c4b5fd")
        parts.append(f'<rect x="{x0:.1f}" y="{{y}}" width="{max(x1 - x0, 1):.1f}" height="18" rx="3" '
                     f'fill="{colour}" fill-opacity="0.55"><title>{e(name)}: {fmt_s(start_s)} - '
                     f'{fmt_s(end_s)} s</title></rect>')
        parts.append(f'<text class="barlabel" x="{x0 + 5:.1f}" y="{{ty}}">{e(name)}</text>')
    rows.append(("phases", parts))
    for f in faults:
        s0 = f.get("start_s")
        if s0 is None:
            continue
        s1 = f.get("end_s")
        x0, x1 = x.s(s0), x.s(s1 if s1 is not None else x.span_s)
        label = fault_label(str(f["name"]), f)
        dur = f"{fmt_s(f.get('duration_s'))} s" if s1 is not None else "never healed"
        target: str | None = f.get("target")
        title = f"{label} ({target}) " if target else f"{label} "
        parts = [f'<rect x="{x0:.1f}" y="{{y}}" width="{max(x1 - x0, 2):.1f}" height="18" rx="3" fill="{C_FAIL}" '
                 f'fill-opacity="0.75"><title>{e(title)}{fmt_s(s0)} - {fmt_s(s1)} s</title></rect>',
                 f'<text class="barlabel light" x="{x0 + 5:.1f}" y="{{ty}}">{e(label)} · {e(dur)}</text>']
        rows.append(("fault", parts))
    heal = rec.get("heal_us")
    if heal is not None:
        heal_s = (heal - x.t0) / 1e6
        parts = []
        conv = rec.get("convergence_s")
        avail = rec.get("availability_recovered_s")
        x_heal = x.s(heal_s)
        ends = [x_heal]
        words: list[str] = []
        if conv is not None:
            ends.append(x.s(heal_s + conv))
            parts.append(f'<rect x="{x_heal:.1f}" y="{{y}}" width="{max(ends[-1] - x_heal, 2):.1f}" height="8" '
                         f'fill="#16a34a"><title>converged {fmt_s(conv)} s after the heal</title></rect>')
            words.append(f"converged +{fmt_s(conv)} s")
        else:
            words.append("never converged")
        if avail is not None:
            ends.append(x.s(heal_s + avail))
            parts.append(f'<rect x="{x_heal:.1f}" y="{{y10}}" width="{max(ends[-1] - x_heal, 2):.1f}" height="8" '
                         f'fill="{C_OK}"><title>latency back to normal {fmt_s(avail)} s after the heal</title></rect>')
            words.append(f"latency normal +{fmt_s(avail)} s")
        text = " · ".join(words)
        bad = ' bad' if conv is None else ''
        tx = max(ends) + 6
        if tx + 6.2 * len(text) > L + PW:  # no room on the right: write it left of the heal
            parts.append(f'<text class="barlabel{bad}" x="{x_heal - 6:.1f}" y="{{ty}}" text-anchor="end">'
                         f'{e(text)}</text>')
        else:
            parts.append(f'<text class="barlabel{bad}" x="{tx:.1f}" y="{{ty}}">{e(text)}</text>')
        rows.append(("after heal", parts))
    top = 8
    height = top + row_h * len(rows) + 30
    body = [_shading(x, faults, {}, top, top + row_h * len(rows), labels=False),
            _x_axis(x, top, top + row_h * len(rows))]
    for i, (label, parts) in enumerate(rows):
        ry = top + i * row_h + 3
        body.append(f'<text class="rowlabel" x="{L - 6}" y="{ry + 13}" text-anchor="end">{e(label[:12])}</text>')
        for part in parts:
            body.append(part.replace("{y}", f"{ry}").replace("{ty}", f"{ry + 13}").replace("{y8}", f"{ry + 8}")
                        .replace("{y10}", f"{ry + 10}").replace("{y18}", f"{ry + 18}"))
    return _svg("timeline", height, "".join(body), "timeline of phases, faults and recovery")


# --------------------------------------------------------------------------- tables


def _cards(results: Results) -> str:
    phases = results.get("phases") or {}
    rec = results.get("recovery") or {}
    focus = "during" if "during" in phases else ("before" if "before" in phases else next(iter(phases), None))
    st: PhaseFigures = (phases.get(focus) if focus is not None else None) or {}
    thr = results.get("throughput")
    faults: list[FaultRecord] = results.get("faults") or []
    conv: float | None = rec.get("convergence_s")
    bound: float | None = rec.get("convergence_bound_s")
    avail: float | None = rec.get("availability_recovered_s")
    normal_ms: float | None = rec.get("normal_p99_ms")
    cards = [
        (f"p99 {focus or ''}", f"{fmt_ms(st.get('p99_ms'))} ms", f"p50 {fmt_ms(st.get('p50_ms'))} ms"),
        (f"error rate {focus or ''}", fmt_pct(st.get("error_rate")),
         f"{fmt_count(st.get('fail'))} failed, {fmt_count(st.get('unknown'))} unknown"),
        ("convergence", f"{fmt_s(conv)} s" if conv is not None else ("never" if faults else "-"),
         f"bound {fmt_s(bound)} s" if bound is not None
         else ("after heal" if faults else "no fault in this experiment")),
        ("latency back to normal", f"+{fmt_s(avail)} s" if avail is not None else ("never" if normal_ms else "-"),
         (f"after heal; {fmt_s(rec.get('availability_recovered_since_inject_s'))} s after injection "
          f"(p99 ≤ {fmt_ms(normal_ms)} ms)") if avail is not None
         else ("after heal" if faults else "no fault in this experiment")),
        ("throughput", f"{fmt_rate(thr.get('ok_per_s') if thr else None)}/s",
         f"1 s windows: {fmt_count(thr.get('min_ok_per_s') if thr else None)} - "
         f"{fmt_count(thr.get('max_ok_per_s') if thr else None)}/s"),
        ("operations", fmt_count((results.get("counts") or {}).get("ops")),
         f"{fmt_count((results.get('counts') or {}).get('applied_rows'))} rows applied"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{e(k)}</div><div class="v">{e(v)}</div><div class="s">{e(s)}</div></div>'
        for k, v, s in cards) + "</div>"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return e(f"{v:.6g}")
    if isinstance(v, dict | list):
        return e(json.dumps(v, separators=(",", ":")))
    return e("-" if v is None else str(v))


def _verdict_table(verdicts: Sequence[VerdictRecord]) -> str:
    """One row per verdict; its examples, when it has any, in a full-width row under it."""
    rows = []
    for v in verdicts:
        ok = bool(v["ok"])
        cls = "pass" if ok else "fail"
        counts = "".join(f'<span class="kv"><b>{e(str(k))}</b> {_cell(c)}</span>'
                         for k, c in (v.get("counts") or {}).items())
        badge = '<span class="badge pass">PASS</span>' if ok else '<span class="badge fail">FAIL</span>'
        name: str | None = v.get("name")
        message: str = v.get("message", "")
        rows.append(f'<tr class="verdict {cls}"><td class="name">{e(str(name))}</td>'
                    f"<td>{badge}</td><td>{e(str(message))}</td><td class=\"counts\">{counts}</td></tr>")
        examples = v.get("examples") or []
        if examples:
            cols = list(dict.fromkeys(k for ex in examples for k in ex))
            head = "".join(f"<th>{e(str(c))}</th>" for c in cols)
            body = "".join("<tr>" + "".join(f"<td>{_cell(ex.get(c))}</td>" for c in cols) + "</tr>" for ex in examples)
            rows.append(f'<tr class="examples-row {cls}"><td></td><td colspan="3"><details{"" if ok else " open"}>'
                        f'<summary>{len(examples)} example{"s" if len(examples) != 1 else ""} of '
                        f'{e(str(name))}'
                        f'</summary><table class="examples"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
                        f"</table></details></td></tr>")
    return ('<table class="verdicts" id="verdicts"><colgroup><col style="width:11%"><col style="width:7%">'
            '<col style="width:40%"><col style="width:42%"></colgroup><thead><tr>'
            "<th>invariant</th><th>result</th><th>message</th><th>counts</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _phase_table(phases: Mapping[str, PhaseFigures]) -> str:
    head = ("<tr><th>phase</th><th>window s</th><th>ops</th><th>ok</th><th>fail</th><th>unknown</th>"
            "<th>error rate</th><th>ok/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th>"
            "<th>max ms</th></tr>")
    rows = []
    for name, p in phases.items():
        colour = PHASE_COLOURS.get(name, "#c4b5fd")
        rows.append(
            f'<tr><td><span class="sw" style="background:{colour}"></span>{e(name)}</td>'
            f"<td>{fmt_s(p.get('start_s'))} - {fmt_s(p.get('end_s'))}</td><td>{fmt_count(p.get('ops'))}</td>"
            f"<td>{fmt_count(p.get('ok'))}</td><td>{fmt_count(p.get('fail'))}</td><td>{fmt_count(p.get('unknown'))}</td>"
            f"<td>{fmt_pct(p.get('error_rate'))}</td><td>{fmt_rate(p.get('throughput_ok_per_s'))}</td>"
            f"<td>{fmt_ms(p.get('p50_ms'))}</td><td>{fmt_ms(p.get('p90_ms'))}</td><td>{fmt_ms(p.get('p99_ms'))}</td>"
            f"<td>{fmt_ms(p.get('p999_ms'))}</td><td>{fmt_ms(p.get('max_ms'))}</td></tr>")
    return f'<table class="phases num"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _details(results: Results, folder: Path | None) -> str:
    versions = results.get("versions")
    images = (versions.get("images") if versions else None) or {}
    load: dict[str, Any] = results.get("load") or {}
    dl: list[tuple[str, str | float | None]] = [
        ("run id", results.get("run_id")), ("experiment", results.get("experiment")),
        ("started", results.get("started_at")), ("seed", results.get("seed")),
        ("defects", ", ".join(results.get("defects") or []) or "none"),
        ("wall time", f"{fmt_s(results.get('wall_s'))} s"), ("suite", versions.get("suite") if versions else None),
        ("pipeline", versions.get("pipeline") if versions else None),
        ("load", ", ".join(f"{k}={v}" for k, v in load.items()) if isinstance(load, dict) else str(load))]
    out = ['<dl class="details">']
    for k, v in dl:
        out.append(f"<dt>{e(k)}</dt><dd>{e('-' if v is None else str(v))}</dd>")
    out.append("</dl>")
    if images:
        out.append('<table class="images"><thead><tr><th>image</th><th>reference</th></tr></thead><tbody>')
        out += [f"<tr><td>{e(str(k))}</td><td><code>{e(str(v))}</code></td></tr>" for k, v in images.items()]
        out.append("</tbody></table>")
    links = [("history.jsonl", "history (JSONL)"), ("results.json", "results (JSON)"),
             ("summary.md", "summary (markdown)")]
    items = [f'<a href="{e(href)}">{e(label)}</a>' for href, label in links]
    if folder is not None and (folder / "logs").is_dir():
        logs = sorted(p.name for p in (folder / "logs").iterdir() if p.is_file())
        if logs:
            items.append("container logs: " + ", ".join(f'<a href="logs/{e(n)}">{e(n)}</a>' for n in logs))
    out.append('<p class="links">' + " · ".join(items) + "</p>")
    return "".join(out)


# --------------------------------------------------------------------------- page

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--pass:#15803d;--fail:#b91c1c;--bg:#fff;--panel:#f9fafb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:20px 24px 40px}
header.top{display:flex;align-items:center;gap:14px;flex-wrap:wrap;border-bottom:1px solid var(--line);
padding-bottom:12px}
h1{font-size:22px;margin:0;font-weight:650;word-break:break-all}
h2{font-size:16px;margin:26px 0 8px;font-weight:650}
.sub{color:var(--muted);font-size:13px;margin-top:6px}
.badge{display:inline-block;border-radius:4px;padding:1px 8px;font-weight:700;font-size:12px;letter-spacing:.04em}
.badge.pass{background:#dcfce7;color:var(--pass)}.badge.fail{background:#fee2e2;color:var(--fail)}
header .badge{font-size:15px;padding:3px 12px}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px;margin:16px 0 6px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .k{color:var(--muted);font-size:12px}.card .v{font-size:20px;font-weight:650;margin:2px 0}
.card .s{color:var(--muted);font-size:11.5px}
.chartbox{position:relative;border:1px solid var(--line);border-radius:8px;padding:6px 6px 0;margin-bottom:10px}
.chartbox h3{font-size:13px;margin:2px 6px 0;font-weight:600}
svg.chart{display:block;width:100%;height:auto}
svg .grid{stroke:#eef0f3;stroke-width:1}svg .minor{stroke:#f5f6f8;stroke-width:1}
svg .axis{stroke:#9ca3af;stroke-width:1}
svg .tick,svg .legend,svg .rowlabel{font-size:11px;fill:#4b5563}
svg .phase{stroke:#9ca3af;stroke-dasharray:3 3}
svg .phaselabel{font-size:11px;fill:#6b7280}svg .faultlabel{font-size:11px;fill:#b91c1c;font-weight:600}
svg .dots{fill:none;stroke-width:3.2;stroke-linecap:round;stroke-opacity:.35}
svg .dots.err{stroke-width:4.5;stroke-opacity:.9}
svg .line{fill:none;stroke-width:1.8;stroke-linejoin:round}
svg .barlabel{font-size:11px;fill:#111827}svg .barlabel.light{fill:#fff;font-weight:600}
svg .barlabel.bad{fill:#b91c1c;font-weight:600}
svg .cursor{stroke:#111827;stroke-width:1;stroke-dasharray:2 2;pointer-events:none}
#readout{position:sticky;top:0;z-index:2;background:#111827;color:#f9fafb;font-size:12px;border-radius:6px;
padding:5px 10px;margin:0 0 8px;min-height:26px;font-variant-numeric:tabular-nums}
#readout.idle{background:var(--panel);color:var(--muted);border:1px solid var(--line)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;font-size:12px;color:#374151}
table.num td,table.num th{text-align:right}table.num td:first-child,table.num th:first-child{text-align:left}
table.num td{font-variant-numeric:tabular-nums}
tr.fail td{background:#fef2f2}td.name{font-weight:600}tr.examples-row table.examples td{background:#fff}
.kv{display:inline-block;background:#f3f4f6;border-radius:4px;padding:0 6px;margin:1px 3px 1px 0;font-size:12px;
white-space:nowrap}.kv b{font-weight:500;color:#6b7280}
table.verdicts{table-layout:fixed}
table.examples{font-size:12px;margin-top:4px;table-layout:auto}
table.examples td,table.examples th{padding:2px 8px;overflow-wrap:anywhere}
tr.examples-row td{border-top:0;padding-top:0}
details summary{cursor:pointer;color:#374151}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
dl.details{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0 0 10px}
dl.details dt{color:var(--muted)}dl.details dd{margin:0;word-break:break-all}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.links a{color:#1d4ed8}.muted{color:var(--muted)}
.note{color:var(--muted);font-size:12px;margin:4px 2px}
@media (max-width:900px){.cards{grid-template-columns:repeat(3,1fr)}}
"""

JS = """
(function(){"use strict";
var D=JSON.parse(document.getElementById("chart-data").textContent);
var charts=Array.prototype.slice.call(document.querySelectorAll("svg.chart"));
var out=document.getElementById("readout");var idle=out.textContent;
function f(v,d){return v===null||v===undefined?"-":(+v).toFixed(d);}
function hide(){charts.forEach(function(s){s.querySelector(".cursor").style.display="none";});
out.textContent=idle;out.className="idle";}
function show(t){var x=D.L+(t/D.span)*D.PW;
charts.forEach(function(s){var c=s.querySelector(".cursor");c.setAttribute("x1",x);c.setAttribute("x2",x);
c.style.display="";});
var i=Math.min(D.p50.length-1,Math.max(0,Math.floor(t/D.w)));
var j=Math.min(D.ok.length-1,Math.max(0,Math.floor(t/D.tw)));
var ph="";for(var k=0;k<D.phases.length;k++){if(t>=D.phases[k][1])ph=D.phases[k][0];}
var lag="";for(var m=0;m<D.lag.length;m++){if(D.lag[m][0]<=t)lag=D.lag[m][1];}
out.className="";
out.textContent="t="+f(t,2)+" s  "+ph+"  |  p50 "+f(D.p50[i],1)+" ms  p99 "+f(D.p99[i],1)+" ms  max "+
f(D.max[i],1)+" ms  |  "+D.ok[j]+" acked/s  "+D.err[j]+" errors/s  |  in flight "+D.fl[i]+
(lag===""?"":"  consumer lag "+lag);}
charts.forEach(function(s){s.addEventListener("mousemove",function(ev){var p=s.createSVGPoint();
p.x=ev.clientX;p.y=ev.clientY;var q=p.matrixTransform(s.getScreenCTM().inverse());
var t=(q.x-D.L)/D.PW*D.span;if(t<0||t>D.span){hide();return;}show(t);});
s.addEventListener("mouseleave",hide);});
hide();})();
"""


def _r(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(v, digits)


def render_html(history: History, results: Results, folder: str | Path | None = None) -> str:
    """The experiment's page, from its history and its ``results.json`` document."""
    t0, t1 = time_span(history)
    t0 = results.get("t0_us") or t0
    samples_end = [s["t_us"] for s in results.get("samples") or [] if isinstance(s["t_us"], int)]
    t1 = max([t1, *samples_end])
    span = max(t1 - t0, 1_000_000)
    x = _X(t0, span)
    width = nice_width_us(span, MAX_WINDOWS)
    wins = windows_by_intended(history.ops, t0, t0 + span, width)
    latency = _latency_plot(history, x, wins, results)
    throughput, tseries = _throughput_plot(history, x, t0 + span, results.get("faults") or [])
    backlog, flight = _backlog_plot(history, x, wins, results)
    timeline = _timeline(x, results)
    experiment: str | None = results.get("experiment")
    name = str(experiment or history.meta.get("experiment") or "experiment")
    passed: bool | None = results.get("ok")
    ok = bool(passed)
    failed: Sequence[str] = (results.get("failed")
                             or [v["name"] for v in results.get("verdicts") or [] if not v["ok"]])
    badge = '<span class="badge pass">PASS</span>' if ok else '<span class="badge fail">FAIL</span>'
    faults = results.get("faults") or []

    def fault_text(f: FaultRecord) -> str:
        duration: float | None = f.get("duration_s")
        return (f"{fault_label(str(f['name']), f)} at {fmt_s(f.get('start_s'))} s for "
                f"{fmt_s(duration) + ' s' if duration is not None else 'ever (never healed)'}")

    fault_txt = "; ".join(fault_text(f) for f in faults) or "no fault"
    run_id: str | None = results.get("run_id")
    seed: int | None = results.get("seed")
    versions = results.get("versions")
    pipeline: str | None = versions.get("pipeline") if versions else None
    sub = (f"run {e(str(run_id or '-'))} · {e(fault_txt)} · defects "
           f"{e(', '.join(results.get('defects') or []) or 'none')} · seed {e(str(seed))} · pipeline "
           f"{e(str(pipeline or '-'))}")
    if failed:
        sub += f' · <b style="color:#b91c1c">failed: {e(", ".join(map(str, failed)))}</b>'
    phase_starts: list[list[str | float]] = [[n, start_s] for n, p in (results.get("phases") or {}).items()
                                             if (start_s := p.get("start_s")) is not None]
    data = {
        "L": L, "PW": PW, "span": round(span / 1e6, 4), "w": width / 1e6, "tw": tseries["width_us"][0] / 1e6,
        "p50": [_r(w.percentile_ms(0.5)) for w in wins], "p99": [_r(w.percentile_ms(0.99)) for w in wins],
        "max": [_r(w.percentile_ms(1.0)) for w in wins], "fl": flight,
        "ok": tseries["ok"], "err": tseries["err"],
        "phases": phase_starts,
        "lag": [[round((s["t_us"] - t0) / 1e6, 2), s["consumer_lag"]] for s in results.get("samples") or []
                if isinstance(s["t_us"], int) and s["consumer_lag"] is not None],
    }
    data_json = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    folder_path = Path(folder) if folder is not None else None
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{e(name)} - {"PASS" if ok else "FAIL"}</title>
<style>{CSS}</style></head>
<body><main>
<header class="top"><h1>{e(name)}</h1>{badge}</header>
<div class="sub">{sub}</div>
{_cards(results)}
<h2>Over time</h2>
<div id="readout" class="idle">hover over a plot to read the values at one instant</div>
<div class="chartbox"><h3>Latency (from the intended start, log scale)</h3>{latency}</div>
<div class="chartbox"><h3>Throughput</h3>{throughput}</div>
<div class="chartbox"><h3>Backlog</h3>{backlog}</div>
<div class="chartbox"><h3>Timeline</h3>{timeline}</div>
<h2>Verdicts</h2>
{_verdict_table(results.get("verdicts") or [])}
<h2>Phases</h2>
{_phase_table(results.get("phases") or {})}
<h2>Run</h2>
{_details(results, folder_path)}
</main>
<script type="application/json" id="chart-data">{data_json}</script>
<script>{JS}</script>
</body></html>
"""
