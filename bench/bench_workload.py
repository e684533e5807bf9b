"""Benchmark of the load generator against the running pipeline (a measurement, not a test).

    uv run python bench/bench_workload.py [--hold-s 60] [--skip-ramp] [--skip-stall]

1. Hold: 1,000 events/s for ``--hold-s`` seconds (open loop, 200 RPCs/s of 5-event batches): the rate
   the generator issued and the rate acknowledged, against the target.
2. Ramp: unary RPCs at rising rates for 10 s each, to show where the generator (and the pipeline on the
   same two cores) stops keeping up.
3. Stall: the same 1 s pause of a broker, measured open-loop (latency from the intended start) and
   closed-loop (latency from the actual send, workers paced to the same rate): the closed loop hides it.
"""

from __future__ import annotations

import argparse
import time

from chaos.adapter import load_pipeline
from chaos.checkers import phase_stats
from chaos.config import Settings
from chaos.env import Environment
from chaos.faults import LeaderOf, Pause
from chaos.history import History
from chaos.images import resolve
from chaos.workload import LoadGenerator, LoadSpec

STALL_S = 1.0


def run_load(env: Environment, settings: Settings, spec: LoadSpec, seconds: float, name: str,
             stall: bool = False) -> tuple[LoadGenerator, History]:
    env.deploy(name)
    history = History()
    gen = LoadGenerator(env.pipeline.client, env.endpoints.grpc, spec, history, seed=7,
                        rpc_timeout_s=settings.rpc_timeout_s, id_prefix=name)
    gen.start(phase="warmup")
    time.sleep(4.0)
    gen.mark_phase("measured")
    try:
        if stall:
            time.sleep(seconds / 2)
            with Pause(LeaderOf(0)).active(env):
                time.sleep(STALL_S)
            time.sleep(seconds / 2 - STALL_S)
        else:
            time.sleep(seconds)
    finally:
        gen.stop()
    return gen, history


def hold(env: Environment, settings: Settings, seconds: float) -> None:
    spec = LoadSpec(rate=200, batch_size=5, keys=64, max_in_flight=512)
    gen, history = run_load(env, settings, spec, seconds, "hold")
    st = phase_stats(history)["measured"]
    target = spec.rate * spec.batch_size
    issued = sum(1 for op in history.ops if op.phase == "measured") / st.duration_s
    print(f"hold {seconds:.0f} s at {target:.0f} events/s: issued {issued:.1f}/s "
          f"({100 * (issued / target - 1):+.2f}%), acknowledged {st.throughput_ok_per_s:.1f}/s "
          f"({100 * (st.throughput_ok_per_s / target - 1):+.2f}%), errors {st.error_rate:.4f}, "
          f"p50 {st.p50_ms} ms, p99 {st.p99_ms} ms, generator behind at most {gen.behind_max_s:.3f} s")


def ramp(env: Environment, settings: Settings, rates: list[int]) -> None:
    for rate in rates:
        spec = LoadSpec(rate=rate, batch_size=1, keys=64, max_in_flight=1024)
        gen, history = run_load(env, settings, spec, 10.0, f"ramp{rate}")
        st = phase_stats(history)["measured"]
        issued = sum(1 for op in history.ops if op.phase == "measured") / st.duration_s
        print(f"ramp unary {rate}/s: issued {issued:.0f}/s ({100 * issued / rate:.1f}% of target), "
              f"acknowledged {st.throughput_ok_per_s:.0f}/s, p50 {st.p50_ms} ms, p99 {st.p99_ms} ms, "
              f"errors {st.error_rate:.4f}, behind {gen.behind_max_s:.2f} s")


def stall(env: Environment, settings: Settings) -> None:
    for mode in ("open", "closed"):
        spec = LoadSpec(rate=200, keys=16, mode=mode, max_in_flight=256 if mode == "open" else 8)
        _, history = run_load(env, settings, spec, 12.0, f"stall{mode}", stall=True)
        st = phase_stats(history)["measured"]
        print(f"{STALL_S:.0f} s broker pause, {mode}-loop: ok {st.ok}, p50 {st.p50_ms} ms, p99 {st.p99_ms} ms, "
              f"p99.9 {st.p999_ms} ms, max {st.max_ms} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold-s", type=float, default=60.0)
    ap.add_argument("--skip-ramp", action="store_true")
    ap.add_argument("--rates", default="250,500,1000,2000,4000", help="ramp steps, unary RPCs/s, 10 s each")
    ap.add_argument("--skip-stall", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env()
    pipeline = load_pipeline(settings.pipeline)
    with Environment(settings, resolve(settings, pipeline), pipeline) as env:
        hold(env, settings, args.hold_s)
        if not args.skip_ramp:
            ramp(env, settings, [int(r) for r in args.rates.split(",")])
        if not args.skip_stall:
            stall(env, settings)


if __name__ == "__main__":
    main()
