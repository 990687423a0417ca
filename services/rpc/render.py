"""Ethereum-shaped JSON of our blocks, transactions, receipts and logs.

A block's transactions are numbered as Ethereum tools expect: its L1 deposits first (type
0x7e, shaped as OP Stack nodes render theirs: `sourceHash`, `mint`, `isSystemTx`, zero
signature), then its signed transactions (`rollup.blocks.block_entries`).
"""

from __future__ import annotations

from typing import Any

from rollup.blocks import block_entries, block_entry_receipts
from rollup.bloom import logs_bloom
from rollup.crypto import keccak
from rollup.deposits import Deposit
from rollup.transactions import contract_address
from rollup.types import ACCESS_LIST_TX, DYNAMIC_FEE_TX, LEGACY_TX, Block, Log, Receipt, Transaction
from services.rpc.codec import data, quantity

__all__ = [
    "block_json",
    "entry_json",
    "deposit_json",
    "tx_json",
    "receipt_json",
    "log_json",
    "EMPTY_UNCLES",
]

EMPTY_UNCLES = "0x" + keccak(bytes.fromhex("c0")).hex()
_ZERO32 = "0x" + "00" * 32
_ZERO_NONCE = "0x0000000000000000"


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
