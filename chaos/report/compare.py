"""Compare two result sets side by side: two runs, two experiments, or two pipeline variants in one run.

``python -m chaos.report compare A B [--threshold 0.2] [--variants]``

* ``A`` and ``B`` are each a run folder (``reports/<run id>``: every sub-folder with a ``results.json``),
  one experiment folder, or a ``results.json`` file. Runs are paired by experiment name; two single
  experiments are compared whatever their names.
* ``--variants`` compares the correct pipeline with its defect variants: experiments without defects
  on the A side, experiments with defects on the B side (``B`` defaults to ``A``, one run holding both),
  paired by the experiment name without the defect suffix (folders of variants are named
  ``<name>-<defect>[+<defect>...]``).

For each pair and each phase (``warmup`` excluded unless ``--phases`` names it): p50, p99, error rate and
throughput, then convergence and availability recovery after the heal, each with A, B, the absolute and
the relative delta. A change is a **regression** when it is worse (higher latency, error rate or
recovery time; lower throughput) by more than ``--threshold`` (relative, default 20%) *and* by more than
a noise floor (absolute): 25 ms of latency, 0.5 percentage points of error rate, 5 ops/s of throughput,
1 s of recovery time. The floors exist because single runs on a shared 2-core machine differ: the same
correct pipeline gave a Postgres-outage p99 of 24 ms in one run and 36 ms in the next, +50% but noise.
An invariant that passed in A and fails in B is always a regression; a measure that had a value in A and
none in B (never converged, no operation acknowledged) is too.

Exit status: 0 without regression, 1 with at least one, 2 on bad input (one message on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaos.history import History
from chaos.report.fmt import fmt_ms, fmt_pct, fmt_rate, fmt_s
from chaos.report.markdown import md_escape
from chaos.report.results import SCHEMA_VERSION, load_results, rebuild_results
from chaos.report.schema import FaultRecord, Results

__all__ = [
    "Comparison",
    "Delta",
    "Floors",
    "PairResult",
    "VerdictChange",
    "compare_pair",
    "compare_sets",
    "format_markdown",
    "format_text",
    "load_side",
    "main",
]

DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True)
class Floors:
    """Absolute changes below these are noise, whatever their relative size."""

    latency_ms: float = 25.0
    error_rate: float = 0.005
    throughput: float = 5.0
    seconds: float = 1.0

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


# (key, label, kind, higher is worse)
PHASE_METRICS: tuple[tuple[Literal["p50_ms", "p99_ms", "error_rate", "throughput_ok_per_s"], str, str, bool], ...] = (
    ("p50_ms", "p50 ms", "latency_ms", True),
    ("p99_ms", "p99 ms", "latency_ms", True),
    ("error_rate", "error rate", "error_rate", True),
    ("throughput_ok_per_s", "ok/s", "throughput", False),
)
RUN_METRICS: tuple[tuple[Literal["convergence_s", "availability_recovered_s"], str, str, bool], ...] = (
    ("convergence_s", "convergence s", "seconds", True),
    ("availability_recovered_s", "latency normal s", "seconds", True),
)


@dataclass
class Delta:
    phase: str  # "" for the experiment-level measures
    metric: str
    kind: str
    a: float | None
    b: float | None
    abs: float | None
    rel: float | None  # None when A is 0 or absent
    regression: bool = False
    improvement: bool = False
    note: str = ""


@dataclass
class VerdictChange:
    name: str
    a_ok: bool | None  # None: A has no such verdict
    b_ok: bool | None
    message: str
    regression: bool


@dataclass
class PairResult:
    name: str
    a_name: str
    b_name: str
    a_ok: bool
    b_ok: bool
    b_defects: list[str]
    deltas: list[Delta] = field(default_factory=list)
    verdicts: list[VerdictChange] = field(default_factory=list)

    @property
    def regressions(self) -> int:
        return sum(d.regression for d in self.deltas) + sum(v.regression for v in self.verdicts)


@dataclass
class Comparison:
    a_label: str
    b_label: str
    threshold: float
    floors: Floors
    pairs: list[PairResult]
    only_a: list[str]
    only_b: list[str]

    @property
    def regressions(self) -> int:
        return sum(p.regressions for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a_label, "b": self.b_label, "threshold": self.threshold, "floors": asdict(self.floors),
                "regressions": self.regressions, "only_a": self.only_a, "only_b": self.only_b,
                "pairs": [{**asdict(p), "regressions": p.regressions} for p in self.pairs]}


# --------------------------------------------------------------------------- loading and pairing


@dataclass
class Side:
    label: str
    experiments: dict[str, Results]  # folder/experiment name -> results
    single: bool


def load_side(path: str | Path) -> Side:
    """A run folder, an experiment folder or a results.json; ValueError with one clear message otherwise."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file or folder")
    if p.is_file() or (p / "results.json").is_file():
        folder = p.parent if p.is_file() else p
        r = _load(folder, p)
        name = str(_experiment(r) or folder.name)
        return Side(str(p), {name: r}, single=True)
    found = sorted(sub for sub in p.iterdir() if (sub / "results.json").is_file())
    if not found:
        raise ValueError(f"{p}: neither a results.json nor a folder holding experiment folders with one "
                         f"(expected reports/<run id> or reports/<run id>/<experiment>)")
    exps: dict[str, Results] = {}
    for sub in found:
        exps[sub.name] = _load(sub, sub)
    return Side(str(p), exps, single=False)


