"""Shared fixtures: a rendered token app directory for in-process tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "rollup" / "templates"


def render_template(
    dest: Path, template: str = "token", name: str = "tok", chain_id: int = 901001
) -> Path:
    """Write an app folder like `rollup new` does (kept here so tests do not need the CLI)."""
    root = TEMPLATES / template
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or path.suffix == ".pyc" or {"__pycache__", "build"} & set(
            relative.parts
        ):
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".tmpl":
            text = path.read_text().replace("{{name}}", name).replace("{{chain_id}}", str(chain_id))
            target.with_suffix("").write_text(text)
        else:
            shutil.copyfile(path, target)
    dest.mkdir(parents=True, exist_ok=True)
    return dest


@pytest.fixture
def token_app(tmp_path: Path) -> Path:
    return render_template(tmp_path / "tok")
