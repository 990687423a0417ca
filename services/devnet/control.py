"""What the operator wants of each app's node, for the supervisor to carry out: a file per app,
`DATA/control/NAME.json` = {"run": bool, "restart": n}, written by the admin API
(services/admin/) and read by the supervisor's watch loop on every turn.

`run` false: stop the node and keep it stopped (not a crash: it is not restarted); true: run
it. `restart` counts the restarts asked for: when it grows, the node is stopped and started
again. A new devnet starts with no requests (every app runs). The files are written whole
through a rename, so the supervisor never reads half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Wanted", "clear_wanted", "read_wanted", "write_wanted"]


@dataclass(frozen=True, slots=True)
class Wanted:
    run: bool = True
    restart: int = 0


def _dir(data_dir: Path) -> Path:
    return data_dir / "control"


def read_wanted(data_dir: Path, name: str) -> Wanted:
    """What is asked of app `name`; the default (run it) when nothing readable is."""
    try:
        data = json.loads((_dir(data_dir) / f"{name}.json").read_text(encoding="utf-8"))
        return Wanted(run=bool(data["run"]), restart=int(data["restart"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Wanted()


def write_wanted(data_dir: Path, name: str, wanted: Wanted) -> None:
    directory = _dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(wanted)), encoding="utf-8")
    os.replace(tmp, directory / f"{name}.json")


def clear_wanted(data_dir: Path) -> None:
    """Forget every request (a new devnet runs every app)."""
    shutil.rmtree(_dir(data_dir), ignore_errors=True)
