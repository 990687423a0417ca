"""The bridge side of the `rollup` command: the workflows behind `rollup bridge ...`, and the
bridge fields of `rollup status` (bridge/README.md has the design).

    rollup bridge deposit APP --amount WEI [--to ADDR] [--token L1_TOKEN] [--data HEX --gas N]
                          [--key HEX] [--data-dir DIR] [--json]
        -> {"l1_tx", "deposit_id", "l2_tx", "l2_block", "seconds"}
    rollup bridge withdraw APP --amount WEI [--to L1_ADDR] [--token L1_TOKEN] [--key HEX] [--json]
        -> {"l2_tx", "withdrawal_hash", "l2_block"}
    rollup bridge finalize APP WITHDRAWAL_HASH [--key HEX] [--no-wait] [--json]
        -> {"prove_tx", "finalize_tx", "seconds"}
    rollup bridge status APP [--json]
    rollup bridge escape APP [--token L1_TOKEN ...] [--account ADDR] [--key HEX] [--json]
        -> {"escape_tx", "account", "paid": {"eth": WEI, "0x<l1 token>": AMOUNT}, "seconds"}
    rollup bridge reclaim APP NONCE [--key HEX] [--json]
        -> {"reclaim_tx", "amount", "token"}

APP is an app of the devnet recorded in --data-dir (its name or its directory); the L1, the
Portal and the inbox come from that devnet (DATA/devnet.json, DATA/l1/inbox.json). --key
signs on the L1 and on the app chain alike; it defaults to dev account 0, whose key is public
(a devnet's convenience: never on a real network). Amounts are integers of wei (or of the
token's smallest unit), and JSON prints them as integers. Hashes and addresses are 0x-hex.

- deposit: the Portal's depositETH (or approve + depositERC20); the L2 deposit transaction's
  hash follows from the event (rollup/deposits.py), so it waits for exactly that transaction
  on the app chain. `seconds`: from the L1 receipt to the L2 block having it.
- withdraw: a transaction to L2ToL1 (0x...0f0004) `initiateWithdrawal`, or the bridged token's
  `withdraw`; the withdrawal is its receipt's WithdrawalInitiated log, numbered by the chain
  (`rollup_getBlockWithdrawals`).
- finalize: waits until the node names an output root covering the withdrawal
  (`rollup_getWithdrawalProof`), checks the proof itself (the hash, the output root's preimage,
  the tree proof, the root standing in the inbox), proves unless it is proven already, waits
  for the chain's withdrawal delay and finalizes. --no-wait: prove what can be proven now and
  exit 1 saying when to come back. `seconds`: the whole command.
- escape: trustless. It re-derives the app's chain from the L1 inbox and the DA data alone
  (the verifier of `rollup verify`: services/verifier.py's `open_verifier`, with the Portal's
  deposits), up to the chain's last committed batch (or the exit root's batch, once the chain
  is in exit mode: the sequencer may have come back since),
  checks that the re-derived head is that batch's output root, builds the state trie
  (vm.commitment.StateTree) from the re-derived state, proves the account's state key and
  each bridged-token balance slot under its state root, and calls Portal.escape. Refused,
  before anything is re-derived, while the escape window has not passed or once the account
  escaped.
- reclaim: pays deposit NONCE back to its L1 depositor when the chain's exit root did not
  execute it (a deposit the sequencer never included). The deposit's record (its L1 caller,
  un-aliased, and what it escrowed) comes from the Portal's TransactionDeposited log and its
  L1 transaction; the exit root and its state are re-derived as for escape, and the chain's
  next deposit nonce (state key 0x0d, or its absence: 0) is proven under its state root.
  `amount` is wei, or the token's units when `token` (the L1 token) is not null. Refused in
  one line while the hatch is closed, and for a deposit that does not exist, was executed
  under the exit root (escape with it instead) or was reclaimed already. Anyone may reclaim;
  the Portal pays the depositor only.
Failures raise `BridgeError` with one line (exit code 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import to_checksum_address
from web3.exceptions import Web3Exception

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client, L1Error, L1Rejected
from bridge.portal import (
    DEFAULT_DEPOSIT_GAS,
    DepositRecord,
    FinalizedWithdrawal,
    KeyProof,
    OutputRootProof,
    Portal,
    TokenClaim,
)
from da.commitment import CommitmentRecord, InboxReader, RevertRecord
from da.verifier import Replayer
from rollup.crypto import keccak
from rollup.deposits import L2_TO_L1_ADDRESS, bridged_token_address
from rollup.errors import RollupError
from rollup.genesis import DEV_KEYS
from rollup.manifest import Manifest, parse_manifest
from rollup.outputs import output_root
from rollup.types import Address
from rollup.withdrawals import DEPTH, Withdrawal, verify_tree_proof
from services.devnet import AppRecord, DevnetState, is_running, read_state
from services.keys import load_key
from services.rpcclient import RpcCallError, RpcClient, RpcUnavailable
from services.verifier import open_verifier
from services.waiting import wait_until
from vm.bridge import WITHDRAWAL_INITIATED_TOPIC, initiate_withdrawal_calldata
from vm.commitment import Proof, StateTree
from vm.contracts.bridged_token import balance_slot
from vm.state import account_key, storage_key

__all__ = [
    "BridgeError",
    "AppRpcError",
    "BridgeTarget",
    "open_target",
    "add_bridge_parser",
    "deposit",
    "withdraw",
    "finalize",
    "bridge_status",
    "escape",
    "reclaim",
    "rederive",
    "InboxUpTo",
    "status_bridge",
    "ProvenWithdrawal",
    "parse_withdrawal_proof",
    "withdrawal_index",
    "first_missing",
    "account_balance",
]

DEFAULT_KEY = DEV_KEYS[0]
DEFAULT_TIMEOUT = 300.0  # seconds a command waits for the app chain or the L1
POLL_S = 0.02  # app-chain polls: cheap on loopback, and they do not pad the times reported
L1_POLL_S = 0.5
WITHDRAW_SELECTOR = keccak(b"withdraw(address,uint256)")[:4]  # a bridged token's
RPC_INVALID_PARAMS = -32602


class BridgeError(RollupError):
    """A bridge workflow could not be done; the message is one line (exit code 1)."""


class AppRpcError(BridgeError):
    """The app's node answered a JSON-RPC call with an error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method, self.code, self.reason = method, code, message


