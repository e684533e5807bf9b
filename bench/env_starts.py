"""Start and tear down the environment N times; count the starts that fail.

    uv run python bench/env_starts.py 100

Each start is a full ``Environment.start()`` (three KRaft brokers, Postgres, Toxiproxy, the disks
keeper) followed by ``stop()``; a start that raises counts as a failure and its error is printed. After
each stop the run's labelled containers, networks and volumes are counted: any left is a failure too.
Prints ``N starts, F failures, median S s`` (the median over the starts that succeeded). A measurement,
not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from chaos.adapter import load_pipeline
from chaos.config import Settings
from chaos.env import LABEL_RUN, Environment
from chaos.images import resolve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="how many starts")
    args = ap.parse_args()
    settings = Settings.from_env()
    pipeline = load_pipeline(settings.pipeline)
    images = resolve(settings, pipeline)
    times: list[float] = []
    failures = 0
    for i in range(1, args.n + 1):
        env = Environment(settings, images, pipeline)
        t0 = time.monotonic()
        try:
            env.start()
            times.append(time.monotonic() - t0)
        except Exception as exc:
            failures += 1
            print(f"start {i}: FAILED: {exc}", file=sys.stderr, flush=True)
        finally:
            env.stop()
        assert env.client is not None
        flt = {"label": f"{LABEL_RUN}={env.run_id}"}
        left = (env.client.containers.list(all=True, filters=flt) + env.client.networks.list(filters=flt)
                + env.client.volumes.list(filters=flt))
        if left:
            failures += 1
            print(f"start {i}: left behind: {left}", file=sys.stderr, flush=True)
        if i % 10 == 0 or i == args.n:
            print(f"  {i} done, {failures} failures so far", flush=True)
    median = statistics.median(times) if times else float("nan")
    print(f"{args.n} starts, {failures} failures, median {median:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
