"""Ethereum-shaped JSON of our blocks, transactions, receipts and logs.

A block's transactions are numbered as Ethereum tools expect: its L1 deposits first (type
0x7e, shaped as OP Stack nodes render theirs: `sourceHash`, `mint`, `isSystemTx`, zero
signature), then its signed transactions (`rollup.blocks.block_entries`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollup.blocks import block_entries, block_entry_receipts, receipts_root, transactions_root
from rollup.bloom import logs_bloom
from rollup.crypto import keccak
from rollup.deposits import Deposit
from rollup.errors import ExecutionReverted, RollupError
from rollup.transactions import contract_address
from rollup.types import (
    ACCESS_LIST_TX,
    DYNAMIC_FEE_TX,
    LEGACY_TX,
    Block,
    Log,
    Receipt,
    Transaction,
)
from sequencer.simulate import SimBlockResult, SimCallResult, simulated_block_hash
from services.rpc.codec import data, quantity

__all__ = [
    "block_json",
    "entry_json",
    "deposit_json",
    "tx_json",
    "receipt_json",
    "log_json",
    "header_json",
    "pending_block_json",
    "filled_tx_json",
    "simulated_block_json",
    "EMPTY_UNCLES",
]

EMPTY_UNCLES = "0x" + keccak(bytes.fromhex("c0")).hex()
_ZERO32 = "0x" + "00" * 32
_ZERO_NONCE = "0x0000000000000000"
_ZERO_BLOOM = "0x" + "00" * 256
_BODY_FIELDS = ("transactions", "uncles", "size", "totalDifficulty")


def _address(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def block_json(block: Block, full: bool) -> dict[str, Any]:
    h = block.header
    entries = block_entries(block)
    txs: list[Any]
    if full:
        txs = [entry_json(entry, block, i) for i, entry in enumerate(entries)]
    else:
        txs = [data(entry.hash) for entry in entries]
    size = 600 + sum(len(tx.raw) for tx in block.transactions) + 200 * len(block.deposits)
    return {
        "number": quantity(h.number),
        "hash": data(block.hash),
        "parentHash": data(h.parent_hash),
        "nonce": _ZERO_NONCE,
        "sha3Uncles": EMPTY_UNCLES,
        "logsBloom": data(h.logs_bloom),
        "transactionsRoot": data(h.transactions_root),
        "stateRoot": data(h.state_root),
        "receiptsRoot": data(h.receipts_root),
        "miner": data(h.coinbase),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": quantity(size),
        "gasLimit": quantity(h.gas_limit),
        "gasUsed": quantity(h.gas_used),
        "timestamp": quantity(h.timestamp),
        "transactions": txs,
        "uncles": [],
        "baseFeePerGas": quantity(h.base_fee),
        "mixHash": _ZERO32,
        # ours: the L1 block whose deposits this block may include (bridge/README.md)
        "l1Origin": quantity(h.l1_origin),
        "l1OriginHash": data(h.l1_origin_hash),
    }


def _access_list(tx: Transaction) -> list[dict[str, Any]]:
    return [
        {"address": data(address), "storageKeys": [data(k) for k in keys]}
        for address, keys in tx.access_list
    ]


def entry_json(entry: Transaction | Deposit, block: Block | None, index: int) -> dict[str, Any]:
    if isinstance(entry, Deposit):
        return deposit_json(entry, block, index)
    return tx_json(entry, block, index)


def deposit_json(d: Deposit, block: Block | None, index: int) -> dict[str, Any]:
    return {
        "blockHash": data(block.hash) if block is not None else None,
        "blockNumber": quantity(block.header.number) if block is not None else None,
        "blockTimestamp": quantity(block.header.timestamp) if block is not None else None,
        "transactionIndex": quantity(index) if block is not None else None,
        "hash": data(d.hash),
        "from": data(d.sender),
        "to": data(d.to),
        "nonce": "0x0",
        "gas": quantity(d.gas),
        "gasPrice": "0x0",
        "value": quantity(d.value),
        "input": data(d.data),
        "type": quantity(d.tx_type),
        "sourceHash": data(d.source_hash),
        "mint": quantity(d.mint),
        "isSystemTx": False,
        "depositNonce": quantity(d.nonce),
        "l1Token": data(d.l1_token),
        "tokenAmount": quantity(d.token_amount),
        "v": "0x0",
        "r": "0x0",
        "s": "0x0",
    }


def tx_json(tx: Transaction, block: Block | None, index: int) -> dict[str, Any]:
    mined = block is not None
    base_fee = block.header.base_fee if block is not None else None
    price = tx.effective_gas_price(base_fee) if base_fee is not None else tx.max_fee
    out: dict[str, Any] = {
        "blockHash": data(block.hash) if block is not None else None,
        "blockNumber": quantity(block.header.number) if block is not None else None,
        "blockTimestamp": quantity(block.header.timestamp) if block is not None else None,
        "transactionIndex": quantity(index) if mined else None,
        "hash": data(tx.hash),
        "from": data(tx.sender),
        "to": _address(tx.to),
        "nonce": quantity(tx.nonce),
        "gas": quantity(tx.gas),
        "gasPrice": quantity(price),
        "value": quantity(tx.value),
        "input": data(tx.data),
        "type": quantity(tx.tx_type),
        "v": quantity(tx.v),
        "r": quantity(tx.r),
        "s": quantity(tx.s),
    }
    if tx.chain_id is not None:
        out["chainId"] = quantity(tx.chain_id)
    if tx.tx_type != LEGACY_TX:
        out["accessList"] = _access_list(tx)
        out["yParity"] = quantity(tx.v)
    if tx.tx_type == DYNAMIC_FEE_TX:
        out["maxFeePerGas"] = quantity(tx.max_fee)
        out["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee)
    assert tx.tx_type in (LEGACY_TX, ACCESS_LIST_TX, DYNAMIC_FEE_TX)
    return out


def log_json(
    log: Log, block: Block, tx_index: int, log_index: int, tx_hash: bytes | None = None
) -> dict[str, Any]:
    """`tx_hash` names what emitted the log when it is not a transaction of the block (a
    cross-app message: its id)."""
    return {
        "address": data(log.address),
        "topics": [data(t) for t in log.topics],
        "data": data(log.data),
        "blockNumber": quantity(block.header.number),
        "blockHash": data(block.hash),
        "blockTimestamp": quantity(block.header.timestamp),
        "transactionHash": data(tx_hash or block_entries(block)[tx_index].hash),
        "transactionIndex": quantity(tx_index),
        "logIndex": quantity(log_index),
        "removed": False,
    }


def first_log_index(block: Block, tx_index: int) -> int:
    return sum(len(r.logs) for r in block_entry_receipts(block)[:tx_index])


def _created(tx: Transaction, receipt: Receipt) -> bytes | None:
    """Where a creation puts (or would have put) its contract: geth names the address in the
    receipt even when the creation failed."""
    if tx.to is not None:
        return None
    return receipt.contract_address or contract_address(tx.sender, tx.nonce)


def receipt_json(block: Block, index: int) -> dict[str, Any]:
    """The receipt of transaction `index` of the block, deposits counted first."""
    entry = block_entries(block)[index]
    receipt: Receipt = block_entry_receipts(block)[index]
    start = first_log_index(block, index)
    created = None if isinstance(entry, Deposit) else _created(entry, receipt)
    out = {
        "transactionHash": data(entry.hash),
        "transactionIndex": quantity(index),
        "blockHash": data(block.hash),
        "blockNumber": quantity(block.header.number),
        "from": data(entry.sender),
        "to": _address(entry.to),
        "cumulativeGasUsed": quantity(receipt.cumulative_gas_used),
        "gasUsed": quantity(receipt.gas_used),
        "effectiveGasPrice": quantity(receipt.effective_gas_price),
        "contractAddress": _address(created),
        "logs": [log_json(log, block, index, start + i) for i, log in enumerate(receipt.logs)],
        "logsBloom": data(logs_bloom(receipt.logs)),
        "status": "0x1" if receipt.status == 1 else "0x0",
        "type": quantity(entry.tx_type),
    }
    if isinstance(entry, Deposit):
        out["depositNonce"] = quantity(entry.nonce)
        out["depositReceiptVersion"] = "0x1"
    return out


# ---- headers, the pending block ---------------------------------------------------------------


def header_json(block: Block) -> dict[str, Any]:
    """eth_getHeaderBy*: the block object without its body."""
    out = block_json(block, False)
    for field in _BODY_FIELDS:
        del out[field]
    return out


def pending_block_json(parent: Block, timestamp: int, base_fee: int) -> dict[str, Any]:
    """The `pending` block as geth shows it: the next block on top of `parent`, with `hash`,
    `nonce` and `miner` null since it is not sealed. It holds no transactions: the pool's are
    not executed ahead of their block, so its state root is the parent's."""
    h = parent.header
    return {
        "number": quantity(h.number + 1),
        "hash": None,
        "parentHash": data(parent.hash),
        "nonce": None,
        "sha3Uncles": EMPTY_UNCLES,
        "logsBloom": _ZERO_BLOOM,
        "transactionsRoot": data(transactions_root(())),
        "stateRoot": data(h.state_root),
        "receiptsRoot": data(receipts_root(())),
        "miner": None,
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": quantity(600),
        "gasLimit": quantity(h.gas_limit),
        "gasUsed": "0x0",
        "timestamp": quantity(timestamp),
        "transactions": [],
        "uncles": [],
        "baseFeePerGas": quantity(base_fee),
        "mixHash": _ZERO32,
    }


