"""The same blocks executed in fresh processes (other hash seeds) give identical state roots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("determinism_script.py")


def run(mode: str, app: Path, db: str, seed: str) -> list[list[str]]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    out = subprocess.run([sys.executable, str(SCRIPT), mode, str(app), db], env=env,
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return json.loads(out.stdout)


def test_two_sequencers_and_a_verifier_agree(token_app: Path, tmp_path: Path) -> None:
    first = run("build", token_app, f"sqlite:///{tmp_path / 'a.db'}", "1")
    second = run("build", token_app, f"sqlite:///{tmp_path / 'b.db'}", "2")
    assert len(first) == 28  # genesis + 27 blocks
    assert first == second
    replayed = run("replay", token_app, f"sqlite:///{tmp_path / 'a.db'}", "3")
    assert [r[2] for r in replayed] == [r[2] for r in first]
    assert [r[1] for r in replayed[1:]] == [r[1] for r in first[1:]]