# ---- where things are ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BridgeTarget:
    """An app of the running devnet and the L1 bridge it settles to."""

    name: str
    chain_id: int
    vm: str
    rpc_url: str
    app_dir: Path
    data_dir: Path  # the node's data dir (its local DA store is da/ in it)
    l1_rpc: str
    portal: bytes
    inbox: bytes
    from_block: int  # the inbox's deployment block: events are read from there

    def manifest(self) -> Manifest:
        return parse_manifest((self.app_dir / "rollup.toml").read_text(encoding="utf-8"))


def open_target(data_dir: Path, app: str) -> BridgeTarget:
    """`app` (a name or an app directory) of the devnet running from `data_dir`."""
    state = read_state(data_dir.resolve())
    if state is None or not is_running(state):
        raise BridgeError(f"no devnet is running from {data_dir}; start one with `rollup up`")
    record = find_app(state, app)
    if record is None:
        names = ", ".join(a["name"] for a in state["apps"]) or "none"
        raise BridgeError(f"no app {app!r} in the devnet of {data_dir} (apps: {names})")
    bridge = _bridge_record(data_dir)
    if bridge is None:
        raise BridgeError(f"the devnet of {data_dir} has no L1 bridge (it runs with --da none)")
    portal, inbox, from_block = bridge
    return BridgeTarget(
        record["name"],
        record["chain_id"],
        record["vm"],
        record["rpc_url"],
        Path(record["app_dir"]),
        Path(record["data_dir"]),
        state["l1"]["rpc_url"],
        portal,
        inbox,
        from_block,
    )


def find_app(state: DevnetState, app: str) -> AppRecord | None:
    wanted = Path(app).resolve()
    for record in state["apps"]:
        if record["name"] == app or Path(record["app_dir"]) == wanted:
            return record
    return None