def _load(folder: Path, path: Path) -> Results:
    """A results document; one of an older schema is brought up to date from its history when it is there."""
    r = load_results(path)
    if r.get("schema_version", 1) < SCHEMA_VERSION and (folder / "history.jsonl").is_file():
        with contextlib.suppress(ValueError):  # an unreadable history: compare what the file says
            r = rebuild_results(r, History.read_jsonl(folder / "history.jsonl"))
    return r


def _experiment(r: Results) -> str | None:
    return r.get("experiment")


def _defects(r: Results) -> list[str]:
    return r.get("defects") or []


def _faults(r: Results) -> list[FaultRecord]:
    return r.get("faults") or []


def base_name(name: str, defects: Sequence[str]) -> str:
    """The experiment name without its defect suffix (``test_x-commit_before_write`` -> ``test_x``)."""
    if defects:
        suffix = "-" + "+".join(defects)
        if name.endswith(suffix):
            return name[: -len(suffix)]
        for d in defects:
            if name.endswith("-" + d):
                return name[: -len(d) - 1]
    return name


def _pairs(a: Side, b: Side, variants: bool) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """(pair name, key in A, key in B) plus the keys left unpaired on each side."""
    if variants:
        correct = {k: r for k, r in a.experiments.items() if not _defects(r)}
        broken = {k: r for k, r in b.experiments.items() if _defects(r)}
        if not correct:
            raise ValueError(f"{a.label}: --variants needs experiments of the correct pipeline (no defects) on "
                             f"the A side; found none")
        if not broken:
            raise ValueError(f"{b.label}: --variants needs experiments with defects on the B side; found none")
        by_base: dict[str, str] = {}
        for k, r in correct.items():
            by_base.setdefault(base_name(str(_experiment(r) or k), []), k)
            by_base.setdefault(k, k)
        out: list[tuple[str, str, str]] = []
        used: set[str] = set()
        only_b: list[str] = []
        for k, r in sorted(broken.items()):
            base = base_name(k, _defects(r))
            ka = by_base.get(base) or by_base.get(base_name(str(_experiment(r) or k), _defects(r)))
            if ka is None:
                only_b.append(k)
                continue
            used.add(ka)
            out.append((base, ka, k))
        return out, sorted(set(correct) - used), only_b
    if a.single and b.single:
        (ka,), (kb,) = a.experiments, b.experiments
        return [(ka, ka, kb)], [], []
    common = [k for k in a.experiments if k in b.experiments]
    return ([(k, k, k) for k in common], sorted(set(a.experiments) - set(common)),
            sorted(set(b.experiments) - set(common)))


# --------------------------------------------------------------------------- comparing


def _num(v: float | None) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        return None
    return float(v)


