"""The eth_ namespace: chain, blocks, transactions, state, simulations, fees and logs.

What changes the node (eth_sendRawTransaction) and what keeps per-client state (filters,
subscriptions) are the server's own methods (services/rpc/server.py); these only read
committed data. Simulations are sequencer/simulate.py's; `budget` is the event loop's share.
"""

from __future__ import annotations

from typing import Any

from rollup.blocks import block_entries
from rollup.deposits import Deposit, encode_deposit
from rollup.types import Address, Block, Transaction
from sequencer import simulate
from sequencer.node import Sequencer
from sequencer.simulate import Budget, CallRequest, Overrides
from services.rpc import codec
from services.rpc.codec import data, quantity
from services.rpc.logs import filter_logs
from services.rpc.params import (
    BlockTag,
    ByHash,
    LogFilter,
    block_tag,
    boolean,
    call_object,
    log_filter,
    percentiles,
    resolve_block,
    state_overrides,
)
from services.rpc.registry import Method, method
from services.rpc.render import block_json, entry_json, receipt_json
from vm.state import State, code_key, get_account, storage_key

__all__ = ["METHODS", "MAX_FEE_HISTORY"]

MAX_FEE_HISTORY = 1_024


# ---- chain -------------------------------------------------------------------------------------


def chain_id(node: Sequencer) -> str:
    return quantity(node.chain_id)


def block_number(node: Sequencer) -> str:
    return quantity(node.committed.number)


def no(node: Sequencer) -> bool:
    """eth_syncing, eth_mining: a sequencer is neither."""
    return False


def zero(node: Sequencer) -> str:
    return "0x0"


def coinbase(node: Sequencer) -> str:
    """The app's fee vault: where the blocks' fees go (the blocks' `miner`)."""
    return data(node.coinbase)


# ---- blocks ------------------------------------------------------------------------------------


def _block_or_none(node: Sequencer, tag: BlockTag) -> Block | None:
    if isinstance(tag, int) and tag > node.committed.number:
        return None
    return node.block(resolve_block(node, tag))


def get_block_by_number(node: Sequencer, tag: BlockTag, full: bool) -> dict[str, Any] | None:
    block = _block_or_none(node, tag)
    return None if block is None else block_json(block, full)


def get_block_by_hash(node: Sequencer, block_hash: bytes, full: bool) -> dict[str, Any] | None:
    block = node.block_by_hash(block_hash)
    return None if block is None else block_json(block, full)


def tx_count_by_number(node: Sequencer, tag: BlockTag) -> str | None:
    block = _block_or_none(node, tag)
    return None if block is None else quantity(len(block_entries(block)))


def tx_count_by_hash(node: Sequencer, block_hash: bytes) -> str | None:
    block = node.block_by_hash(block_hash)
    return None if block is None else quantity(len(block_entries(block)))


def uncle_count_by_number(node: Sequencer, tag: BlockTag) -> str | None:
    return None if _block_or_none(node, tag) is None else "0x0"


def uncle_count_by_hash(node: Sequencer, block_hash: bytes) -> str | None:
    return None if node.block_by_hash(block_hash) is None else "0x0"


def block_receipts(node: Sequencer, tag: BlockTag) -> list[dict[str, Any]] | None:
    block = node.block_by_hash(tag.hash) if isinstance(tag, ByHash) else _block_or_none(node, tag)
    if block is None:
        return None
    return [receipt_json(block, i) for i in range(len(block_entries(block)))]


# ---- transactions ------------------------------------------------------------------------------


def get_transaction(node: Sequencer, tx_hash: bytes) -> dict[str, Any] | None:
    status = node.transaction(tx_hash)
    return None if status is None else entry_json(status.tx, status.block, status.index)


def get_raw_transaction(node: Sequencer, tx_hash: bytes) -> str | None:
    status = node.transaction(tx_hash)
    return None if status is None else data(_raw(status.tx))


def _raw(entry: Transaction | Deposit) -> bytes:
    return encode_deposit(entry) if isinstance(entry, Deposit) else entry.raw


def _raw_tx_at(block: Block | None, index: int) -> str | None:
    entries = block_entries(block) if block is not None else ()
    return data(_raw(entries[index])) if index < len(entries) else None


