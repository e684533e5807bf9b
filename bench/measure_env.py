"""Measure the environment: start time with images present, and peak memory under load.

    uv run python bench/measure_env.py [--starts 3] [--load-s 30]

Starts the topology ``--starts`` times (median start time), and in the last start deploys the pipeline
and drives the gate load for ``--load-s`` seconds while sampling the memory of every container of the
run once a second (engine stats); prints the median start, the peak of the summed memory, and the peak
per container. A measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import threading
import time
from pathlib import Path

from chaos.adapter import load_pipeline
from chaos.config import Settings
from chaos.env import LABEL_RUN, Environment
from chaos.history import History
from chaos.images import resolve
from chaos.workload import LoadGenerator, LoadSpec


def _parse_mib(text: str) -> float:
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}
    for unit in ("GiB", "MiB", "KiB", "B"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return 0.0


def sample_memory(env: Environment, stop: threading.Event, peaks: dict[str, float], totals: list[float]) -> None:
    """Engine stats of every container of the run (one CLI call per sample: all containers at once)."""
    while not stop.is_set():
        out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
                              *(c.name for c in env.client.containers.list(  # type: ignore[union-attr]
                                  filters={"label": f"{LABEL_RUN}={env.run_id}"}))],
                             capture_output=True, text=True, timeout=60, check=False).stdout
        total = 0.0
        for line in out.splitlines():
            name, usage = line.split(" ", 1)
            used = _parse_mib(usage.split("/")[0].strip())
            peaks[name] = max(peaks.get(name, 0.0), used)
            total += used
        totals.append(total)
        stop.wait(0.5)


def cgroup_peak_mib(env: Environment) -> float | None:
    """Sum of the kernel's per-container peaks (cgroup v1 max_usage_in_bytes): an upper bound."""
    total = 0.0
    for c in env.client.containers.list(filters={"label": f"{LABEL_RUN}={env.run_id}"}):  # type: ignore[union-attr]
        path = Path(f"/sys/fs/cgroup/memory/docker/{c.id}/memory.max_usage_in_bytes")
        if not path.exists():
            return None
        total += int(path.read_text()) / 2**20
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--load-s", type=float, default=30.0)
    args = ap.parse_args()
    settings = Settings.from_env()
    pipeline = load_pipeline(settings.pipeline)
    images = resolve(settings, pipeline)
    starts: list[float] = []
    for n in range(args.starts):
        env = Environment(settings, images, pipeline)
        try:
            env.start()
            assert env.started_s is not None
            starts.append(env.started_s)
            print(f"start {n + 1}: {env.started_s:.1f} s", flush=True)
            if n == args.starts - 1:
                t = time.monotonic()
                dep = env.deploy("measure")
                print(f"pipeline deploy: {time.monotonic() - t:.1f} s ({dep.tag})")
                peaks: dict[str, float] = {}
                totals: list[float] = []
                stop = threading.Event()
                sampler = threading.Thread(target=sample_memory, args=(env, stop, peaks, totals), daemon=True)
                sampler.start()
                gen = LoadGenerator(
                    pipeline.client,
                    env.endpoints.grpc,
                    LoadSpec(rate=200, keys=16),
                    History(),
                    seed=1,
                    rpc_timeout_s=10,
                    id_prefix="m",
                )
                gen.start()
                time.sleep(args.load_s)
                gen.stop()
                stop.set()
                sampler.join(timeout=30)
                print(f"peak of summed container memory: {max(totals):.0f} MiB over {len(totals)} samples")
                print(f"sum of per-container kernel peaks (upper bound): {cgroup_peak_mib(env)} MiB")
                for name, peak in sorted(peaks.items()):
                    print(f"  {name}: {peak:.0f} MiB")
                print(f"load: {dict(gen.counts)}")
        finally:
            env.stop()
    print(
        f"median start time over {len(starts)} starts: {statistics.median(starts):.1f} s "
        f"(min {min(starts):.1f}, max {max(starts):.1f})"
    )


if __name__ == "__main__":
    main()