# ---- eth_fillTransaction -----------------------------------------------------------------------


def filled_tx_json(tx: Mapping[str, Any], sender: bytes) -> dict[str, Any]:
    """A transaction as services/rpc/wallet.py `filled` fills it (eth-account's dict), in the
    spec's unsigned shape; `gasPrice` of a dynamic-fee one is its fee cap, as geth has it."""
    dynamic = "maxFeePerGas" in tx
    default_type = DYNAMIC_FEE_TX if dynamic else ACCESS_LIST_TX if "accessList" in tx else 0
    tx_type = int(tx.get("type", default_type))
    to = tx.get("to")
    out: dict[str, Any] = {
        "type": quantity(tx_type),
        "from": data(sender),
        "to": to.lower() if to is not None else None,
        "nonce": quantity(tx["nonce"]),
        "gas": quantity(tx["gas"]),
        "value": quantity(tx["value"]),
        "input": data(tx["data"]),
        "chainId": quantity(tx["chainId"]),
        "gasPrice": quantity(tx["maxFeePerGas"] if dynamic else tx["gasPrice"]),
    }
    if dynamic:
        out["maxFeePerGas"] = quantity(tx["maxFeePerGas"])
        out["maxPriorityFeePerGas"] = quantity(tx["maxPriorityFeePerGas"])
    if tx_type != LEGACY_TX:
        out["accessList"] = [
            {"address": entry["address"].lower(), "storageKeys": list(entry["storageKeys"])}
            for entry in tx.get("accessList", [])
        ]
    return out


