"""``python -m chaos.report``: compare result sets, rebuild pages, write a run's index, take a screenshot.

    python -m chaos.report compare A B [--threshold 0.2] [--variants] [--format text|markdown|json]
    python -m chaos.report render PATH [--out DIR]      rebuild report.html, summary.md, results.json
    python -m chaos.report index RUN                    write RUN/index.html, summary.md and metrics.prom
    python -m chaos.report screenshot PAGE.html OUT.png [--width 1280] [--hover X,Y]

Exit status: 0 success; 1 regression (compare); 2 bad input, with one message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.report import compare


def _render(args: argparse.Namespace) -> int:
    from chaos.report import render_folder
    from chaos.report.index import write_run_index

    src = Path(args.path)
    if not src.is_dir():
        raise ValueError(f"{src}: not a folder (expected an experiment folder or a run folder)")
    if (src / "results.json").is_file():
        page = render_folder(src, args.out)
        print(page)
        return 0
    subs = sorted(p for p in src.iterdir() if (p / "results.json").is_file() and (p / "history.jsonl").is_file())
    if not subs:
        raise ValueError(f"{src}: no experiment folder (results.json + history.jsonl) in it")
    dest = Path(args.out) if args.out else src
    for sub in subs:
        print(render_folder(sub, dest / sub.name if args.out else None))
    index, _ = write_run_index(dest, step_summary="")
    print(index)
    return 0


def _index(args: argparse.Namespace) -> int:
    from chaos.report.index import write_run_index
    from chaos.report.metrics import METRICS_NAME

    run = Path(args.run)
    if not run.is_dir():
        raise ValueError(f"{run}: not a folder")
    index, summary = write_run_index(run, step_summary="")
    print(index)
    print(summary)
    print(run / METRICS_NAME)
    return 0


def _screenshot(args: argparse.Namespace) -> int:
    from chaos.report.browser import BrowserError, inspect_page

    page = Path(args.page)
    if not page.is_file():
        raise ValueError(f"{page}: no such file")
    hover = None
    if args.hover:
        try:
            hx, hy = (float(v) for v in args.hover.split(","))
        except ValueError:
            raise ValueError(f"--hover {args.hover!r}: expected X,Y in CSS pixels") from None
        hover = (hx, hy)
    try:
        check = inspect_page(page, screenshot=True, width=args.width, hover=hover)
    except BrowserError as exc:
        raise ValueError(str(exc)) from None
    assert check.screenshot is not None
    Path(args.out).write_bytes(check.screenshot)
    for err in check.errors:
        print(f"console: {err}", file=sys.stderr)
    print(args.out)
    return 1 if check.errors or check.foreign_requests else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.report", description="Reports of the pipeline chaos suite.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="two runs or variants side by side; exit 1 on regression",
                       description=compare.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_arguments(c)
    r = sub.add_parser("render", help="rebuild the page, summary and results.json from history.jsonl + results.json")
    r.add_argument("path", help="an experiment folder, or a run folder (every experiment + the index)")
    r.add_argument("--out", help="write into this folder instead of in place")
    i = sub.add_parser("index", help="write a run folder's index.html, summary.md and metrics.prom")
    i.add_argument("run", help="reports/<run id>")
    s = sub.add_parser("screenshot", help="a PNG of a page, taken by headless Chromium")
    s.add_argument("page")
    s.add_argument("out")
    s.add_argument("--width", type=int, default=1280)
    s.add_argument("--hover", help="move the mouse to X,Y (CSS pixels) first, to show the readout")
    args = p.parse_args(argv)
    if args.cmd == "compare":
        return compare.run(args)
    try:
        return {"render": _render, "index": _index, "screenshot": _screenshot}[args.cmd](args)
    except ValueError as exc:
        print(f"chaos.report {args.cmd}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
