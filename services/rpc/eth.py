"""The eth_ namespace: chain, blocks, transactions, state, simulations, fees and logs.

What changes the node (eth_sendRawTransaction) and what keeps per-client state (filters,
subscriptions) are the server's own methods (services/rpc/server.py); these only read
committed data. Simulations are sequencer/simulate.py's; `budget` is the event loop's share.
eth_getProof is in services/rpc/proofs.py.

Every eth_ method of ethereum/execution-apis answers here or in the server
(tests/services/test_execution_apis.py checks each answer against the spec's schema). Where
the spec asks more than the chain has, the answer says what there is:
- `pending` (eth_getBlockByNumber) is geth's: the next block, unsealed and empty;
- eth_config (EIP-7910): one fork since genesis, Cancun's EVM rules (vm/evm/engine.py), no blobs;
- eth_capabilities: blocks, transactions, receipts and logs from genesis, state over the
  node's history window, proofs at the newest block only;
- eth_getBlockAccessList: EIP-7928's lists start at Amsterdam, which this chain never runs;
- eth_simulateV1: no traceTransfers, no withdrawals or blobBaseFee block overrides, and
  simulated blocks are not merkleized (sequencer/simulate.py, services/rpc/render.py).
"""

from __future__ import annotations

import zlib
from typing import Any

from rollup.blocks import block_entries, block_hash
from rollup.deposits import BRIDGE_ADDRESS, L2_TO_L1_ADDRESS, Deposit, encode_deposit
from rollup.errors import ResourceNotFound, StateUnavailable
from rollup.messages import APP_BUS_ADDRESS, BUS_ADDRESS
from rollup.types import Address, Block, Transaction
from sequencer import simulate
from sequencer.node import Sequencer
from sequencer.simulate import Budget, CallRequest, Overrides
from services.rpc import codec, wallet
from services.rpc.codec import data, quantity
from services.rpc.logs import filter_logs
from services.rpc.params import (
    BlockTag,
    ByHash,
    LogFilter,
    SimulatePayload,
    block_tag,
    boolean,
    call_object,
    log_filter,
    percentiles,
    resolve_block,
    simulate_payload,
    state_overrides,
    storage_requests,
)
from services.rpc.registry import Method, method
from services.rpc.render import (
    block_json,
    entry_json,
    filled_tx_json,
    header_json,
    pending_block_json,
    receipt_json,
    simulated_block_json,
)
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
    if tag == "pending":
        return pending_block(node)
    block = _block_or_none(node, tag)
    return None if block is None else block_json(block, full)


def pending_block(node: Sequencer) -> dict[str, Any] | None:
    """The next block as geth shows `pending` (web3.py expects number latest + 1, hash null)."""
    parent = node.block(node.committed.number)
    if parent is None:
        return None
    return pending_block_json(parent, parent.header.timestamp, node.manifest.base_fee)


def header_by_number(node: Sequencer, tag: BlockTag) -> dict[str, Any] | None:
    """The spec answers null for `pending` (no header before the block is sealed)."""
    block = None if tag == "pending" else _block_or_none(node, tag)
    return None if block is None else header_json(block)


def header_by_hash(node: Sequencer, block_hash: bytes) -> dict[str, Any] | None:
    block = node.block_by_hash(block_hash)
    return None if block is None else header_json(block)


def block_access_list(node: Sequencer, tag: BlockTag) -> None:
    """EIP-7928's block access lists begin at Amsterdam; this chain runs Cancun's rules. The
    spec wants -32001 (resource not found) for such blocks and null for unknown ones."""
    block = node.block_by_hash(tag.hash) if isinstance(tag, ByHash) else _block_or_none(node, tag)
    if block is None or tag == "pending":
        return None
    raise ResourceNotFound(
        f"block {block.header.number} has no access list: they begin at the Amsterdam fork"
    )


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
    return _word(_reader(node, tag).get(storage_key(address, slot)))


def get_storage_values(
    node: Sequencer, requests: dict[bytes, list[bytes]], tag: BlockTag = "latest"
) -> dict[str, list[str]]:
    """eth_getStorageValues: eth_getStorageAt for many slots of many accounts, one block."""
    reader = _reader(node, tag)
    return {
        data(address): [_word(reader.get(storage_key(address, slot))) for slot in slots]
        for address, slots in requests.items()
    }


def _word(value: bytes | None) -> str:
    return data((value or b"")[-32:].rjust(32, b"\x00"))


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


def simulate_v1(
    node: Sequencer,
    payload: SimulatePayload,
    tag: BlockTag = "latest",
    *,
    gas_cap: int,
    budget: Budget | None = None,
) -> list[dict[str, Any]]:
    """eth_simulateV1, bounded as sequencer/simulate.py `simulate_blocks` says."""
    number = resolve_block(node, tag)
    blocks = simulate.simulate_blocks(
        node, payload.blocks, number, payload.validation, gas_cap, budget
    )
    return [simulated_block_json(block) for block in blocks]


def fill_request(value: Any) -> wallet.TxRequest:
    """A transaction object; without `from`, the zero address fills it in (as geth does)."""
    if isinstance(value, dict) and value.get("from") is None:
        value = {**value, "from": "0x" + "00" * 20}
    return wallet.tx_request(value)


