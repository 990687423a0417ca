"""Native app upgrades (vm/native/upgrades.py): an app's code lives in its state, and its
owner schedules new code with a transaction to the upgrade system address 0x...0f0001,
`upgrade(address app, bytes source, uint64 height)`; at the start of block `height` the code
switches. Every verifier replays it like any transaction.

GET /v1/apps/{name}/upgrades: the app's code now and the upgrade its state has scheduled (the
node's admin_upgrades), with the upgrades this API sent since it started (its journal, in
memory): each by its code hash, with its height and state (active, scheduled, replaced,
failed). GET /v1/apps/{name}/upgrades/{id}: one of them with its source.

POST /v1/apps/{name}/upgrades (the admin token) schedules one, as a real upgrade transaction
signed by the app's owner: with `source` and `height` when the owner is a dev account of a
chain that enables them (the devnet holds that key, which is public); otherwise the API holds
no key that may upgrade the app, and takes `raw_transaction`, the owner's signed upgrade
transaction for this app, which it checks (to 0x...0f0001, upgrade() of this app) and sends.
It waits for the receipt: a failed upgrade (not the owner, a height not in the future, code
the loader refuses) is a 422 with the chain's reason, and is journaled as failed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

from eth_account import Account
from eth_utils import to_checksum_address
from fastapi import APIRouter, Depends, Path, Request

from rollup.crypto import keccak
from rollup.errors import RollupError
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.manifest import parse_manifest
from rollup.transactions import decode_transaction
from services.admin.apps import AppName, record_action
from services.admin.auth import require_admin, require_reader
from services.admin.errors import BadRequest, Conflict, NodeUnavailable, NotFound, Unprocessable
from services.admin.explorer import NodesDep
from services.admin.fleet import NODE_TIMEOUT, call_node
from services.admin.idempotency import IdempotencyKey, IdempotentRoute
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.admin.views import (
    UpgradeList,
    UpgradeRequest,
    UpgradeScheduled,
    UpgradeSource,
    UpgradeView,
)
from services.devnet.state import AppRecord
from services.rpcclient import RpcCallError, RpcUnavailable, rpc_call
from vm.native.abi import AbiError, decode_args, encode_values
from vm.native.upgrades import UPGRADE_ADDRESS, UPGRADE_SELECTOR

__all__ = ["UpgradeJournal", "router", "upgrade_call"]

RECEIPT_WAIT_S = 20.0
JOURNAL_KEPT = 100  # upgrades remembered per app
GAS_MARGIN = 100_000
TX_GAS_CAP = 2**24  # a transaction's gas cap (EIP-7825), which the node enforces
FAILED = "the chain refused it in its block (see the transaction's receipt)"

router = APIRouter(
    prefix="/v1/apps",
    tags=["upgrades"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
    route_class=IdempotentRoute,
)
UpgradeId = Annotated[
    str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="the code hash (0x + 64 hex)")
]


@dataclass(frozen=True, slots=True)
class Sent:
    """An upgrade this API sent."""

    code_hash: str
    height: int
    transaction: str
    source: str
    error: str | None


class UpgradeJournal:
    """The upgrades this API sent, per app, newest last (in memory: a restarted API forgets
    them; the chain's state still has the code and the schedule)."""

    def __init__(self) -> None:
        self._sent: dict[str, list[Sent]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, sent: Sent) -> None:
        with self._lock:
            entries = self._sent.setdefault(name, [])
            entries.append(sent)
            del entries[:-JOURNAL_KEPT]

    def of(self, name: str) -> list[Sent]:
        with self._lock:
            return list(self._sent.get(name, []))


def journal_of(request: Request) -> UpgradeJournal:
    journal: UpgradeJournal = request.app.state.upgrades
    return journal


JournalDep = Annotated[UpgradeJournal, Depends(journal_of)]


def upgrade_call(app: bytes, source: bytes, height: int) -> bytes:
    return UPGRADE_SELECTOR + encode_values(["address", "bytes", "uint64"], [app, source, height])


# ---- reading ----


@router.get("/{name}/upgrades", summary="The app's code now and its scheduled upgrades")
def list_upgrades(nodes: NodesDep, journal: JournalDep, name: AppName) -> UpgradeList:
    record = nodes.record(name)
    schedule = call_node(record, "admin_upgrades", nodes.token)
    items = [_plain(item) for item in _items(schedule, journal.of(name))]
    return UpgradeList(
        name=name,
        app=schedule["app"],
        owner=schedule["owner"],
        code_hash=schedule["codeHash"],
        owner_key_held=_owner_key(record, schedule["owner"]) is not None,
        items=items,
    )


@router.get("/{name}/upgrades/{upgrade_id}", summary="One upgrade with its source")
def get_upgrade(
    nodes: NodesDep, journal: JournalDep, name: AppName, upgrade_id: UpgradeId
) -> UpgradeSource:
    schedule = call_node(nodes.record(name), "admin_upgrades", nodes.token)
    for item in _items(schedule, journal.of(name)):
        if item.id == upgrade_id.lower():
            return item
    raise NotFound(f"{name} has no upgrade {upgrade_id} (its code now, scheduled, or sent here)")


def _items(schedule: dict[str, Any], sent: list[Sent]) -> list[UpgradeSource]:
    """The code now, the scheduled upgrade(s), then what this API sent, newest first; each
    code hash once."""
    heights = {s.code_hash: s.height for s in sent if s.error is None}
    txs = {s.code_hash: s.transaction for s in sent}
    items: dict[str, UpgradeSource] = {}
    for pending in schedule["pending"]:
        code = pending["codeHash"]
        items.setdefault(
            code,
            _item(code, pending["height"], "scheduled", txs.get(code), pending["source"]),
        )
    current = schedule["codeHash"]
    if current is not None and current not in items:
        height = heights.get(current)
        items[current] = _item(current, height, "active", txs.get(current), schedule["source"])
    for s in reversed(sent):
        state = "failed" if s.error is not None else "replaced"
        items.setdefault(
            s.code_hash, _item(s.code_hash, s.height, state, s.transaction, s.source, s.error)
        )
    return sorted(items.values(), key=lambda item: _ORDER[item.state])


_ORDER = {"scheduled": 0, "active": 1, "replaced": 2, "failed": 3}


def _item(
    code: str,
    height: int | None,
    state: str,
    tx: str | None,
    source: str,
    error: str | None = None,
) -> UpgradeSource:
    return UpgradeSource(
        id=code,
        code_hash=code,
        height=height,
        state=state,  # type: ignore[arg-type]
        transaction=tx,
        error=error,
        source=source,
    )


def _plain(item: UpgradeSource) -> UpgradeView:
    return UpgradeView(**item.model_dump(exclude={"source"}))


# ---- scheduling ----


@router.post(
    "/{name}/upgrades",
    summary="Schedule an upgrade: source and height (the devnet signs as the owner) or the "
    "owner's signed raw transaction",
    dependencies=[Depends(require_admin)],
)
def schedule_upgrade(
    request: Request,
    nodes: NodesDep,
    journal: JournalDep,
    name: AppName,
    body: UpgradeRequest,
    idempotency_key: IdempotencyKey = None,
) -> UpgradeScheduled:
    record = nodes.record(name)
    if record["vm"] != "native":
        raise Conflict(f"{name} is an EVM app: only native apps are upgraded this way")
    if body.raw_transaction is not None:
        raw, signed_by = _checked_raw(record, body.raw_transaction), "caller"
    else:
        assert body.source is not None and body.height is not None  # (the model checked)
        raw, signed_by = _signed(record, nodes.token, body.source, body.height), "devnet"
    source, height = _request_of(record, raw)
    _simulate(record, raw)
    tx_hash = _rpc(record, "eth_sendRawTransaction", "0x" + raw.hex())
    receipt = _receipt(record, tx_hash)
    code = "0x" + keccak(source).hex()
    error = None if receipt["status"] == "0x1" else FAILED
    text = source.decode("utf-8", errors="replace")
    journal.add(name, Sent(code, height, tx_hash, text, error))
    if error is not None:
        raise Unprocessable(f"the upgrade transaction {tx_hash} failed: {error}")
    record_action(request, name, "upgrade")
    return UpgradeScheduled(
        name=name,
        id=code,
        code_hash=code,
        height=height,
        transaction=tx_hash,
        block_number=int(receipt["blockNumber"], 16),
        signed_by=signed_by,  # type: ignore[arg-type]
    )


def _owner_key(record: AppRecord, owner: str | None) -> str | None:
    """The owner's key, when the devnet holds it: a dev account of a chain that enables
    them (their keys are public)."""
    if owner is None:
        return None
    try:
        manifest = parse_manifest((FilePath(record["app_dir"]) / "rollup.toml").read_text())
    except (OSError, RollupError):
        return None
    address = bytes.fromhex(owner[2:])
    if not manifest.dev_accounts or address not in DEV_ADDRESSES:
        return None
    return DEV_KEYS[DEV_ADDRESSES.index(address)]


def _signed(record: AppRecord, token: str, source: str, height: int) -> bytes:
    owner = call_node(record, "admin_upgrades", token)["owner"]
    key = _owner_key(record, owner)
    if key is None:
        raise Conflict(
            f"the devnet does not hold the key of {record['name']}'s owner {owner}: "
            "send raw_transaction, the owner's signed upgrade transaction"
        )
    app, data = bytes.fromhex(record["address"][2:]), source.encode()
    call = upgrade_call(app, data, height)
    tx = {
        "type": 2,
        "chainId": record["chain_id"],
        "nonce": int(call_node(record, "eth_getTransactionCount", owner, "pending"), 16),
        "to": to_checksum_address(UPGRADE_ADDRESS),
        "value": 0,
        "gas": _gas(record, owner, call),
        "maxFeePerGas": 2 * int(call_node(record, "eth_gasPrice"), 16),
        "maxPriorityFeePerGas": 0,
        "data": call,
    }
    return bytes(Account.from_key(key).sign_transaction(tx).raw_transaction)


def _gas(record: AppRecord, owner: str, call: bytes) -> int:
    """The node's estimate with a margin, within a transaction's gas cap; 422 with the
    chain's reason when the upgrade would fail."""
    request = {"from": owner, "to": "0x" + UPGRADE_ADDRESS.hex(), "data": "0x" + call.hex()}
    estimate = int(_rpc(record, "eth_estimateGas", request), 16)
    return min(estimate + estimate // 5 + GAS_MARGIN, TX_GAS_CAP)


def _rpc(record: AppRecord, method: str, *params: Any) -> Any:
    """A call whose refusal is the request's fault (422, the node's reason)."""
    try:
        return rpc_call(record["rpc_url"], method, *params, timeout=NODE_TIMEOUT)
    except RpcCallError as exc:
        raise Unprocessable(f"the upgrade would fail: {exc.reason}") from None
    except RpcUnavailable as exc:
        raise NodeUnavailable(f"the node of {record['name']} did not answer: {exc}") from None


def _checked_raw(record: AppRecord, text: str) -> bytes:
    if len(text) % 2:
        raise BadRequest("raw_transaction is not whole bytes of hex")
    return bytes.fromhex(text[2:])


def _request_of(record: AppRecord, raw: bytes) -> tuple[bytes, int]:
    """(source, height) of an upgrade transaction for this app; 400 for anything else."""
    try:
        tx = decode_transaction(raw, record["chain_id"])
    except RollupError as exc:
        raise BadRequest(f"raw_transaction: {exc}") from None
    if tx.to != UPGRADE_ADDRESS or tx.data[:4] != UPGRADE_SELECTOR:
        raise BadRequest("raw_transaction is not upgrade(address,bytes,uint64) to 0x...0f0001")
    try:
        app, source, height = decode_args(["address", "bytes", "uint64"], tx.data[4:])
    except AbiError as exc:
        raise BadRequest(f"raw_transaction: {exc}") from None
    if bytes(app) != bytes.fromhex(record["address"][2:]):
        raise BadRequest(f"raw_transaction upgrades 0x{bytes(app).hex()}, not {record['name']}")
    return bytes(source), int(height)


def _receipt(record: AppRecord, tx_hash: str) -> dict[str, Any]:
    deadline = time.monotonic() + RECEIPT_WAIT_S
    while time.monotonic() < deadline:
        receipt: dict[str, Any] | None = call_node(record, "eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return receipt
        time.sleep(0.1)
    raise NodeUnavailable(f"the upgrade transaction {tx_hash} is not in a block yet")


def _simulate(record: AppRecord, raw: bytes) -> None:
    """422 with the chain's reason when the upgrade would fail now (not the owner, a height
    not in the future, code the loader refuses): eth_call of the same request."""
    tx = decode_transaction(raw, record["chain_id"])
    call = {
        "from": "0x" + tx.sender.hex(),
        "to": "0x" + UPGRADE_ADDRESS.hex(),
        "data": "0x" + tx.data.hex(),
        "gas": hex(tx.gas),
    }
    _rpc(record, "eth_call", call, "latest")
