"""What the admin API reads and drives: the devnet recorded in `DATA/devnet.json`
(services/devnet/state.py) and each app's node, over its JSON-RPC (services/rpcclient.py).

One batch per node: its heads (eth_getBlockByNumber latest, safe, finalized) and its
`admin_status` (paused, pool, recent rate, DA backlog), which needs the admin token; a node
that does not answer is shown `unreachable`, never an error of the API.

`Nodes` is the same devnet seen node by node, for the resources that read a node directly
(services/admin/explorer.py, da.py, logs.py): its record, the admin token, `call_node`.

Stop, start and restart go through the devnet's supervisor (services/devnet/control.py): the
request is written, then awaited in devnet.json (and, for a start, until the node answers).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from rollup.errors import ResourceNotFound, rpc_code
from services.admin.errors import AdminError, Conflict, NodeUnavailable, NotFound
from services.admin.models import (
    AppView,
    Heads,
    Mempool,
    NodeState,
    SequencerView,
    VerifierView,
)
from services.da_cli import app_da_status
from services.devnet.control import Wanted, read_wanted, write_wanted
from services.devnet.state import AppRecord, DevnetState, is_running, read_state
from services.process import answers_rpc
from services.rpcclient import RpcCallError, RpcClient, RpcUnavailable, rpc_call
from services.waiting import wait_until

__all__ = [
    "DevnetFleet",
    "Fleet",
    "NODE_REFUSALS",
    "Nodes",
    "call_node",
    "last_error_line",
    "last_line",
    "log_tail",
]

NODE_TIMEOUT = 2.0
CONTROL_TIMEOUT = 90.0  # the supervisor's turn, a node's stop (10 s) and start (60 s)
LOG_TAIL_BYTES = 64 * 1024
# what a node has not (-32001) is not there: 404
NODE_REFUSALS: Mapping[int, type[AdminError]] = {rpc_code(ResourceNotFound("")): NotFound}
PARALLEL = 8


class Fleet(Protocol):
    """The apps the API shows and the operations it runs on them (a fake one in tests)."""

    def names(self) -> list[str]: ...

    def view(self, names: Sequence[str]) -> list[AppView]: ...

    def pause(self, name: str) -> SequencerView: ...

    def resume(self, name: str) -> SequencerView: ...

    def stop(self, name: str) -> AppView: ...

    def start(self, name: str) -> AppView: ...

    def restart(self, name: str) -> AppView: ...

    def ready(self) -> bool: ...


class Nodes(Protocol):
    """The apps' nodes themselves, for the resources that read one directly (the explorer,
    DA, logs): their records in devnet.json and the token of their admin_ methods."""

    token: str

    def record(self, name: str) -> AppRecord: ...

    def devnet(self) -> DevnetState | None: ...


class DevnetFleet:
    """The devnet of `data_dir`, its nodes called with the admin token."""

    def __init__(self, data_dir: Path, admin_token: str) -> None:
        self.data_dir, self.token = data_dir, admin_token
        self._control = threading.Lock()  # one request at a time changes control files

    def devnet(self) -> DevnetState | None:
        return read_state(self.data_dir)

    def _records(self) -> dict[str, AppRecord]:
        state = read_state(self.data_dir)
        return {} if state is None else {a["name"]: a for a in state["apps"]}

    def record(self, name: str) -> AppRecord:
        record = self._records().get(name)
        if record is None:
            raise NotFound(f"no app named {name!r} in this devnet")
        return record

    def ready(self) -> bool:
        return read_state(self.data_dir) is not None

    def names(self) -> list[str]:
        return list(self._records())

    def view(self, names: Sequence[str]) -> list[AppView]:
        known = self._records()
        missing = [name for name in names if name not in known]
        if missing:
            raise NotFound(f"no app named {missing[0]!r} in this devnet")
        records = [known[name] for name in names]
        with ThreadPoolExecutor(min(PARALLEL, max(len(records), 1))) as pool:
            return list(pool.map(self._view, records))

    def pause(self, name: str) -> SequencerView:
        return self._sequencer(name, "admin_pauseSequencer")

    def resume(self, name: str) -> SequencerView:
        return self._sequencer(name, "admin_resumeSequencer")

    def stop(self, name: str) -> AppView:
        self._ask(name, lambda w: Wanted(False, w.restart))
        return self._await(name, "stopped", lambda r: bool(r.get("stopped")))

    def start(self, name: str) -> AppView:
        self._ask(name, lambda w: Wanted(True, w.restart))
        return self._await(name, "running", lambda r: not r.get("stopped") and _answers(r))

    def restart(self, name: str) -> AppView:
        pid = self.record(name)["pid"]
        self._ask(name, lambda w: Wanted(True, w.restart + 1))
        return self._await(name, "restarted", lambda r: r["pid"] != pid and _answers(r))

    def _ask(self, name: str, change: Callable[[Wanted], Wanted]) -> None:
        """Write the operator's request for the supervisor; 409 when none runs."""
        self.record(name)
        state = read_state(self.data_dir)
        if state is None or not is_running(state):
            raise Conflict("no supervisor runs this devnet: start it with `rollup up`")
        with self._control:
            write_wanted(self.data_dir, name, change(read_wanted(self.data_dir, name)))

    def _await(self, name: str, what: str, done: Callable[[AppRecord], bool]) -> AppView:
        record = wait_until(
            lambda: _if(self._records().get(name), done),
            CONTROL_TIMEOUT,
            f"{name} {what}",
            interval=0.2,
            error=NodeUnavailable,
        )
        return self._view(record)

    def _sequencer(self, name: str, method: str) -> SequencerView:
        status = call_node(self.record(name), method, self.token)
        return SequencerView(name=name, paused=bool(status["paused"]), head=int(status["head"]))

    def _view(self, record: AppRecord) -> AppView:
        stopped = bool(record.get("stopped"))
        answers = {} if stopped else _ask_node(record["rpc_url"], self.token)
        status = answers.get("admin_status")
        heads = Heads(
            unsafe=_number(answers.get("latest")),
            safe=_number(answers.get("safe")),
            finalized=_number(answers.get("finalized")),
        )
        state: NodeState = "unreachable" if not answers else "running"
        if stopped:
            state = "stopped"
        if isinstance(status, dict) and status.get("paused"):
            state = "paused"
        return AppView(
            name=record["name"],
            chain_id=record["chain_id"],
            vm=record["vm"],
            rpc_url=record["rpc_url"],
            address=record["address"],
            state=state,
            heads=heads,
            mempool=_mempool(status),
            tx_per_second=_field(status, "tx_per_second", float),
            da_backlog_blocks=_field(status, "da_backlog_blocks", int),
            restarts=record["restarts"],
            verifier=_verifier(record),
            last_error=last_error_line(Path(record["log"])),
        )