def fill_transaction(
    node: Sequencer, request: wallet.TxRequest, *, gas_cap: int, budget: Budget | None = None
) -> dict[str, Any]:
    """eth_fillTransaction: the transaction as eth_signTransaction would sign it (nonce, gas,
    fees filled in: services/rpc/wallet.py `filled`), unsigned, so any sender may ask."""
    tx = wallet.filled(node, request, gas_cap, budget)
    return {"tx": filled_tx_json(tx, request.sender)}


# ---- fees --------------------------------------------------------------------------------------


def gas_price(node: Sequencer) -> str:
    return quantity(node.manifest.base_fee)


def base_fee(node: Sequencer) -> str:
    """The next block's base fee: the app's, fixed in rollup.toml."""
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


# ---- the node: config and capabilities ---------------------------------------------------------

# Cancun's precompiles by EIP-7910's names: what the EVM (revm, spec "Cancun") runs.
_CANCUN_PRECOMPILES = {
    name: "0x" + f"{i:040x}"
    for i, name in enumerate(
        (
            "ECREC",
            "SHA256",
            "RIPEMD160",
            "ID",
            "MODEXP",
            "BN254_ADD",
            "BN254_MUL",
            "BN254_PAIRING",
            "BLAKE2F",
            "KZG_POINT_EVALUATION",
        ),
        start=1,
    )
}
_CANCUN_BLOB_FRACTION = 3_338_477  # EIP-4844's BLOB_BASE_FEE_UPDATE_FRACTION
_SYSTEM_CONTRACTS = {  # ours, under the names the code gives them (rollup/messages, deposits)
    "BUS_ADDRESS": BUS_ADDRESS,
    "APP_BUS_ADDRESS": APP_BUS_ADDRESS,
    "L2_TO_L1_ADDRESS": L2_TO_L1_ADDRESS,
    "BRIDGE_ADDRESS": BRIDGE_ADDRESS,
}


def config(node: Sequencer) -> dict[str, Any]:
    """EIP-7910: the one fork the chain has run since genesis. The EVM applies Cancun's rules
    but the chain takes no blob transactions (a blob schedule of zero); the native VM has no
    precompiles. The fork id is EIP-2124's hash of the genesis block with no forks after it."""
    genesis = node.block(0)
    if genesis is None:
        raise StateUnavailable("the genesis block is not available")
    current = {
        "activationTime": genesis.header.timestamp,
        "blobSchedule": {"baseFeeUpdateFraction": _CANCUN_BLOB_FRACTION, "max": 0, "target": 0},
        "chainId": quantity(node.chain_id),
        "forkId": "0x" + zlib.crc32(genesis.hash).to_bytes(4, "big").hex(),
        "precompiles": dict(_CANCUN_PRECOMPILES) if node.evm else {},
        "systemContracts": {name: data(a) for name, a in _SYSTEM_CONTRACTS.items()},
    }
    return {"current": current}


def capabilities(node: Sequencer) -> dict[str, Any]:
    """What this node can answer for: blocks, transactions, receipts and logs since genesis
    (never pruned); state over its history window (sequencer/chain.py: a number of changed
    keys, so the reach in blocks varies; the present one is given); proofs at the newest block
    only (services/rpc/proofs.py)."""
    head = node.committed
    oldest_state = min(node.state.oldest_history, head.number)
    since_genesis = {"disabled": False, "oldestBlock": "0x0"}
    return {
        "head": {"number": quantity(head.number), "hash": data(block_hash(head))},
        "state": _window(oldest_state, head.number),
        "tx": since_genesis,
        "logs": since_genesis,
        "receipts": since_genesis,
        "blocks": since_genesis,
        "stateproofs": _window(node.head.number, node.head.number),
    }


def _window(oldest: int, newest: int) -> dict[str, Any]:
    return {
        "disabled": False,
        "oldestBlock": quantity(oldest),
        "deleteStrategy": {"type": "window", "retentionBlocks": quantity(newest - oldest + 1)},
    }


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
    "eth_getHeaderByNumber": method(header_by_number, block_tag),
    "eth_getHeaderByHash": method(header_by_hash, _hash),
    "eth_getBlockAccessList": method(block_access_list, block_tag),
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
    "eth_getStorageValues": method(get_storage_values, storage_requests, block_tag, required=1),
    "eth_call": method(
        eth_call, call_object, block_tag, state_overrides, required=1, runs="budget"
    ),
    "eth_estimateGas": method(
        estimate_gas, call_object, block_tag, state_overrides, required=1, runs="budget"
    ),
    "eth_createAccessList": method(
        create_access_list, call_object, block_tag, required=1, runs="budget"
    ),
    "eth_simulateV1": method(simulate_v1, simulate_payload, block_tag, required=1, runs="budget"),
    "eth_fillTransaction": method(fill_transaction, fill_request, runs="budget"),
    "eth_gasPrice": method(gas_price),
    "eth_baseFee": method(base_fee),
    "eth_maxPriorityFeePerGas": method(zero),
    "eth_blobBaseFee": method(blob_base_fee),
    "eth_feeHistory": method(fee_history, _index, block_tag, percentiles, required=2),
    "eth_getLogs": method(get_logs, log_filter, runs="thread"),
    "eth_config": method(config),
    "eth_capabilities": method(capabilities),
}
