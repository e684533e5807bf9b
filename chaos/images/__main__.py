"""``python -m chaos.images [ensure|status|tools]``: build or report the images this run would use.

``ensure`` builds or pulls what is missing (nothing when every image is current), ``status`` reports and
exits 1 when something is missing, ``tools`` prints the host commands the missing images need to be built
(one per line: ``<tool> <image>,...``; nothing when none is needed), which the set-up script installs or
names before anything is built. The pipeline's own images come from its adapter (``--pipeline``,
``CHAOS_PIPELINE`` or ``[tool.pipeline-chaos] pipeline``).
"""

from __future__ import annotations

import argparse
import sys
import time

from chaos.adapter import Pipeline, load_pipeline
from chaos.config import Settings
from chaos.images import ImageError, needed_tools, resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.images", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("ensure", "status", "tools"), nargs="?", default="ensure",
                        help="ensure: build/pull what is missing (no-op when current); status: report only; "
                             "tools: the host tools the missing images need")
    parser.add_argument("--pipeline", help="the pipeline's adapter (module:attr or an entry point name)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(pipeline=args.pipeline)
        pipeline: Pipeline | None = load_pipeline(settings.pipeline) if settings.pipeline else None
        if args.command == "tools":
            for tool, images in needed_tools(settings, pipeline).items():
                print(f"{tool} {','.join(images)}")
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
