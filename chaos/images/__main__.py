"""``python -m chaos.images [ensure|status]``: build or report the images this run would use."""

from __future__ import annotations

import argparse
import sys
import time

from chaos.config import Settings
from chaos.images import ImageError, resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.images", description=__doc__)
    parser.add_argument("command", choices=("ensure", "status"), nargs="?", default="ensure",
                        help="ensure: build/pull what is missing (no-op when current); status: report only")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        started = time.monotonic()
        images = resolve(settings, build=args.command == "ensure",
                         log=lambda m: print(f"[images] {m}", flush=True))
    except (ImageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"[images] source={images.source} ({time.monotonic() - started:.1f} s)")
    for role, ref in images.refs.items():
        print(f"[images]   {role:<10} {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
