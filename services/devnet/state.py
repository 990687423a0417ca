"""The devnet's state file, `DATA/devnet.json`: who runs where, written atomically by the
supervisor whenever a PID changes, read by `rollup status`, `down`, `verify` and `bridge`.

A devnet whose supervisor is gone is stopped from its record (`stop_recorded`), by PID, each
PID checked against its command line first so that a reused PID is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TypedDict, cast

from services.bus.devnet import BusRecord
from services.process import cmdline_mentions, pid_alive, terminate_pids

__all__ = [
    "AdminRecord",
    "AppRecord",
    "DARecord",
    "DevnetState",
    "L1Record",
    "STATE_VERSION",
    "VerifierRecord",
    "is_running",
    "read_state",
    "state_path",
    "stop_recorded",
    "write_state",
]

STATE_VERSION = 1
STOP_TIMEOUT = 10.0


class L1Record(TypedDict):
    rpc_url: str
    pid: int | None  # None when the L1 is external (--l1-rpc)
    log: str | None


class VerifierRecord(TypedDict):
    pid: int
    port: int
    status_url: str  # GET: JSON status; /metrics: Prometheus text
    log: str


class DARecord(TypedDict):
    backend: str  # "local" | "ethereum"
    mode: str  # ethereum: "calldata" | "blobs"
    inbox: str  # the BatchInbox on the L1
    from_block: int  # the L1 block it was deployed in
    owner: str  # the inbox owner's address (its key: l1/owner.key or --l1-key-file)
    portal: str  # the Portal on the L1 (deposits: verifiers read them there)


class AppRecord(TypedDict):
    name: str
    chain_id: int
    vm: str
    address: str  # EIP-55 checksummed
    app_dir: str
    rpc_url: str
    port: int
    pid: int
    data_dir: str
    log: str
    restarts: int
    stopped: bool  # by the operator (services/devnet/control.py), not crashed
    verifier: VerifierRecord | None


class AdminRecord(TypedDict):
    url: str  # the REST admin API (services/admin/)
    token_file: str  # the admin token (mode 0600); read_token_file: the read-only one
    read_token_file: str
    pid: int
    port: int
    log: str


class DevnetState(TypedDict):
    """The JSON in `DATA/devnet.json`, written atomically whenever a PID changes."""

    version: int
    supervisor_pid: int
    data_dir: str
    logs_dir: str
    l1: L1Record
    apps: list[AppRecord]
    da: DARecord | None
    bus: BusRecord
    admin: AdminRecord | None  # None: the supervisor runs no admin API


def state_path(data_dir: Path) -> Path:
    return data_dir / "devnet.json"


def read_state(data_dir: Path) -> DevnetState | None:
    """The recorded devnet of `data_dir`, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(state_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return cast(DevnetState, data)  # our own file, written by write_state


def write_state(data_dir: Path, state: DevnetState) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path = state_path(data_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(state, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def is_running(state: DevnetState) -> bool:
    return pid_alive(state["supervisor_pid"])


def stop_recorded(data_dir: Path, timeout: float = STOP_TIMEOUT) -> DevnetState | None:
    """Stop the devnet recorded in `data_dir`, by PID, and remove its state file.

    The supervisor is asked first (it stops its children in order); whatever it leaves behind,
    or everything if it is gone already, is stopped here. Returns the state that was stopped.
    """
    state = read_state(data_dir)
    if state is None:
        return None
    supervisor = state["supervisor_pid"]
    if supervisor != os.getpid() and pid_alive(supervisor):
        terminate_pids([supervisor], timeout=timeout + STOP_TIMEOUT)
    terminate_pids(_leftover_pids(state), timeout=timeout)
    with contextlib.suppress(FileNotFoundError):
        state_path(data_dir).unlink()
    return state


def _leftover_pids(state: DevnetState) -> list[int]:
    pids = [a["pid"] for a in state["apps"] if cmdline_mentions(a["pid"], a["data_dir"])]
    verifiers = [a.get("verifier") for a in state["apps"]]
    pids += [
        v["pid"]
        for v, a in zip(verifiers, state["apps"], strict=True)
        if v and cmdline_mentions(v["pid"], a["data_dir"])
    ]
    admin = state.get("admin")
    if admin and cmdline_mentions(admin["pid"], state["data_dir"]):
        pids.append(admin["pid"])
    l1_pid = state["l1"]["pid"]
    if l1_pid is not None and cmdline_mentions(l1_pid, "anvil"):
        pids.append(l1_pid)
    bus_pid = (state.get("bus") or {}).get("pid")
    if bus_pid is not None and cmdline_mentions(bus_pid, "nats-server"):
        pids.append(bus_pid)
    return [p for p in pids if pid_alive(p)]
