"""Detached mode (`rollup up --detach`): the supervisor runs as `python -m services.devnet run
...` in a session of its own, logging to `DATA/logs/devnet.log`, and outlives the command that
started it; that command waits until the state file names the new supervisor, which happens
only once every app answers."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from services.devnet.errors import DevnetError
from services.devnet.state import DevnetState, read_state
from services.process import ManagedProcess

__all__ = ["spawn_detached", "wait_detached"]


def spawn_detached(
    app_dirs: Sequence[Path],
    data_dir: Path,
    l1_rpc: str | None = None,
    port_base: int | None = None,
    options: Sequence[str] = (),
) -> ManagedProcess:
    """Start the detached supervisor and return at once; `options` are flags it takes as they
    are (`da_arguments(...)`, `bus_arguments(...)`)."""
    data_dir = data_dir.resolve()
    args = [sys.executable, "-m", "services.devnet", "run", "--data-dir", str(data_dir)]
    if l1_rpc is not None:
        args += ["--l1-rpc", l1_rpc]
    if port_base is not None:
        args += ["--port-base", str(port_base)]
    args += [*options, *(str(Path(d).resolve()) for d in app_dirs)]
    process = ManagedProcess(
        "the devnet",
        args,
        data_dir / "logs" / "devnet.log",
        ready=lambda: _recorded(process, data_dir),
        error=DevnetError,
    )
    process.spawn()
    return process


def wait_detached(process: ManagedProcess, data_dir: Path, timeout: float) -> DevnetState:
    """Wait until the detached supervisor records a ready devnet in `data_dir` (it is stopped
    if it does not in time); then leave it running on its own. Its state."""
    process.wait_ready(timeout)
    state = read_state(data_dir.resolve())
    assert state is not None  # what its probe saw
    process.release()
    return state


def _recorded(process: ManagedProcess, data_dir: Path) -> bool:
    state = read_state(data_dir)
    return state is not None and state["supervisor_pid"] == process.pid
