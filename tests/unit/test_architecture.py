"""The rules of the map (README, "What is where"), checked on the source: the library knows pipelines only
through the adapter API, the game-day command line uses only public members of other modules, and each of the
run protocol, the fault catalogue, the role interpreter and the percentile has one implementation."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "chaos"


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_library_module_imports_a_pipeline_or_its_adapter() -> None:
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported(p) if m.split(".")[0] in
                                            ("system_under_test", "refpipe", "examples"))
           for p in modules(LIBRARY)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_pipelines_services_import_nothing_of_the_suite() -> None:
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported(p) if m.split(".")[0] == "chaos")
           for p in modules(ROOT / "system_under_test" / "refpipe")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_gameday_uses_no_private_member_of_another_module() -> None:
    found = []
    for p in modules(LIBRARY / "gameday"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    found.append(f"{p.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chaos"):
                found += [f"{p.relative_to(ROOT)}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name.startswith("_")]
    assert found == []


def definitions(name: str) -> list[str]:
    """Where a function or class called ``name`` is defined in the library."""
    out = []
    for p in modules(LIBRARY):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                out.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    return out


def test_one_implementation_of_each_shared_concept() -> None:
    assert len(definitions("Run")) == 1  # the run protocol (chaos/run/protocol.py)
    assert len(definitions("build_fault")) == 2  # the catalogue, and the scenario's wrapper that adds where
    assert definitions("CATALOGUE") == []  # a constant, not a function: the one is chaos/faults/catalogue.py
    assert len(definitions("target")) == 1  # the role interpreter (chaos/faults/targets.py)
    assert len(definitions("nearest_rank")) == 1  # the percentile (chaos/stats.py)
    for p in modules(LIBRARY):
        text = p.read_text(encoding="utf-8")
        assert "CATALOGUE: dict" not in text or p.name == "catalogue.py", p
        assert "int(q * len(" not in text, f"{p}: a percentile of its own"