def _bridge_record(data_dir: Path) -> tuple[bytes, bytes, int] | None:
    """(Portal, inbox, inbox block) from DATA/l1/inbox.json (services/l1setup.py)."""
    try:
        record = json.loads((data_dir / "l1" / "inbox.json").read_text(encoding="utf-8"))
        return (_raw(record["portal"]), _raw(record["address"]), int(record["block"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ---- the app's node ------------------------------------------------------------------------


class AppRpc(RpcClient):
    """JSON-RPC to one app's node (services/rpcclient.py), its errors the bridge's: no answer
    is a `BridgeError`, an error answer an `AppRpcError` with its code."""

    def call(self, method: str, *params: Any) -> Any:
        try:
            return super().call(method, *params)
        except RpcUnavailable as exc:
            raise BridgeError(f"the app's node does not answer {method}: {exc}") from None
        except RpcCallError as exc:
            raise AppRpcError(method, exc.code, exc.reason) from None

    def send(self, key: str, to: bytes, value: int, data: bytes, chain_id: int) -> bytes:
        """Sign an EIP-1559 transaction with `key` (gas estimated by the node) and send it;
        its hash. The node's estimate is where a call that would revert says why."""
        sender = Account.from_key(key).address
        call = {"from": sender, "to": _hex(to), "value": hex(value), "data": _hex(data)}
        try:
            gas = int(self.call("eth_estimateGas", call), 16)
        except AppRpcError as exc:
            raise BridgeError(
                f"the transaction would fail on chain {chain_id}: {exc.reason}"
            ) from None
        base = int(self.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        tip = int(self.call("eth_maxPriorityFeePerGas"), 16)
        tx = {
            "type": 2,
            "chainId": chain_id,
            "to": to_checksum_address(to),
            "value": value,
            "data": data,
            "gas": gas + gas // 5 + 10_000,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * base + tip,
            "nonce": int(self.call("eth_getTransactionCount", sender, "pending"), 16),
        }
        raw = bytes(Account.from_key(key).sign_transaction(tx).raw_transaction)
        return _raw(self.call("eth_sendRawTransaction", _hex(raw)))

    def wait_receipt(self, tx_hash: bytes, timeout: float) -> dict[str, Any]:
        def mined() -> dict[str, Any] | None:
            receipt = self.call("eth_getTransactionReceipt", _hex(tx_hash))
            return receipt if receipt and receipt.get("blockNumber") else None

        return wait_until(
            mined,
            timeout,
            f"the receipt of 0x{tx_hash.hex()} on the app chain",
            interval=POLL_S,
            error=BridgeError,
        )


# ---- deposit -------------------------------------------------------------------------------


def deposit(
    target: BridgeTarget,
    amount: int,
    to: bytes | None = None,
    token: bytes | None = None,
    data: bytes = b"",
    gas: int | None = None,
    key: str = DEFAULT_KEY,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Deposit on the L1 and wait until the app chain includes the deposit transaction."""
    l1 = L1Client(target.l1_rpc, key)
    portal = Portal(l1, target.portal)
    recipient = to if to is not None else l1.address
    gas_limit = gas if gas is not None else max(DEFAULT_DEPOSIT_GAS, 21_000 + 16 * len(data))
    if token is None:
        sent = portal.deposit_eth(target.chain_id, recipient, amount, gas_limit, data)
    else:
        portal.approve_token(token, amount)
        sent = portal.deposit_erc20(target.chain_id, token, recipient, amount, gas_limit, data)
    receipt_at = time.monotonic()
    app = AppRpc(target.rpc_url)
    try:

        def included() -> dict[str, Any] | None:
            found = app.call("eth_getTransactionByHash", _hex(sent.deposit.hash))
            return found if found and found.get("blockNumber") else None

        tx = wait_until(
            included,
            timeout,
            f"deposit {sent.deposit.nonce} (0x"
            f"{sent.deposit.hash.hex()}) on chain {target.chain_id}",
            interval=POLL_S,
            error=BridgeError,
        )
        seconds = time.monotonic() - receipt_at
        receipt = app.wait_receipt(sent.deposit.hash, timeout)
    finally:
        app.close()
    block = int(tx["blockNumber"], 16)
    if receipt.get("status") != "0x1":
        raise BridgeError(
            f"deposit 0x{sent.deposit.hash.hex()} is in block {block} of chain "
            f"{target.chain_id} (what it minted stands) but its call to "
            f"0x{sent.deposit.to.hex()} reverted"
        )
    return {
        "l1_tx": _hex(sent.l1_tx),
        "deposit_id": _hex(sent.deposit.source_hash),
        "l2_tx": _hex(sent.deposit.hash),
        "l2_block": block,
        "seconds": round(seconds, 3),
    }


# ---- withdraw ------------------------------------------------------------------------------


def withdraw(
    target: BridgeTarget,
    amount: int,
    to: bytes | None = None,
    token: bytes | None = None,
    key: str = DEFAULT_KEY,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Start a withdrawal of ETH (or of a bridged token) on the app chain to `to` on the L1."""
    sender = _raw(Account.from_key(key).address)
    recipient = to if to is not None else sender
    if token is None:
        call_to, value = L2_TO_L1_ADDRESS, amount
        data = initiate_withdrawal_calldata(recipient, 0, b"")
    else:
        call_to, value = bridged_token_address(token), 0
        data = WITHDRAW_SELECTOR + bytes(12) + recipient + amount.to_bytes(32, "big")
    app = AppRpc(target.rpc_url)
    try:
        tx_hash = app.send(key, call_to, value, data, target.chain_id)
        receipt = app.wait_receipt(tx_hash, timeout)
        if receipt.get("status") != "0x1":
            raise BridgeError(
                f"the withdrawal transaction 0x{tx_hash.hex()} reverted in block "
                f"{int(receipt['blockNumber'], 16)}"
            )
        block = int(receipt["blockNumber"], 16)
        mine = [fields for log in receipt["logs"] if (fields := _withdrawal_fields(log))]
        if not mine:
            raise BridgeError(f"transaction 0x{tx_hash.hex()} started no withdrawal")
        listed = app.call("rollup_getBlockWithdrawals", hex(block)) or []
        receipts = app.call("eth_getBlockReceipts", hex(block)) or []
    finally:
        app.close()
    in_block = [
        (r["transactionHash"], fields)
        for r in receipts
        for log in r["logs"]
        if (fields := _withdrawal_fields(log))
    ]
    candidates = [w for w in listed if _listed_fields(w) == mine[0]]
    identical = [h for h, fields in in_block if fields == mine[0]]
    index = withdrawal_index(len(candidates), identical, _hex(tx_hash))
    return {"l2_tx": _hex(tx_hash), "withdrawal_hash": candidates[index]["hash"], "l2_block": block}


def withdrawal_index(candidates: int, identical: Sequence[str], tx_hash: str) -> int:
    """Which of a block's `candidates` withdrawals with the same fields is the first one
    `tx_hash` started. `identical`: the transactions of the block's WithdrawalInitiated logs
    with those fields, in block order (a receipt per log). Withdrawals without a receipt
    (started by inbound cross-app calls) run after the deposits and before the transactions,
    so a transaction's position is shifted by their number."""
    if tx_hash not in identical or candidates < len(identical):
        raise BridgeError(
            f"the chain's withdrawals of the block do not match transaction {tx_hash}'s log"
        )
    return candidates - len(identical) + identical.index(tx_hash)


Fields = tuple[str, str, int, str, int, int, str]


def _withdrawal_fields(log: dict[str, Any]) -> Fields | None:
    """(sender, target, value, l1Token, tokenAmount, gasLimit, data) of a WithdrawalInitiated
    log of L2ToL1, lower-case hex; None for any other log."""
    topics = log.get("topics") or []
    if str(log.get("address", "")).lower() != _hex(L2_TO_L1_ADDRESS) or len(topics) != 3:
        return None
    if topics[0] != _hex(WITHDRAWAL_INITIATED_TOPIC):
        return None
    value, token, amount, gas_limit, data = abi_decode(
        ["uint256", "address", "uint256", "uint64", "bytes"], _raw(log["data"])
    )
    return (
        "0x" + topics[1][-40:],
        "0x" + topics[2][-40:],
        int(value),
        token.lower(),
        int(amount),
        int(gas_limit),
        _hex(data),
    )


def _listed_fields(w: dict[str, Any]) -> Fields:
    return (
        w["sender"].lower(),
        w["target"].lower(),
        int(w["value"], 16),
        w["l1Token"].lower(),
        int(w["tokenAmount"], 16),
        int(w["gasLimit"], 16),
        w["data"].lower(),
    )


# ---- finalize ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvenWithdrawal:
    """What `rollup_getWithdrawalProof` answers, decoded and checked."""

    withdrawal: Withdrawal
    batch_index: int
    output: OutputRootProof
    count: int
    siblings: tuple[bytes, ...]


def parse_withdrawal_proof(answer: dict[str, Any], expected: bytes) -> ProvenWithdrawal:
    """Decode a node's proof and check it as the Portal will: the withdrawal hashes to
    `expected`, the preimage to the output root, and the tree proof holds. The node is not
    trusted: a wrong answer is a `BridgeError`, not an L1 revert."""
    try:
        w = answer["withdrawal"]
        withdrawal = Withdrawal(
            int(w["chainId"], 16),
            int(w["nonce"], 16),
            Address(_raw(w["sender"])),
            Address(_raw(w["target"])),
            int(w["value"], 16),
            Address(_raw(w["l1Token"])),
            int(w["tokenAmount"], 16),
            int(w["gasLimit"], 16),
            _raw(w["data"]),
        )
        p = answer["outputRootProof"]
        output = OutputRootProof(
            _raw(p["stateRoot"]), _raw(p["withdrawalsRoot"]), _raw(p["blockHash"])
        )
        proven = ProvenWithdrawal(
            withdrawal,
            int(answer["batchIndex"], 16),
            output,
            int(answer["count"], 16),
            tuple(_raw(s) for s in answer["siblings"]),
        )
        claimed_root = _raw(answer["outputRoot"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BridgeError(f"the node's withdrawal proof does not decode: {exc}") from None
    if withdrawal.hash != expected:
        raise BridgeError(
            f"the node's withdrawal hashes to 0x{withdrawal.hash.hex()}, not 0x{expected.hex()}"
        )
    if output.root != claimed_root:
        raise BridgeError("the node's output root proof does not hash to its output root")
    if len(proven.siblings) != DEPTH or not verify_tree_proof(
        output.withdrawals_root, proven.count, expected, withdrawal.nonce, proven.siblings
    ):
        raise BridgeError(f"the node's tree proof of withdrawal {withdrawal.nonce} does not hold")
    return proven


def finalize(
    target: BridgeTarget,
    withdrawal_hash: bytes,
    key: str = DEFAULT_KEY,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Prove (unless proven) and finalize a withdrawal on the L1; see the module docstring."""
    started = time.monotonic()
    l1 = L1Client(target.l1_rpc, key)
    portal, inbox = Portal(l1, target.portal), BatchInbox(l1, target.inbox)
    name = f"withdrawal 0x{withdrawal_hash.hex()}"
    if portal.is_finalized(withdrawal_hash):
        raise BridgeError(f"{name} is already finalized")
    proof = _wait_proof(target, withdrawal_hash, wait, timeout)
    if proof.withdrawal.chain_id != target.chain_id:
        raise BridgeError(f"{name} is of chain {proof.withdrawal.chain_id}, not {target.chain_id}")
    prove_tx, batch_index = _prove(portal, inbox, proof)
    matures_at = (
        inbox.output(target.chain_id, batch_index)[1]
        + portal.chain(target.chain_id).withdrawal_delay
    )

    def matured() -> FinalizedWithdrawal | None:
        now = max(_l1_time(l1) + 1, int(time.time()))
        if now >= matures_at:
            try:
                return portal.finalize_withdrawal(proof.withdrawal)
            except L1Rejected as exc:
                if exc.error == "AlreadyFinalized":
                    raise BridgeError(f"{name} is already finalized") from None
                if exc.error != "NotMatured":
                    raise
        if not wait:
            proven = f"proven (L1 tx {prove_tx}); " if prove_tx else "proven; "
            raise BridgeError(
                f"{name} is {proven}it matures at L1 time {matures_at}, in "
                f"{max(matures_at - now, 0)} s: run finalize again then"
            )
        return None

    left = max(timeout - (time.monotonic() - started), 0.0)
    done = wait_until(
        matured,
        left,
        f"{name} to mature (L1 time {matures_at})",
        interval=L1_POLL_S,
        error=BridgeError,
    )
    if not done.success:
        raise BridgeError(
            f"{name} is finalized (L1 tx 0x{done.l1_tx.hex()}) but its call to "
            f"0x{proof.withdrawal.target.hex()} failed; it cannot be "
            "replayed"
        )
    return {
        "prove_tx": prove_tx,
        "finalize_tx": _hex(done.l1_tx),
        "seconds": round(time.monotonic() - started, 3),
    }


def _wait_proof(
    target: BridgeTarget, withdrawal_hash: bytes, wait: bool, timeout: float
) -> ProvenWithdrawal:
    """The node's proof once a posted output root covers the withdrawal."""
    app = AppRpc(target.rpc_url)
    answer: dict[str, Any] = {}

    def covered() -> bool:
        try:
            answer.update(app.call("rollup_getWithdrawalProof", _hex(withdrawal_hash)))
        except AppRpcError as exc:
            if exc.code == RPC_INVALID_PARAMS or not wait:
                raise BridgeError(exc.reason) from None
            return False
        return True

    try:
        wait_until(
            covered,
            timeout,
            f"an output root covering withdrawal "
            f"0x{withdrawal_hash.hex()} (is the app's DA poster running?)",
            interval=0.1,
            error=BridgeError,
        )
    finally:
        app.close()
    return parse_withdrawal_proof(answer, withdrawal_hash)


def _prove(portal: Portal, inbox: BatchInbox, proof: ProvenWithdrawal) -> tuple[str | None, int]:
    """(the prove transaction, or None when it was proven already against a standing root;
    the batch it is proven against)."""
    w = proof.withdrawal
    held = portal.proven(w.hash)
    if held is not None:
        root, index = held
        if inbox.output(w.chain_id, index)[0] == root:
            return None, index
    standing = inbox.output(w.chain_id, proof.batch_index)[0]
    if standing != proof.output.root:
        raise BridgeError(
            f"batch {proof.batch_index} of chain {w.chain_id} on the L1 does not "
            "have the output root the node names"
        )
    tx = portal.prove_withdrawal(w, proof.batch_index, proof.output, proof.count, proof.siblings)
    return _hex(tx), proof.batch_index


# ---- status --------------------------------------------------------------------------------


def bridge_status(target: BridgeTarget) -> dict[str, Any]:
    """The bridge as the L1 and the app's node see it now."""
    l1 = L1Client(target.l1_rpc)
    portal, inbox = Portal(l1, target.portal), BatchInbox(l1, target.inbox)
    terms = portal.chain(target.chain_id)
    manifest = target.manifest().bridge
    app = AppRpc(target.rpc_url)
    try:
        head = app.call("eth_getBlockByNumber", "latest", False)
        included = _included_deposits(portal, app, target, terms.deposit_count)
    finally:
        app.close()
    origin = None
    if "l1Origin" in head:
        origin = {"number": int(head["l1Origin"], 16), "hash": head.get("l1OriginHash")}
    batches = inbox.batch_count(target.chain_id)
    last_commit = inbox.last_commit_time(target.chain_id) if batches else None
    exit_mode = portal.exit_mode(target.chain_id)
    return {
        "app": target.name,
        "chain_id": target.chain_id,
        "l1": {
            "rpc_url": target.l1_rpc,
            "chain_id": l1.chain_id,
            "head": l1.block_number(),
            "time": _l1_time(l1),
        },
        "portal": _hex(target.portal),
        "inbox": _hex(target.inbox),
        "registered": terms.registered,
        "l1_origin": origin,
        "l2_head": int(head["number"], 16),
        "deposits": {
            "sent": terms.deposit_count,
            "included": included,
            "pending": terms.deposit_count - included,
        },
        "withdrawal_delay": terms.withdrawal_delay,
        "escape_window": terms.escape_window,
        "manifest": {
            "confirmations": manifest.confirmations,
            "sequencing_window": manifest.sequencing_window,
            "withdrawal_delay": manifest.withdrawal_delay,
            "escape_window": manifest.escape_window,
        },
        "eth_balance": portal.eth_balance(target.chain_id),
        "batches": batches,
        "last_commit_time": last_commit,
        "escape_opens_after": None if last_commit is None else last_commit + terms.escape_window,
        "escape_hatch_open": portal.escape_hatch_open(target.chain_id),  # no deposits then
        "exit_mode": None
        if exit_mode is None
        else {"batch": exit_mode[1], "root": _hex(exit_mode[0])},
    }


def _included_deposits(portal: Portal, app: AppRpc, target: BridgeTarget, sent: int) -> int:
    """How many of the chain's L1 deposits the app chain has: the chain executes them in
    nonce order, so the included ones are a prefix, found by bisection over their hashes."""
    if sent == 0:
        return 0
    hashes = [d.hash for d in portal.deposits(target.chain_id, target.from_block)]

    def on_chain(nonce: int) -> bool:
        tx = app.call("eth_getTransactionByHash", _hex(hashes[nonce]))
        return bool(tx and tx.get("blockNumber"))

    return first_missing(len(hashes), on_chain)


def first_missing(count: int, present: Callable[[int], bool]) -> int:
    """The first of 0..count-1 that is not `present`, where the present ones are a prefix
    (count when all are)."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if present(middle):
            low = middle + 1
        else:
            high = middle
    return low


def status_bridge(state: DevnetState, record: AppRecord) -> dict[str, Any] | None:
    """`rollup status --json`'s `apps[i].bridge`: the Portal and inbox addresses and the
    chain's delay and windows (the Portal's terms when the L1 answers, else the manifest's);
    None for a devnet without a bridge (--da none)."""
    bridge = _bridge_record(Path(state["data_dir"]))
    if bridge is None:
        return None
    portal, inbox, _block = bridge
    try:
        manifest = parse_manifest((Path(record["app_dir"]) / "rollup.toml").read_text())
        terms = manifest.bridge
    except (OSError, RollupError):
        return {"portal": _hex(portal), "inbox": _hex(inbox)}
    delay, window = terms.withdrawal_delay, terms.escape_window
    with contextlib.suppress(L1Error):
        registered = Portal(L1Client(state["l1"]["rpc_url"], timeout=2.0), portal).chain(
            record["chain_id"]
        )
        if registered.registered:
            delay, window = registered.withdrawal_delay, registered.escape_window
    return {
        "portal": _hex(portal),
        "inbox": _hex(inbox),
        "withdrawal_delay": delay,
        "escape_window": window,
        "confirmations": terms.confirmations,
        "sequencing_window": terms.sequencing_window,
    }


# ---- escape --------------------------------------------------------------------------------


def escape(
    target: BridgeTarget,
    tokens: Sequence[bytes] = (),
    account: bytes | None = None,
    key: str = DEFAULT_KEY,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Exit `account` (default: the key's) with its ETH and bridged tokens as the chain's
    last output root has them; see the module docstring."""
    started = time.monotonic()
    l1 = L1Client(target.l1_rpc, key)
    portal, inbox = Portal(l1, target.portal), BatchInbox(l1, target.inbox)
    who = account if account is not None else l1.address
    chain = target.chain_id
    batch = _exit_batch(portal, inbox, l1, chain)
    assets = [a for a in [bytes(20), *tokens] if not portal.has_escaped(chain, who, a)]
    if not assets:
        raise BridgeError(f"account 0x{who.hex()} already escaped from chain {chain}")
    exit_state = _exit_state(target, inbox, batch, timeout)
    tree = exit_state.tree
    paid: dict[str, int] = {}
    value: bytes = b""  # no ETH claimed
    siblings: Sequence[bytes] = ()
    if bytes(20) in assets:
        proof = tree.prove(account_key(who))
        if proof.value is not None and account_balance(proof.value) > 0:
            value, siblings = proof.value, proof.siblings
            paid["eth"] = account_balance(proof.value)
    claims = []
    for token in (a for a in assets if a != bytes(20)):
        proof = tree.prove(storage_key(bridged_token_address(token), balance_slot(who)))
        if proof.value is not None and int.from_bytes(proof.value, "big") > 0:
            claims.append(TokenClaim(token, proof.value, proof.siblings))
            paid[_hex(token)] = int.from_bytes(proof.value, "big")
    if not paid:
        raise BridgeError(
            f"account 0x{who.hex()} holds nothing to claim on chain {chain} as of "
            f"block {exit_state.block} (batch {batch})"
        )
    tx = portal.escape(chain, exit_state.output, who, value, siblings, claims)
    return {
        "escape_tx": _hex(tx),
        "account": _hex(who),
        "paid": paid,
        "seconds": round(time.monotonic() - started, 3),
    }


@dataclass(frozen=True, slots=True)
class _ExitState:
    """The state under an exit batch's output root, re-derived from the L1 and the DA data."""

    tree: StateTree
    output: OutputRootProof
    block: int  # the batch's last block


def _exit_state(target: BridgeTarget, inbox: BatchInbox, batch: int, timeout: float) -> _ExitState:
    """Re-derive the chain up to `batch` and check it against that batch's output root."""
    replayer = rederive(target, batch, timeout)
    head = replayer.head
    if output_root(head) != inbox.output(target.chain_id, batch)[0]:
        raise BridgeError(
            f"the chain re-derived to block {head.number}, whose output root is "
            f"not batch {batch}'s on the L1"
        )
    tree = StateTree(replayer.world.items())
    if tree.root != head.state_root:
        raise BridgeError("the re-derived state does not hash to its block's state root")
    output = OutputRootProof(head.state_root, head.withdrawals_root, replayer.head_hash)
    return _ExitState(tree, output, head.number)


def account_balance(value: bytes) -> int:
    """The balance in an account's state value (nonce: 8 bytes ++ balance, big-endian)."""
    return int.from_bytes(value[8:], "big")


def _exit_batch(portal: Portal, inbox: BatchInbox, l1: L1Client, chain: int) -> int:
    """The batch whose output root an escape proves against: the exit root's once the chain
    is in exit mode, else the last one, if the escape window has passed (`BridgeError`
    otherwise)."""
    held = portal.exit_mode(chain)
    if held is not None:
        return held[1]
    count = inbox.batch_count(chain)
    if count == 0:
        raise BridgeError(
            f"chain {chain} never committed a batch: there is no output root to escape with"
        )
    last = inbox.last_commit_time(chain)
    opens_after = last + portal.chain(chain).escape_window
    now = max(_l1_time(l1) + 1, int(time.time()))
    if now <= opens_after:
        raise BridgeError(
            f"the escape hatch of chain {chain} is not open: its last output root "
            f"was committed at L1 time {last}, and anyone may exit after L1 time "
            f"{opens_after} (in {opens_after - now + 1} s)"
        )
    return count - 1


# ---- reclaim -------------------------------------------------------------------------------

NEXT_DEPOSIT_KEY = b"\x0d"  # vm/bridge.py: the chain's next deposit nonce to execute


def reclaim(
    target: BridgeTarget, nonce: int, key: str = DEFAULT_KEY, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """Pay deposit `nonce` back to its L1 depositor, the chain's exit root not having executed
    it; see the module docstring."""
    l1 = L1Client(target.l1_rpc, key)
    portal, inbox = Portal(l1, target.portal), BatchInbox(l1, target.inbox)
    chain = target.chain_id
    _check_reclaimable(portal, chain, nonce)
    batch = _exit_batch(portal, inbox, l1, chain)
    record = portal.deposit_record(chain, nonce, target.from_block)
    if record.hash != portal.deposit_hash(chain, nonce):
        raise BridgeError(f"deposit {nonce} of chain {chain}: its log does not match the Portal")
    exit_state = _exit_state(target, inbox, batch, timeout)
    proof = exit_state.tree.prove(NEXT_DEPOSIT_KEY)
    executed = int.from_bytes(proof.value or b"", "big")
    if nonce < executed:
        raise BridgeError(
            f"deposit {nonce} of chain {chain} was executed by the exit root (batch {batch}, "
            f"block {exit_state.block}): its value is on the chain, exit with `rollup bridge "
            "escape`"
        )
    tx = portal.reclaim_deposit(chain, nonce, exit_state.output, _key_proof(proof), record)
    return _reclaim_answer(tx, record)


def _check_reclaimable(portal: Portal, chain: int, nonce: int) -> None:
    """Refuse, before anything is re-derived, a deposit that does not exist or was paid back."""
    count = portal.chain(chain).deposit_count
    if nonce >= count:
        raise BridgeError(f"chain {chain} has no deposit {nonce} (it has {count})")
    if portal.is_reclaimed(chain, nonce):
        raise BridgeError(f"deposit {nonce} of chain {chain} is already reclaimed")


def _key_proof(proof: Proof) -> KeyProof:
    """vm/commitment.py's proof of a key (present or absent) as the Portal takes it."""
    if proof.value is not None:
        return KeyProof(proof.value, proof.siblings)
    other = proof.other_key_hash or bytes(32)
    return KeyProof(b"", proof.siblings, other, proof.other_value)


def _reclaim_answer(tx: bytes, record: DepositRecord) -> dict[str, Any]:
    """The command's answer: what the depositor got back, in wei or in an L1 token."""
    if record.l1_token == bytes(20):
        return {"reclaim_tx": _hex(tx), "amount": record.eth_amount, "token": None}
    return {"reclaim_tx": _hex(tx), "amount": record.token_amount, "token": _hex(record.l1_token)}


def rederive(target: BridgeTarget, batch: int, timeout: float) -> Replayer:
    """The app's chain re-executed from the L1 inbox and the DA data alone, up to the last
    block of batch `batch`: the verifier `rollup verify` runs (services/verifier.py, with the
    Portal's deposits), reading the chain's commitments only up to that batch."""
    store = (target.data_dir / "da").resolve()
    _name, verifier = open_verifier(
        target.app_dir,
        target.l1_rpc,
        target.inbox,
        [store] if store.is_dir() else [],
        target.from_block,
        target.portal,
    )
    # the verifier reads this chain's commitments through its inbox port: cut it at `batch`
    verifier.inbox = InboxUpTo(verifier.inbox, target.chain_id, batch)
    try:
        status = verifier.verify_until_idle(timeout)
    finally:
        verifier.close()
    if status.state != "in_sync":
        raise BridgeError(f"the chain's posted data does not re-derive: {status.message}")
    if status.waiting is not None:
        raise BridgeError(f"cannot re-derive the chain from the L1 and DA: {status.waiting}")
    return verifier.replayer


class InboxUpTo:
    """The inbox as a verifier reads it, without chain `chain_id`'s commitments after batch
    `last` (an escape proves against a given batch; other chains are read whole)."""

    def __init__(self, inbox: InboxReader, chain_id: int, last: int) -> None:
        self.inbox, self.chain_id, self.last = inbox, chain_id, last

    def commitments(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[CommitmentRecord]:
        found = self.inbox.commitments(chain_id, from_l1_block, to_l1_block)
        if chain_id != self.chain_id:
            return found
        return [c for c in found if c.index <= self.last]

    def reverts(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[RevertRecord]:
        return self.inbox.reverts(chain_id, from_l1_block, to_l1_block)

    def l1_block_number(self, tag: str = "latest") -> int:
        return self.inbox.l1_block_number(tag)


# ---- the command line ----------------------------------------------------------------------


def add_bridge_parser(sub: Any, data_dir_option: Callable[[argparse.ArgumentParser], None]) -> None:
    bridge = sub.add_parser(
        "bridge", help="deposit, withdraw, finalize, escape, reclaim: the L1 bridge"
    )
    commands = bridge.add_subparsers(dest="bridge_command", required=True, metavar="COMMAND")
    key_help = (
        "the private key that signs, on the L1 and the app chain (default: dev account "
        "0, whose key is public: a devnet's convenience only)"
    )

    def command(
        name: str, help_text: str, handler: Callable[[argparse.Namespace], Any]
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("app", metavar="APP", help="an app of the devnet: name or directory")
        if name != "status":
            signer = parser.add_mutually_exclusive_group()
            signer.add_argument(
                "--key", type=_key, default=DEFAULT_KEY, metavar="HEX", help=key_help
            )
            signer.add_argument(
                "--key-file",
                type=Path,
                metavar="F",
                help="read the key from F (mode 0600), so it is on no command line",
            )
            parser.add_argument(
                "--timeout",
                type=float,
                default=DEFAULT_TIMEOUT,
                metavar="S",
                help=f"give up waiting after S s (default {DEFAULT_TIMEOUT:g})",
            )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        data_dir_option(parser)
        parser.set_defaults(handler=lambda args: _run(args, handler))
        return parser

    dep = command(
        "deposit", "deposit ETH or an ERC-20 from the L1 and wait until credited", _cmd_deposit
    )
    dep.add_argument("--amount", type=_amount, required=True, metavar="WEI")
    dep.add_argument(
        "--to",
        type=_address,
        metavar="ADDR",
        help="the app-chain recipient, or the contract a forced call calls "
        "(default: the key's address)",
    )
    dep.add_argument("--token", type=_address, metavar="L1_TOKEN", help="an L1 ERC-20")
    dep.add_argument(
        "--data",
        type=_data,
        default=b"",
        metavar="HEX",
        help="calldata: a forced call from the L1 sender to --to",
    )
    dep.add_argument(
        "--gas",
        type=_amount,
        metavar="N",
        help=f"the call's L2 gas (default {DEFAULT_DEPOSIT_GAS})",
    )

    out = command("withdraw", "start a withdrawal to the L1 on the app chain", _cmd_withdraw)
    out.add_argument("--amount", type=_amount, required=True, metavar="WEI")
    out.add_argument(
        "--to",
        type=_address,
        metavar="L1_ADDR",
        help="the L1 recipient (default: the key's address)",
    )
    out.add_argument(
        "--token",
        type=_address,
        metavar="L1_TOKEN",
        help="withdraw this L1 token's bridged token instead of ETH",
    )

    fin = command(
        "finalize", "prove a withdrawal on the L1 and finalize it after the delay", _cmd_finalize
    )
    fin.add_argument("withdrawal_hash", type=_hash, metavar="WITHDRAWAL_HASH")
    fin.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for an output root or the delay: prove what can be "
        "proven now, else exit 1 saying when to come back",
    )

    command("status", "the bridge of an app: addresses, L1 origin, deposits, windows", _cmd_status)

    esc = command(
        "escape", "exit with a state proof once the chain stopped committing", _cmd_escape
    )
    esc.add_argument(
        "--token",
        type=_address,
        action="append",
        default=[],
        metavar="L1_TOKEN",
        help="also claim this bridged token (repeatable)",
    )
    esc.add_argument(
        "--account",
        type=_address,
        metavar="ADDR",
        help="the app-chain account to pay out (default: the key's address); "
        "anyone may exit any account, always to that account",
    )

    back = command(
        "reclaim",
        "pay a deposit the chain's exit root did not execute back to its L1 depositor",
        _cmd_reclaim,
    )
    back.add_argument("nonce", type=_amount, metavar="NONCE", help="the deposit's Portal nonce")


def _run(args: argparse.Namespace, handler: Callable[[argparse.Namespace], Any]) -> int:
    with _one_line():
        if getattr(args, "key_file", None) is not None:
            args.key = "0x" + load_key(args.key_file).hex()
        result = handler(args)
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else value
            print(f"{name}: {'-' if value is None else shown}")
    return 0


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """What the L1 or a node raised, as a `BridgeError` of one line."""
    try:
        yield
    except (
        RollupError,
        httpx.HTTPError,
        requests.RequestException,
        Web3Exception,
        ConnectionError,
        OSError,
    ) as exc:
        raise BridgeError(" ".join(str(exc).split()) or type(exc).__name__) from None


def _cmd_deposit(args: argparse.Namespace) -> dict[str, Any]:
    if args.data and args.token is not None:
        raise BridgeError("--data goes with an ETH deposit (a forced call), not with --token")
    return deposit(
        open_target(args.data_dir, args.app),
        args.amount,
        args.to,
        args.token,
        args.data,
        args.gas,
        args.key,
        args.timeout,
    )


def _cmd_withdraw(args: argparse.Namespace) -> dict[str, Any]:
    return withdraw(
        open_target(args.data_dir, args.app),
        args.amount,
        args.to,
        args.token,
        args.key,
        args.timeout,
    )


def _cmd_finalize(args: argparse.Namespace) -> dict[str, Any]:
    return finalize(
        open_target(args.data_dir, args.app),
        args.withdrawal_hash,
        args.key,
        not args.no_wait,
        args.timeout,
    )


def _cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    return bridge_status(open_target(args.data_dir, args.app))


def _cmd_escape(args: argparse.Namespace) -> dict[str, Any]:
    return escape(
        open_target(args.data_dir, args.app), args.token, args.account, args.key, args.timeout
    )


def _cmd_reclaim(args: argparse.Namespace) -> dict[str, Any]:
    return reclaim(open_target(args.data_dir, args.app), args.nonce, args.key, args.timeout)


# ---- argument types ----


def _hex_bytes(text: str, size: int | None, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be hex: {text!r}") from None
    if size is not None and len(raw) != size:
        raise argparse.ArgumentTypeError(f"{what} must be {size} bytes: {text!r}")
    return raw


def _address(text: str) -> bytes:
    return _hex_bytes(text, 20, "an address")


def _hash(text: str) -> bytes:
    return _hex_bytes(text, 32, "a hash")


def _data(text: str) -> bytes:
    return _hex_bytes(text, None, "calldata")


def _key(text: str) -> str:
    raw = _hex_bytes(text, 32, "a private key")
    return "0x" + raw.hex()


def _amount(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


# ---- small helpers ----


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _raw(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _l1_time(l1: L1Client) -> int:
    """The timestamp of the L1's newest block."""
    try:
        return int(l1.w3.eth.get_block("latest")["timestamp"])
    except (requests.RequestException, OSError, Web3Exception) as exc:
        raise BridgeError(f"the L1 at {l1.rpc_url} does not answer: {exc}") from None
