"""``python -m chaos.images [ensure|status|plan]``: build or report the images this run would use.

``ensure`` builds or pulls what is missing (nothing when every image is current), ``status`` reports and
exits 1 when something is missing, ``plan`` prints what ``ensure`` would need, for the set-up script:
``source <local|official>``, then ``need <tool> <Debian package> <what needs it>`` per host tool a missing
image's build runs, and ``base_by_hand <command>`` (making the Debian base without the suite). The
pipeline's own images come from its adapter (``--pipeline``, ``CHAOS_PIPELINE`` or ``[tool.pipeline-chaos]
pipeline``).
"""

from __future__ import annotations

import argparse
import sys
import time

from chaos.adapter import Pipeline, load_pipeline
from chaos.config import Settings
from chaos.images import ImageError, build_plan, resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.images", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("ensure", "status", "plan"), nargs="?", default="ensure",
                        help="ensure: build/pull what is missing (no-op when current); status: report only; "
                             "plan: the source and the host tools the missing images need")
    parser.add_argument("--pipeline", help="the pipeline's adapter (module:attr or an entry point name)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(pipeline=args.pipeline)
        pipeline: Pipeline | None = load_pipeline(settings.pipeline) if settings.pipeline else None
        if args.command == "plan":
            plan = build_plan(settings, pipeline)
            print("source", plan.source)
            for tool, package, what in plan.needs:
                print("need", tool, package, what)
            print("base_by_hand", plan.base_by_hand)
            return 0
        started = time.monotonic()
        images = resolve(settings, pipeline, build=args.command == "ensure",
                         log=lambda m: print(f"[images] {m}", flush=True))
    except (ImageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if args.command != "status" else 1
    print(f"[images] source={images.source} ({time.monotonic() - started:.1f} s)")
    for role, ref in images.all_refs().items():
        print(f"[images]   {role:<18} {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
