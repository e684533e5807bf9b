"""Load shapes, phase lengths and budgets shared by the experiments.

Everything an experiment promises is a named value here, so a reader finds and changes it in one place.
The nightly tier (``--chaos-tier=nightly``) runs the same experiments with longer phases and load. A
pipeline whose contract needs another value says so in its adapter (``Pipeline.budgets``, with the
reason beside it); :func:`run` takes it from there.

The experiments name the pipeline's parts by role, so they run against any adapter: ``entry`` (the
service that takes the client's writes), ``sink`` (the consumers that write the projection), and the
links between them and Kafka and Postgres (``"entry->kafka"``, ``"sink->postgres"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from chaos.adapter import ROLES
from chaos.checkers import Budget
from chaos.config import Settings
from chaos.workload import LoadSpec

# Gate tier: 200 calls/s over 16 keys, several ops in flight per key.
GATE_LOAD = LoadSpec(rate=200, keys=16, batch_size=1, max_in_flight=256)
NIGHTLY_LOAD = LoadSpec(rate=300, keys=64, key_skew=0.8, batch_size=2, max_in_flight=512)


@dataclass(frozen=True)
class Phases:
    before_s: float = 5.0  # steady-state load before the fault
    during_s: float = 8.0  # how long the fault lasts
    after_s: float = 6.0  # load after heal


GATE_PHASES = Phases()
NIGHTLY_PHASES = Phases(before_s=15.0, during_s=30.0, after_s=20.0)

# Budgets. After a heal the pipeline must serve cleanly again; during a fault that the pipeline is
# built to ride out (a broker lost, a database lost behind Kafka) the client must see no errors at all,
# because the producer retries within its delivery timeout and Kafka buffers for the sinks.
RIDE_OUT = {"during": Budget(max_error_rate=0.0), "after": Budget(max_error_rate=0.0)}
# After a fault that breaks connections, clients reconnect (the generator's gRPC backoff is capped at
# 500 ms): a few hundred milliseconds of errors right after the heal, under 10% of the after phase.
RECOVER = {"after": Budget(max_error_rate=0.10)}
def load(settings: Settings, max_batch: int = 500) -> LoadSpec:
    """The tier's load; batches no larger than the pipeline's client takes (the same events per second)."""
    spec = NIGHTLY_LOAD if settings.tier == "nightly" else GATE_LOAD
    if spec.batch_size > max_batch:
        return dataclasses.replace(spec, rate=spec.rate * spec.batch_size / max_batch, batch_size=max_batch)
    return spec


def phases(settings: Settings) -> Phases:
    return NIGHTLY_PHASES if settings.tier == "nightly" else GATE_PHASES


def run(experiment, fault=None, *, defects=(), budgets=None, during_s=None, before_s=None, requires=()):
    """One experiment with the tier's load and phase lengths; returns its ExperimentResult. ``requires``:
    roles the pipeline must have (``stage``), or fields of its ``Database`` it must set (``database.value_column``);
    without one the test is skipped, saying why. ``during_s`` may be a function of the settings (an outage longer
    than a timeout the settings set)."""
    exp = experiment(defects=defects)
    pipeline = exp.env.pipeline
    for need in requires:
        if need.startswith("database."):
            if not getattr(pipeline.database, need.removeprefix("database.")):
                pytest.skip(f"pipeline {pipeline.name} sets no Database({need.removeprefix('database.')}=...) in "
                            "its adapter: nothing for this experiment's other writer to write to")
        elif not pipeline.with_role(need):
            pytest.skip(f"pipeline {pipeline.name} has no {need} service ({ROLES[need]})")
    exp.load = load(exp.settings, getattr(pipeline.client, "max_batch", 1))
    p = phases(exp.settings)
    if callable(during_s):
        during_s = during_s(exp.settings)
    return exp.run(fault=fault, before_s=p.before_s if before_s is None else before_s,
                   during_s=p.during_s if during_s is None else during_s, after_s=p.after_s,
                   budgets=budgets, convergence_bound_s=convergence_bound_s(exp.settings, pipeline))


def convergence_bound_s(settings: Settings, pipeline: Any) -> float:
    """Heal -> every event acknowledged before the heal applied: the pipeline's own budget where its adapter
    sets one (``budgets["convergence_s"]``), else the ``convergence_bound_s`` setting."""
    return pipeline.budget("convergence_s", settings.convergence_bound_s)


FAULT_SETTLE_S = 0.5  # after injection, before every new call is sure to meet the fault


def fastest_ack_ms(result: Any) -> float | None:
    """The fastest acknowledged call (completion minus actual send, in ms) among those sent at least
    ``FAULT_SETTLE_S`` after the first fault was in place and completed before its heal began; None if none.

    A latency fault gives a floor, not a shift: however busy the host, no call on the faulty path can come back
    faster than the delay every byte of it waits, while a comparison of medians with the phase before is at the
    mercy of load and warm-up (a saturated pipeline's queueing can dwarf the fault)."""
    if not result.faults:
        return None
    start = result.faults[0]["active_from_us"] + int(FAULT_SETTLE_S * 1e6)
    end = result.faults[0]["active_until_us"]
    lat = [op.end_us - op.start_us for op in result.history.ops if op.outcome == "ok" and op.start_us >= start
           and op.end_us is not None and (end is None or op.end_us <= end)]
    return min(lat) / 1000 if lat else None