def _delta(phase: str, label: str, kind: str, worse_up: bool, a: float | None, b: float | None,
           threshold: float, floors: Floors, none_means: str) -> Delta:
    d = Delta(phase, label, kind, a, b, None, None)
    if a is None and b is None:
        return d
    if b is None:
        d.regression, d.note = True, f"B {none_means}"
        return d
    if a is None:
        d.improvement, d.note = True, f"A {none_means}"
        return d
    d.abs = b - a
    d.rel = d.abs / a if a != 0 else None
    worse = d.abs > 0 if worse_up else d.abs < 0
    big = abs(d.abs) > floors.of(kind) and (d.rel is None or abs(d.rel) > threshold)
    d.regression = worse and big
    d.improvement = (not worse) and big and d.abs != 0
    return d


def _recovery(r: Results, key: Literal["convergence_s", "availability_recovered_s"]) -> float | None:
    rec = r.get("recovery") or {}
    if key == "convergence_s":
        return _num(rec.get("convergence_s", r.get("convergence_s")))
    return _num(rec.get(key))


def compare_pair(name: str, a: Results, b: Results, *, threshold: float = DEFAULT_THRESHOLD,
                 floors: Floors | None = None, phases: Sequence[str] | None = None) -> PairResult:
    """Compare one experiment's results ``a`` (baseline) with ``b``."""
    floors = floors or Floors()
    a_passed: bool | None = a.get("ok")
    b_passed: bool | None = b.get("ok")
    pr = PairResult(name, str(_experiment(a)), str(_experiment(b)), bool(a_passed), bool(b_passed),
                    list(_defects(b)))
    va = {str(v["name"]): v for v in a.get("verdicts") or []}
    vb = {str(v["name"]): v for v in b.get("verdicts") or []}
    for vname in list(dict.fromkeys([*va, *vb])):
        a_ok = bool(va[vname]["ok"]) if vname in va else None
        b_ok = bool(vb[vname]["ok"]) if vname in vb else None
        if a_ok == b_ok:
            continue
        verdict = vb.get(vname) or va.get(vname)
        message: str = verdict.get("message", "") if verdict else ""
        msg = str(message)
        pr.verdicts.append(VerdictChange(vname, a_ok, b_ok, msg, regression=b_ok is False))
    pa, pb = a.get("phases") or {}, b.get("phases") or {}
    wanted = list(phases) if phases is not None else [p for p in dict.fromkeys([*pa, *pb]) if p != "warmup"]
    for ph in wanted:
        if ph not in pa or ph not in pb:
            if ph in pa or ph in pb:
                pr.deltas.append(Delta(ph, "phase", "", None, None, None, None,
                                       note=f"only in {'A' if ph in pa else 'B'}"))
            continue
        for key, label, kind, worse_up in PHASE_METRICS:
            va_, vb_ = _num(pa[ph].get(key)), _num(pb[ph].get(key))
            pr.deltas.append(_delta(ph, label, kind, worse_up, va_, vb_, threshold, floors,
                                    "has no acknowledged op"))
    has_fault = bool(_faults(a)) or bool(_faults(b))
    if has_fault:
        for rkey, label, kind, worse_up in RUN_METRICS:
            none_means = "never converged" if rkey == "convergence_s" else "never back to normal"
            da = _delta("", label, kind, worse_up, _recovery(a, rkey), _recovery(b, rkey), threshold, floors,
                        none_means)
            if rkey != "convergence_s" and ("recovery" not in a or "recovery" not in b):
                da.regression = da.improvement = False  # schema 1 files do not carry it: nothing to compare
                da.note = "not recorded"
            pr.deltas.append(da)
    return pr


def compare_sets(a: Side, b: Side, *, variants: bool = False, threshold: float = DEFAULT_THRESHOLD,
                 floors: Floors | None = None, phases: Sequence[str] | None = None) -> Comparison:
    pairs, only_a, only_b = _pairs(a, b, variants)
    if not pairs:
        raise ValueError(f"nothing to compare: no experiment of {a.label} pairs with one of {b.label} "
                         f"(A has {sorted(a.experiments)}, B has {sorted(b.experiments)})"
                         + ("" if variants else "; for a correct and a defective pipeline in one run use --variants"))
    results = [compare_pair(name, a.experiments[ka], b.experiments[kb], threshold=threshold, floors=floors,
                            phases=phases) for name, ka, kb in pairs]
    return Comparison(a.label, b.label, threshold, floors or Floors(), results, only_a, only_b)


# --------------------------------------------------------------------------- output


