"""Shared fixtures: a rendered token app directory for in-process tests.

Tests marked `slow` are skipped unless selected with `-m slow` (or any -m expression naming
`slow`) or ROLLUP_SLOW=1 is set, so the default run stays short.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("ROLLUP_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or ROLLUP_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)

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
