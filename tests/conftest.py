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
    dest.mkdir(parents=True, exist_ok=True)
    for path in (TEMPLATES / template).iterdir():
        if not path.is_file() or path.suffix == ".pyc":
            continue
        if path.suffix == ".tmpl":
            text = path.read_text().replace("{{name}}", name).replace("{{chain_id}}", str(chain_id))
            (dest / path.name.removesuffix(".tmpl")).write_text(text)
        else:
            shutil.copyfile(path, dest / path.name)
    return dest


@pytest.fixture
def token_app(tmp_path: Path) -> Path:
    return render_template(tmp_path / "tok")