def _fmt(kind: str, v: float | None) -> str:
    if v is None:
        return "-"
    if kind == "latency_ms":
        return fmt_ms(v)
    if kind == "error_rate":
        return fmt_pct(v)
    if kind == "throughput":
        return fmt_rate(v)
    return fmt_s(v)


def _fmt_abs(kind: str, v: float | None) -> str:
    if v is None:
        return "-"
    if kind == "error_rate":
        text = f"{abs(v) * 100:.2f}".rstrip("0").rstrip(".")
        unit = " pp"
    else:
        text, unit = _fmt(kind, abs(v)), ""
    if text.strip("0.,") == "":
        return f"±0{unit}"
    return ("+" if v > 0 else "-") + text + unit


def _fmt_rel(d: Delta) -> str:
    if d.rel is None:
        return "new" if d.abs else "-"
    text = f"{d.rel * 100:+.0f}%"
    return "±0%" if text in ("+0%", "-0%") else text


def _flag(d: Delta | VerdictChange) -> str:
    if d.regression:
        return "REGRESSION"
    if isinstance(d, Delta) and d.improvement:
        return "better"
    return ""


def _verdict_flag(v: VerdictChange) -> str:
    if v.regression:
        return "REGRESSION"
    if v.a_ok is None:
        return "new"
    if v.b_ok is None:
        return "gone"
    return "better"


def _ok_word(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "FAIL")


def _who(p: PairResult) -> str:
    """What is compared, when the names alone do not say it."""
    bits = []
    if p.a_name != p.name:
        bits.append(f"A = {p.a_name}")
    if p.b_name != p.name:
        bits.append(f"B = {p.b_name}")
    if p.b_defects:
        bits.append(f"B defects: {', '.join(p.b_defects)}")
    return f"  [{'; '.join(bits)}]" if bits else ""


def _floors_text(c: Comparison) -> str:
    f = c.floors
    return (f"a regression is worse by more than {c.threshold:.0%} and by more than the noise floor "
            f"(latency {f.latency_ms:g} ms, error rate {f.error_rate * 100:g} pp, throughput {f.throughput:g}/s, "
            f"recovery {f.seconds:g} s); an invariant passing in A and failing in B always is one")


def format_text(c: Comparison) -> str:
    lines = [f"A: {c.a_label}", f"B: {c.b_label}", _floors_text(c), ""]
    for p in c.pairs:
        lines.append(f"== {p.name}: A {'PASS' if p.a_ok else 'FAIL'} -> B {'PASS' if p.b_ok else 'FAIL'}"
                     f"{_who(p)}")
        if p.verdicts:
            lines.append(f"   {'invariant':<16}{'A':>6}{'B':>6}")
            for v in p.verdicts:
                lines.append(f"   {v.name:<16}{_ok_word(v.a_ok):>6}{_ok_word(v.b_ok):>6}  {_verdict_flag(v):<11}"
                             f" {v.message}")
            lines.append(f"   {'phase':<10}{'metric':<18}{'A':>10}{'B':>10}{'delta':>12}{'rel':>8}")
        last_phase = None
        for d in p.deltas:
            ph = (d.phase or "recovery") if d.phase != last_phase else ""
            last_phase = d.phase
            if d.metric == "phase":
                lines.append(f"   {ph:<10}{'(' + d.note + ')':<18}")
                continue
            flag = _flag(d)
            note = f"  ({d.note})" if d.note else ""
            lines.append(f"   {ph:<10}{d.metric:<18}{_fmt(d.kind, d.a):>10}{_fmt(d.kind, d.b):>10}"
                         f"{_fmt_abs(d.kind, d.abs):>12}{_fmt_rel(d):>8}  {flag}{note}".rstrip())
        lines.append("")
    for label, keys in (("only in A", c.only_a), ("only in B", c.only_b)):
        if keys:
            lines.append(f"{label} (not compared): {', '.join(keys)}")
    n_bad = sum(1 for p in c.pairs if p.regressions)
    lines.append(f"RESULT: {'REGRESSION' if c.regressions else 'no regression'}: {c.regressions} regression"
                 f"{'s' if c.regressions != 1 else ''} in {n_bad} of {len(c.pairs)} compared experiment"
                 f"{'s' if len(c.pairs) != 1 else ''}")
    return "\n".join(lines) + "\n"


