"""The detection matrix: each defect of the pipeline against the experiments meant to catch it, and the
correct pipeline against the same experiments.

Run with ``make matrix`` (``pytest chaos/experiments/test_detection_matrix.py --chaos-tier=matrix
--chaos-repeat=5``). The pipeline's adapter names, for each defect switch, the experiments that must catch
it (``Defect.catches``); each pair (defect, experiment) must fail at least one invariant or the experiment's own
hypothesis (its ``check``: a latency that must show, say), every repetition.
The correct pipeline runs the same experiments and must pass. A table (defect x experiment -> caught n/N,
the failing invariants, an example) is printed at the end and written to ``<report dir>/<run id>/matrix.md``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from chaos.checkers import format_verdicts
from chaos.pytest_plugin import pipeline_of, record_matrix

pytestmark = [pytest.mark.matrix, pytest.mark.experiment]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{__package__}.test_{name}")


def cases(config: pytest.Config) -> list[tuple[str, str]]:
    """(defect, experiment) for every defect and every experiment it must be caught by, then ("none", e)."""
    pipeline = pipeline_of(config)
    pairs = [(d.name, e) for d in pipeline.defects for e in d.catches]
    known = {p.stem.removeprefix("test_") for p in Path(__file__).parent.glob("test_*.py")}
    unknown = sorted({e for _, e in pairs if e not in known})
    if unknown:
        raise pytest.UsageError(f"pipeline {pipeline.name}: Defect.catches names no experiment of the catalogue: "
                                f"{', '.join(unknown)}; experiments: {', '.join(sorted(known))}")
    return pairs + [("none", e) for e in dict.fromkeys(e for _, e in pairs)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        found = cases(metafunc.config)
        metafunc.parametrize("case", found, ids=[f"{d}-{e}" for d, e in found])


def test_detection(case, experiment, chaos_env, chaos_settings, request):
    defect, name = case
    exp_module = module(name)
    result = exp_module.scenario(experiment, defects=() if defect == "none" else (defect,))
    failing = [v for v in result.verdicts if not v.ok]
    # the experiment's own check: its verdicts, and any hypothesis of its own (latency that must show...)
    refuted: str | None = None
    try:
        exp_module.check(result)
    except AssertionError as exc:
        if str(exc) != format_verdicts(failing):
            refuted = str(exc).splitlines()[0] if str(exc) else "the experiment's check failed"
    names = [v.name for v in failing] + (["hypothesis"] if refuted else [])
    example = ""
    if refuted:
        example = f"hypothesis: {refuted}"
    elif failing:
        v = failing[0]
        example = f"{v.name}: {v.message}" + (f"; e.g. {v.examples[0]}" if v.examples else "")
    record_matrix(request.config, {
        "defect": defect, "experiment": name, "caught": bool(names), "failed": names, "example": example[:300],
        "report_root": str(chaos_settings.report_dir / chaos_env.run_id)})
    if defect == "none":
        exp_module.check(result)
    else:
        assert names, f"{defect} was not caught by {name}: every invariant and the experiment's check held"
