"""The detection matrix: each defect against the experiments meant to catch it, and the correct pipeline.

Run with ``make matrix`` (``pytest experiments/test_detection_matrix.py --chaos-tier=matrix
--chaos-repeat=5``). Every experiment module names the defects it must catch in ``CATCHES``; each pair
(defect, experiment) must fail at least one invariant, every repetition. The correct pipeline runs the
same experiments and must pass. A table (defect x experiment -> caught n/N, the failing invariants, an
example) is printed at the end and written to ``<report dir>/<run id>/matrix.md``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from chaos.pytest_plugin import record_matrix

pytestmark = [pytest.mark.matrix, pytest.mark.experiment]

HERE = Path(__file__).parent
MODULES: list[ModuleType] = [
    importlib.import_module(f"experiments.{p.stem}")
    for p in sorted(HERE.glob("test_*.py")) if p.stem != Path(__file__).stem
]
CASES = [(m, d) for m in MODULES for d in getattr(m, "CATCHES", ())]
CASES += [(m, "none") for m in MODULES if getattr(m, "CATCHES", ())]


def _short(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1].removeprefix("test_")


@pytest.mark.parametrize(("module", "defect"), CASES, ids=[f"{d}-{_short(m)}" for m, d in CASES])
def test_detection(module, defect, experiment, chaos_env, chaos_settings, request):
    result = module.scenario(experiment, defects=() if defect == "none" else (defect,))
    failing = [v for v in result.verdicts if not v.ok]
    example = ""
    if failing:
        v = failing[0]
        example = f"{v.name}: {v.message}" + (f"; e.g. {v.examples[0]}" if v.examples else "")
    record_matrix(request.config, {
        "defect": defect, "experiment": _short(module), "caught": bool(failing),
        "failed": [v.name for v in failing], "example": example[:300],
        "report_root": str(chaos_settings.report_dir / chaos_env.run_id)})
    if defect == "none":
        module.check(result)
    else:
        assert failing, f"{defect} was not caught by {_short(module)}: every invariant held"