def call_node(
    record: AppRecord,
    method: str,
    *params: Any,
    refusals: Mapping[int, type[AdminError]] = NODE_REFUSALS,
) -> Any:
    """One JSON-RPC call to an app's node. An error the node answers becomes the admin error
    `refusals` names for its code (404 for what the node has not), else a 503, as when it
    does not answer."""
    try:
        return rpc_call(record["rpc_url"], method, *params, timeout=NODE_TIMEOUT)
    except RpcCallError as exc:
        refusal = refusals.get(exc.code)
        if refusal is not None:
            raise refusal(exc.reason) from None
        raise NodeUnavailable(f"the node of {record['name']} did not do it: {exc}") from None
    except RpcUnavailable as exc:
        raise NodeUnavailable(f"the node of {record['name']} did not do it: {exc}") from None


def _ask_node(rpc_url: str, token: str) -> dict[str, Any]:
    """The results of one batch, by name ("latest", "safe", "finalized", "admin_status");
    empty when the node does not answer."""
    calls: list[tuple[str, Sequence[Any]]] = [
        ("eth_getBlockByNumber", [tag, False]) for tag in ("latest", "safe", "finalized")
    ]
    calls.append(("admin_status", [token]))
    try:
        with RpcClient(rpc_url, NODE_TIMEOUT) as client:
            answers = client.batch(calls)
    except RpcUnavailable:
        return {}
    names = ["latest", "safe", "finalized", "admin_status"]
    return {n: a.get("result") for n, a in zip(names, answers, strict=True) if "result" in a}


def _if(record: AppRecord | None, done: Callable[[AppRecord], bool]) -> AppRecord | None:
    return record if record is not None and done(record) else None


def _answers(record: AppRecord) -> bool:
    return answers_rpc(record["rpc_url"], record["chain_id"])()


def _number(block: Any) -> int | None:
    if isinstance(block, dict) and isinstance(block.get("number"), str):
        with contextlib.suppress(ValueError):
            return int(block["number"], 16)
    return None


def _field(status: Any, name: str, kind: type[int] | type[float]) -> Any:
    value = status.get(name) if isinstance(status, dict) else None
    return kind(value) if isinstance(value, (int, float)) else None


def _mempool(status: Any) -> Mempool | None:
    if not isinstance(status, dict):
        return None
    return Mempool(pending=int(status["pending"]), queued=int(status["queued"]))


def _verifier(record: AppRecord) -> VerifierView | None:
    if not record.get("verifier"):
        return None
    found = app_da_status(record)["verifier"] or {}
    message = found.get("message")
    return VerifierView(
        status=str(found.get("status", "unknown")),
        message=None if message is None else str(message),
    )


def log_tail(log_path: Path, max_bytes: int = LOG_TAIL_BYTES) -> list[str] | None:
    """The whole lines in the last `max_bytes` of a log (None if it cannot be read)."""
    try:
        with log_path.open("rb") as log:
            end = log.seek(0, 2)
            log.seek(max(end - max_bytes, 0))
            tail = log.read()
    except OSError:
        return None
    lines = tail.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if end > max_bytes and lines else lines  # the first may be cut


def last_line(log_path: Path, matches: Callable[[str], bool]) -> str | None:
    """The newest line of a log's tail that `matches`, at most 500 characters."""
    for line in reversed(log_tail(log_path) or []):
        if matches(line):
            return line.strip()[:500]
    return None


def last_error_line(log_path: Path) -> str | None:
    """The newest ERROR or CRITICAL record in the last 64 KiB of a log."""
    return last_line(log_path, _is_error)


def _is_error(line: str) -> bool:
    return " ERROR " in line or " CRITICAL " in line or '"level": "ERROR"' in line