def raw_tx_by_number_index(node: Sequencer, tag: BlockTag, index: int) -> str | None:
    return _raw_tx_at(_block_or_none(node, tag), index)


def raw_tx_by_hash_index(node: Sequencer, block_hash: bytes, index: int) -> str | None:
    return _raw_tx_at(node.block_by_hash(block_hash), index)


def _tx_at(block: Block | None, index: int) -> dict[str, Any] | None:
    entries = block_entries(block) if block is not None else ()
    return entry_json(entries[index], block, index) if index < len(entries) else None


def tx_by_number_index(node: Sequencer, tag: BlockTag, index: int) -> dict[str, Any] | None:
    return _tx_at(_block_or_none(node, tag), index)


def tx_by_hash_index(node: Sequencer, block_hash: bytes, index: int) -> dict[str, Any] | None:
    return _tx_at(node.block_by_hash(block_hash), index)


def get_receipt(node: Sequencer, tx_hash: bytes) -> dict[str, Any] | None:
    status = node.transaction(tx_hash)
    if status is None or status.block is None:
        return None
    return receipt_json(status.block, status.index)


# ---- state -------------------------------------------------------------------------------------


def _reader(node: Sequencer, tag: BlockTag) -> State:
    return node.state_at(resolve_block(node, tag))


def get_balance(node: Sequencer, address: bytes, tag: BlockTag = "latest") -> str:
    return quantity(get_account(_reader(node, tag), address)[1])


def get_transaction_count(node: Sequencer, address: bytes, tag: BlockTag = "latest") -> str:
    if tag == "pending":
        state_nonce = get_account(node.state, address)[0]
        return quantity(node.mempool.next_nonce(Address(address), state_nonce))
    return quantity(get_account(_reader(node, tag), address)[0])


def get_code(node: Sequencer, address: bytes, tag: BlockTag = "latest") -> str:
    return data(_reader(node, tag).get(code_key(address)) or b"")


def get_storage_at(node: Sequencer, address: bytes, slot: bytes, tag: BlockTag = "latest") -> str:
    value = _reader(node, tag).get(storage_key(address, slot)) or b""
    return data(value[-32:].rjust(32, b"\x00"))


# ---- simulations -------------------------------------------------------------------------------


def eth_call(
    node: Sequencer,
    request: CallRequest,
    tag: BlockTag = "latest",
    overrides: Overrides | None = None,
    *,
    gas_cap: int,
    budget: Budget | None = None,
) -> str:
    number = resolve_block(node, tag)
    return data(simulate.call(node, request, number, overrides, gas_cap, budget))


def estimate_gas(
    node: Sequencer,
    request: CallRequest,
    tag: BlockTag = "latest",
    overrides: Overrides | None = None,
    *,
    gas_cap: int,
    budget: Budget | None = None,
) -> str:
    number = resolve_block(node, tag)
    return quantity(simulate.estimate_gas(node, request, number, overrides, gas_cap, budget))


def create_access_list(
    node: Sequencer,
    request: CallRequest,
    tag: BlockTag = "latest",
    *,
    gas_cap: int,
    budget: Budget | None = None,
) -> dict[str, Any]:
    number = resolve_block(node, tag)
    found = simulate.create_access_list(node, request, number, gas_cap, budget)
    answer: dict[str, Any] = {
        "accessList": [
            {"address": data(address), "storageKeys": [data(k) for k in keys]}
            for address, keys in found.access_list
        ],
        "gasUsed": quantity(found.gas_used),
    }
    if found.error is not None:
        answer["error"] = found.error
    return answer


# ---- fees --------------------------------------------------------------------------------------


def gas_price(node: Sequencer) -> str:
    return quantity(node.manifest.base_fee)


def blob_base_fee(node: Sequencer) -> str:
    return "0x1"


def _percentile_rewards(block: Block, wanted: list[float]) -> list[str]:
    base = block.header.base_fee
    tips = sorted(
        (min(tx.max_priority_fee, tx.max_fee - base), r.gas_used)
        for tx, r in zip(block.transactions, block.receipts, strict=True)
    )
    if not tips:
        return ["0x0"] * len(wanted)
    total = sum(g for _, g in tips)
    out, cumulative, i = [], tips[0][1], 0
    for p in wanted:
        threshold = total * p / 100
        while cumulative < threshold and i < len(tips) - 1:
            i += 1
            cumulative += tips[i][1]
        out.append(quantity(tips[i][0]))
    return out


