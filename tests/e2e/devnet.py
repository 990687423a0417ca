"""What the end-to-end tests of `rollup up` share: the `rollup` command in a subprocess, as a
user runs it, and a detached devnet that is always stopped however the test ends (`rollup
down`, then SIGKILL for any process it recorded that is still there)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.process import child_env, pid_alive

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 240.0  # `up --detach` waits for Anvil and the nodes; this only bounds a hang


def rollup(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_state(data_dir: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((data_dir / "devnet.json").read_text())
    return state


def recorded_pids(state: dict[str, Any]) -> set[int]:
    """Every process the state file names: the supervisor, nodes, verifiers, Anvil, the bus,
    the admin API."""
    pids = {state["supervisor_pid"], *(a["pid"] for a in state["apps"])}
    pids |= {a["verifier"]["pid"] for a in state["apps"] if a.get("verifier")}
    pids |= {p for p in (state["l1"]["pid"], (state.get("bus") or {}).get("pid")) if p}
    pids |= {p for p in [(state.get("admin") or {}).get("pid")] if p}
    return pids


@dataclass
class Devnet:
    data_dir: Path
    state: dict[str, Any]  # devnet.json as `up` left it
    up: subprocess.CompletedProcess[str]  # what `rollup up --detach` printed


@contextlib.contextmanager
def detached_devnet(data_dir: Path, *args: str) -> Iterator[Devnet]:
    """`rollup up --detach --data-dir DATA_DIR ARGS...`, stopped on exit (and `rollup down`
    must succeed when the body did)."""
    seen: set[int] = set()
    try:
        up = rollup("up", "--detach", "--data-dir", str(data_dir), *args)
        assert up.returncode == 0, up.stdout + up.stderr
        state = read_state(data_dir)
        seen |= recorded_pids(state)
        yield Devnet(data_dir, state, up)
    finally:
        if (data_dir / "devnet.json").exists():
            seen |= recorded_pids(read_state(data_dir))  # a restarted node has a new pid
        down = rollup("down", "--data-dir", str(data_dir))
        for pid in seen:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    # reached when the body succeeded: then `down` must have too (it is 0 with nothing to stop)
    assert down.returncode == 0, down.stdout + down.stderr
