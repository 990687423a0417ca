"""Every app template passes its own tests once rendered, the way an app author runs them:
`rollup new NAME --template T --dir DIR`, then `pytest` on the new folder, in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.scaffold import TEMPLATE_DIR, TEMPLATES

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 120.0


def _env() -> dict[str, str]:
    env = dict(os.environ, ETH_HASH_BACKEND=os.environ.get("ETH_HASH_BACKEND", "pysha3"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def test_every_template_is_listed() -> None:
    on_disk = sorted(p.name for p in TEMPLATE_DIR.iterdir() if (p / "rollup.toml.tmpl").is_file())
    assert sorted(TEMPLATES) == on_disk
    assert {"token", "counter", "orderbook", "evm"} <= set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_rendered_template_passes_its_own_tests(template: str, tmp_path: Path) -> None:
    name = f"my-{template}"
    env = _env()
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "new",
            name,
            "--template",
            template,
            "--dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    app_dir = tmp_path / name
    assert (app_dir / "rollup.toml").is_file() and (app_dir / "test_app.py").is_file()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(app_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = len(re.findall(r"^def test_", (app_dir / "test_app.py").read_text(), re.M))
    assert expected >= 2
    assert f"{expected} passed" in done.stdout, done.stdout
    assert "failed" not in done.stdout
