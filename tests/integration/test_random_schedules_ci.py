"""Randomised fault schedules, ci profile, correct pipeline: the run passes, and replaying its recorded
schedule runs the identical schedule and passes too (about 2-3 minutes with the environment start).

The nightly-profile proof with a defect switched on (a failing schedule found, shrunk, reported, and its
replay failing the same way) takes longer: ``make nightly-proof``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.experiments.test_random_schedules import explore, new_session, replay
from chaos.schedules import CI_SEED, PROFILES, Shape, load_replay

pytestmark = pytest.mark.integration


def test_ci_profile_passes_and_its_schedule_replays_identically(chaos_env, chaos_settings, experiment, request):
    settings = chaos_settings.replace(defects="", hypothesis_seed=0, replay="")
    session = new_session(chaos_env, settings, experiment, request.config, profile="ci")
    explore(session)

    assert session.seed == CI_SEED
    assert len(session.examples) == PROFILES["ci"].max_examples
    assert all(e["ok"] for e in session.examples), session.examples
    summary = json.loads((session.root / "random_schedules.json").read_text())
    assert summary["passed"] and summary["seed"] == CI_SEED and summary["profile"] == "ci"

    first = session.examples[0]
    recorded = load_replay(first["replay"], Shape.of(chaos_env.topology))
    assert recorded.seed == CI_SEED and recorded.profile == "ci" and recorded.outcome["ok"]
    results = json.loads((Path(first["replay"]).parent / "results.json").read_text())
    assert results["schedule"]["steps"] == first["steps"] and results["schedule"]["seed"] == CI_SEED

    again = new_session(chaos_env, settings, experiment, request.config, profile="ci")
    entry = replay(again, first["replay"])
    assert entry["ok"]
    assert entry["steps"] == first["steps"]  # the identical schedule: specs, start times, durations
    assert entry["workload_seed"] == first["workload_seed"]
    ran = load_replay(entry["replay"], Shape.of(chaos_env.topology)).outcome["executed"]
    assert [f["name"] for f in ran] == [f["name"] for f in recorded.outcome["executed"]]