def format_markdown(c: Comparison) -> str:
    icon = "❌" if c.regressions else "✅"
    lines = [f"## {icon} compare: {c.regressions} regression{'s' if c.regressions != 1 else ''}", "",
             f"A: `{md_escape(c.a_label)}`  ", f"B: `{md_escape(c.b_label)}`  ", "", _floors_text(c) + ".", ""]
    for p in c.pairs:
        lines.append(f"### `{md_escape(p.name)}`: A {'PASS' if p.a_ok else 'FAIL'} → B {'PASS' if p.b_ok else 'FAIL'}"
                     f"{md_escape(_who(p))}")
        lines.append("")
        if p.verdicts:
            lines += ["| invariant | A | B | | detail |", "|---|---|---|---|---|"]
            lines += [f"| {md_escape(v.name)} | {_ok_word(v.a_ok)} | {_ok_word(v.b_ok)} | "
                      f"{'**REGRESSION**' if v.regression else _verdict_flag(v)} | {md_escape(v.message)} |"
                      for v in p.verdicts]
            lines.append("")
        lines += ["| phase | metric | A | B | Δ | Δ% | |", "|---|---|--:|--:|--:|--:|---|"]
        for d in p.deltas:
            if d.metric == "phase":
                lines.append(f"| {md_escape(d.phase)} | ({md_escape(d.note)}) | | | | | |")
                continue
            flag = "**REGRESSION**" if d.regression else ("better" if d.improvement else "")
            if d.note:
                flag = f"{flag} {d.note}".strip()
            lines.append(f"| {md_escape(d.phase or 'recovery')} | {d.metric} | {_fmt(d.kind, d.a)} | "
                         f"{_fmt(d.kind, d.b)} | {_fmt_abs(d.kind, d.abs)} | {_fmt_rel(d)} | {flag} |")
        lines.append("")
    for label, keys in (("only in A", c.only_a), ("only in B", c.only_b)):
        if keys:
            lines.append(f"{label} (not compared): {', '.join(f'`{md_escape(k)}`' for k in keys)}  ")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="baseline: a run folder, an experiment folder or a results.json")
    p.add_argument("b", metavar="B", nargs="?", help="candidate, same kinds (with --variants: defaults to A)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="relative change that counts as a regression (default 0.2 = 20%%)")
    p.add_argument("--variants", action="store_true",
                   help="compare the correct pipeline (A) with its defect variants (B, default A) by base name")
    p.add_argument("--phases", help="comma-separated phases to compare (default: all but warmup)")
    p.add_argument("--min-latency-ms", type=float, default=Floors.latency_ms, help="latency noise floor (ms)")
    p.add_argument("--min-error-rate", type=float, default=Floors.error_rate,
                   help="error-rate noise floor (fraction, 0.005 = 0.5 percentage points)")
    p.add_argument("--min-throughput", type=float, default=Floors.throughput, help="throughput noise floor (ops/s)")
    p.add_argument("--min-seconds", type=float, default=Floors.seconds, help="recovery-time noise floor (s)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output format")
    p.add_argument("--output", "-o", help="also write the output to this file (e.g. $GITHUB_STEP_SUMMARY)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.b is None and not args.variants:
            raise ValueError("compare needs two result sets (A and B), or one run with --variants")
        if not 0 <= args.threshold < 100:
            raise ValueError(f"--threshold {args.threshold} is not a fraction such as 0.2")
        a = load_side(args.a)
        b = load_side(args.b) if args.b is not None else a
        phases = [p.strip() for p in args.phases.split(",") if p.strip()] if args.phases else None
        floors = Floors(args.min_latency_ms, args.min_error_rate, args.min_throughput, args.min_seconds)
        c = compare_sets(a, b, variants=args.variants, threshold=args.threshold, floors=floors, phases=phases)
    except ValueError as exc:
        print(f"chaos.report compare: error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        out = json.dumps(c.to_dict(), indent=2) + "\n"
    elif args.format == "markdown":
        out = format_markdown(c)
    else:
        out = format_text(c)
    sys.stdout.write(out)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(out)
    return 1 if c.regressions else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.report compare", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))