# ---- eth_simulateV1 ----------------------------------------------------------------------------


def simulated_block_json(result: SimBlockResult) -> dict[str, Any]:
    """A simulated block in the spec's shape. It is never sealed: `stateRoot` and
    `transactionsRoot` are zero (the calls are unsigned, the state is not merkleized), and
    its hash and its calls' "transaction hashes" only name them within the answer."""
    env = result.env
    block_hash = simulated_block_hash(result.parent_hash, env.number)
    hashes = [keccak(block_hash + i.to_bytes(4, "big")) for i in range(len(result.calls))]
    receipts = _sim_receipts(result.calls)
    logs = [log for call in result.calls for log in call.logs]
    calls, first_log = [], 0
    for i, call in enumerate(result.calls):
        calls.append(_sim_call_json(call, env.number, block_hash, hashes[i], i, first_log))
        first_log += len(call.logs)
    return {
        "number": quantity(env.number),
        "hash": data(block_hash),
        "parentHash": data(result.parent_hash),
        "nonce": _ZERO_NONCE,
        "sha3Uncles": EMPTY_UNCLES,
        "logsBloom": data(logs_bloom(logs)),
        "transactionsRoot": _ZERO32,
        "stateRoot": _ZERO32,
        "receiptsRoot": data(receipts_root(receipts)),
        "miner": data(env.coinbase),
        "difficulty": "0x0",
        "extraData": "0x",
        "size": "0x0",
        "gasLimit": quantity(env.gas_limit),
        "gasUsed": quantity(sum(call.gas_used for call in result.calls)),
        "timestamp": quantity(env.timestamp),
        "baseFeePerGas": quantity(env.base_fee),
        "mixHash": _ZERO32,
        "transactions": [data(h) for h in hashes],
        "uncles": [],
        "calls": calls,
    }


def _sim_receipts(calls: tuple[SimCallResult, ...]) -> list[Receipt]:
    receipts, cumulative = [], 0
    for call in calls:
        cumulative += call.gas_used
        receipts.append(Receipt(int(call.success), call.gas_used, cumulative, 0, call.logs))
    return receipts


def _sim_call_json(
    call: SimCallResult, number: int, block_hash: bytes, tx_hash: bytes, index: int, first: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": "0x1" if call.success else "0x0",
        "returnData": data(call.output),
        "gasUsed": quantity(call.gas_used),
        "logs": [
            {
                "address": data(log.address),
                "topics": [data(t) for t in log.topics],
                "data": data(log.data),
                "blockNumber": quantity(number),
                "blockHash": data(block_hash),
                "transactionHash": data(tx_hash),
                "transactionIndex": quantity(index),
                "logIndex": quantity(first + i),
                "removed": False,
            }
            for i, log in enumerate(call.logs)
        ],
    }
    if call.error is not None:
        out["error"] = _sim_error(call.error)
    return out


def _sim_error(error: RollupError) -> dict[str, Any]:
    """The spec's codes: -32000 for a revert (with its data), -32015 for any other VM error."""
    if isinstance(error, ExecutionReverted):
        return {"code": -32000, "message": str(error), "data": data(error.data or b"")}
    return {"code": -32015, "message": str(error)}
