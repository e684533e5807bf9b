"""Which experiments of a tier catch a defect, and by which verdicts: the gate (or another tier) run once
per defect with the defect switched on in every experiment.

    uv run python bench/defect_reach.py cached_reads unchecked_version [--tier gate] [--pipeline ...]

For each defect it runs ``pytest chaos/experiments --chaos-defects=<defect>`` into a report folder of its
own, then prints one row per experiment that failed, with its failing verdicts (``hypothesis`` when the
experiment's own check failed with every verdict passing). This answers "would the catalogue have caught
this bug, and how", for a defect written independently of the experiments; the detection matrix instead
repeats only the pairs an adapter names in ``Defect.catches``. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def failing(run_dir: Path) -> dict[str, list[str]]:
    """experiment folder -> names of its failed verdicts, from each results.json of one run."""
    out: dict[str, list[str]] = {}
    for res in sorted(run_dir.glob("*/results.json")):
        doc = json.loads(res.read_text(encoding="utf-8"))
        names = [v["name"] for v in doc.get("verdicts", []) if not v.get("ok")]
        if not names and doc.get("ok") is False:
            names = ["hypothesis"]
        if names:
            out[res.parent.name] = names
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("defects", nargs="+")
    ap.add_argument("--tier", default="gate")
    ap.add_argument("--pipeline", default="")
    args = ap.parse_args()
    rows: list[str] = ["| defect | experiments run | caught by (failing verdicts) |", "|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="defect-reach-") as tmp:
        for defect in args.defects:
            reports = Path(tmp) / defect
            cmd = [sys.executable, "-m", "pytest", "chaos/experiments", "-q", "-p", "no:cacheprovider",
                   f"--chaos-tier={args.tier}", f"--chaos-defects={defect}", f"--chaos-report-dir={reports}"]
            if args.pipeline:
                cmd.append(f"--chaos-pipeline={args.pipeline}")
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=False)
            runs = [d for d in reports.iterdir() if d.is_dir()] if reports.exists() else []
            if not runs:
                rows.append(f"| `{defect}` | 0 | (no run: see the output above) |")
                continue
            run_dir = max(runs, key=lambda d: d.stat().st_mtime)
            ran = len(list(run_dir.glob("*/results.json")))
            caught = failing(run_dir)
            where = "; ".join(f"`{e.removeprefix('test_').rsplit('-', 1)[0]}`: {', '.join(v)}"
                              for e, v in caught.items()) or "**none**"
            rows.append(f"| `{defect}` | {ran} | {where} |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