def fee_history(
    node: Sequencer, count: int, tag: BlockTag, wanted: list[float] | None = None
) -> dict[str, Any]:
    count = min(count, MAX_FEE_HISTORY)
    newest = resolve_block(node, tag)
    oldest = max(0, newest - count + 1)
    blocks = [node.block(n) for n in range(oldest, newest + 1)] if count else []
    out: dict[str, Any] = {
        "oldestBlock": quantity(oldest if count else newest),
        "baseFeePerGas": [quantity(b.header.base_fee) for b in blocks if b]
        + [quantity(node.manifest.base_fee)],
        "gasUsedRatio": [b.header.gas_used / b.header.gas_limit for b in blocks if b],
        "baseFeePerBlobGas": ["0x0"] * (len(blocks) + 1),
        "blobGasUsedRatio": [0.0] * len(blocks),
    }
    if wanted:
        out["reward"] = [_percentile_rewards(b, wanted) for b in blocks if b]
    return out


# ---- logs --------------------------------------------------------------------------------------


def get_logs(node: Sequencer, flt: LogFilter) -> list[dict[str, Any]]:
    return filter_logs(node, flt)


_hash, _address, _index = codec.parse_hash, codec.parse_address, codec.parse_quantity

METHODS: dict[str, Method] = {
    "eth_chainId": method(chain_id),
    "eth_blockNumber": method(block_number),
    "eth_syncing": method(no),
    "eth_mining": method(no),
    "eth_hashrate": method(zero),
    "eth_coinbase": method(coinbase),
    "eth_getBlockByNumber": method(get_block_by_number, block_tag, boolean),
    "eth_getBlockByHash": method(get_block_by_hash, _hash, boolean),
    "eth_getBlockTransactionCountByNumber": method(tx_count_by_number, block_tag),
    "eth_getBlockTransactionCountByHash": method(tx_count_by_hash, _hash),
    "eth_getUncleCountByBlockNumber": method(uncle_count_by_number, block_tag),
    "eth_getUncleCountByBlockHash": method(uncle_count_by_hash, _hash),
    "eth_getBlockReceipts": method(block_receipts, block_tag),
    "eth_getTransactionByHash": method(get_transaction, _hash),
    "eth_getRawTransactionByHash": method(get_raw_transaction, _hash),
    "eth_getRawTransactionByBlockNumberAndIndex": method(raw_tx_by_number_index, block_tag, _index),
    "eth_getRawTransactionByBlockHashAndIndex": method(raw_tx_by_hash_index, _hash, _index),
    "eth_getTransactionByBlockNumberAndIndex": method(tx_by_number_index, block_tag, _index),
    "eth_getTransactionByBlockHashAndIndex": method(tx_by_hash_index, _hash, _index),
    "eth_getTransactionReceipt": method(get_receipt, _hash),
    "eth_getBalance": method(get_balance, _address, block_tag, required=1),
    "eth_getTransactionCount": method(get_transaction_count, _address, block_tag, required=1),
    "eth_getCode": method(get_code, _address, block_tag, required=1),
    "eth_getStorageAt": method(
        get_storage_at, _address, codec.parse_storage_slot, block_tag, required=2
    ),
    "eth_call": method(
        eth_call, call_object, block_tag, state_overrides, required=1, runs="budget"
    ),
    "eth_estimateGas": method(
        estimate_gas, call_object, block_tag, state_overrides, required=1, runs="budget"
    ),
    "eth_createAccessList": method(
        create_access_list, call_object, block_tag, required=1, runs="budget"
    ),
    "eth_gasPrice": method(gas_price),
    "eth_maxPriorityFeePerGas": method(zero),
    "eth_blobBaseFee": method(blob_base_fee),
    "eth_feeHistory": method(fee_history, _index, block_tag, percentiles, required=2),
    "eth_getLogs": method(get_logs, log_filter, runs="thread"),
}
