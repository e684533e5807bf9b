"""A pipeline image's tag is decided by its inputs' contents and their places relative to one another, not by
where the checkout lives: a copy of the checkout (a CI sandbox, a second clone) finds the images already built."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from chaos.adapter import ImageRecipe
from chaos.images import pipeline_tags
from system_under_test.adapter import PIPELINE


def _tree(root: Path, content: str) -> list[Path]:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM ${BASE}\n")
    (root / "src" / "app.py").write_text(content)
    return [root / "Dockerfile", root / "src" / "app.py"]


def _tags(files: list[Path]) -> str:
    recipe = ImageRecipe(prepare=lambda ctx: None, inputs=lambda: files)
    return pipeline_tags(dataclasses.replace(PIPELINE, images={"pipeline": recipe}), "local")["pipeline"]


def test_same_content_elsewhere_same_tag(tmp_path: Path) -> None:
    assert _tags(_tree(tmp_path / "a", "print(1)\n")) == _tags(_tree(tmp_path / "deeper" / "b", "print(1)\n"))


def test_changed_content_new_tag(tmp_path: Path) -> None:
    assert _tags(_tree(tmp_path / "a", "print(1)\n")) != _tags(_tree(tmp_path / "b", "print(2)\n"))


def test_moved_file_new_tag(tmp_path: Path) -> None:
    files = _tree(tmp_path / "a", "print(1)\n")
    before = _tags(files)
    (tmp_path / "a" / "lib").mkdir()
    shutil.move(files[1], tmp_path / "a" / "lib" / "app.py")
    assert _tags([files[0], tmp_path / "a" / "lib" / "app.py"]) != before


def test_reference_pipeline_tag_independent_of_checkout_location(tmp_path: Path) -> None:
    files = [Path(p) for p in PIPELINE.images["pipeline"].inputs()]
    root = Path(__file__).resolve().parents[2]
    copies = []
    for f in files:
        dest = tmp_path / f.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
        copies.append(dest)
    assert _tags(copies) == _tags(files)
