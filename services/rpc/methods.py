"""The JSON-RPC method registry: one declaration per method, with its parameter parsers.

Handlers are plain functions of (node, *params). They read committed data only; the one
method that changes anything, eth_sendRawTransaction, is driven by the server because it
waits for the block that includes the transaction.

Each method also says where it may run (`Method.runs`), so that no request can hold up block
production on the node's event loop:
    "loop"      on the event loop: bounded, cheap work
    "budget"    simulations: on the loop within the batch's gas budget, else isolated in a
                forked process (services/rpc/isolation.py); the handler takes `gas_cap` and
                `budget` keywords (sequencer/simulate.py)
    "isolated"  always in a forked process (O(state) work such as tracing)
    "thread"    in a worker thread, one at a time (scans over many blocks)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rollup.blocks import block_entries, block_entry_receipts, block_hash
from rollup.bloom import bloom_contains
from rollup.crypto import keccak
from rollup.deposits import Deposit, encode_deposit
from rollup.errors import BlockNotFound, InvalidParams, LimitExceeded, TxRejected
from rollup.types import AccessList, Address, Block, Transaction
from sequencer import simulate
from sequencer.node import Sequencer
from sequencer.simulate import Budget, CallRequest, Overrides
from services.rpc import codec
from services.rpc.codec import data, quantity
from services.rpc.render import block_json, entry_json, log_json, receipt_json
from vm.commitment import Proof
from vm.evm import EvmVM
from vm.evm.trace import call_tree, struct_logs, trace_in_block
from vm.state import State, account_key, code_key, get_account, storage_key

__all__ = [
    "METHODS",
    "Method",
    "Runs",
    "CLIENT_VERSION",
    "block_logs",
    "filter_logs",
    "log_filter",
    "log_matches",
    "resolve_block",
    "MAX_PROOF_SLOTS",
]

CLIENT_VERSION = "app-rollup/0.1.0/python"
MAX_LOG_BLOCK_RANGE = 10_000
MAX_LOG_RESULTS = 10_000
MAX_FEE_HISTORY = 1_024
MAX_PROOF_SLOTS = 256
MAX_LIST_ITEMS = 1_024  # entries of any list parameter: addresses, topics, keys, overrides

Parser = Callable[[Any], Any]
Runs = Literal["loop", "budget", "isolated", "thread"]


@dataclass(frozen=True, slots=True)
class Method:
    handler: Callable[..., Any]
    parsers: tuple[Parser, ...]
    required: int
    runs: Runs = "loop"
    private: bool = False  # uses node-held keys or changes the node: never for other origins


METHODS: dict[str, Method] = {}


def rpc(
    name: str, *parsers: Parser, required: int | None = None, runs: Runs = "loop"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        arity = len(parsers) if required is None else required
        METHODS[name] = Method(handler, parsers, arity, runs)
        return handler

    return register


# ---- parameters ------------------------------------------------------------------------------


def block_tag(value: Any) -> Any:
    """A block number, a tag, or an EIP-1898 object; resolved later against the node."""
    if value is None:
        return "latest"
    if isinstance(value, dict):
        if "blockHash" in value:
            return ("hash", codec.parse_hash(value["blockHash"], "blockHash"))
        if "blockNumber" in value:
            return block_tag(value["blockNumber"])
        raise InvalidParams("invalid argument: block object needs blockHash or blockNumber")
    if value in ("latest", "pending", "safe", "finalized", "earliest"):
        return value
    if isinstance(value, str) and len(value) == 66:  # a block hash, as geth's BlockNumberOrHash
        return ("hash", codec.parse_hash(value, "blockHash"))
    return codec.parse_quantity(value, "block number")


def resolve_block(node: Sequencer, tag: Any) -> int:
    head = node.committed.number
    if tag in ("safe", "finalized"):  # what the DA poster posted / the L1 finalized
        posted = node.safe_head if tag == "safe" else node.finalized_head
        return head if posted is None else min(posted, head)
    if tag in ("latest", "pending"):
        return head
    if tag == "earliest":
        return 0
    if isinstance(tag, tuple):
        block = node.block_by_hash(tag[1])
        if block is None:
            raise BlockNotFound("header for hash not found")
        return block.header.number
    if tag > head:
        raise BlockNotFound("header not found")
    return int(tag)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(f"invalid argument: expected a boolean, got {value!r}")
    return value


def call_object(value: Any) -> CallRequest:
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 0: expected a transaction call object")
    if (
        value.get("input") is not None
        and value.get("data") is not None
        and value["input"] != value["data"]
    ):
        raise InvalidParams('both "data" and "input" are set and not equal')
    raw = value["input"] if value.get("input") is not None else value.get("data")
    return CallRequest(
        sender=codec.parse_optional_address(value.get("from"), "from"),
        to=codec.parse_optional_address(value.get("to"), "to"),
        value=codec.parse_quantity(value.get("value") or "0x0", "value"),
        gas=_optional_quantity(value, "gas"),
        data=codec.parse_data(raw, "input") if raw is not None else b"",
        gas_price=_optional_quantity(value, "gasPrice"),
        max_fee=_optional_quantity(value, "maxFeePerGas"),
        max_priority_fee=_optional_quantity(value, "maxPriorityFeePerGas"),
        access_list=access_list(value.get("accessList")),
    )


def _optional_quantity(value: dict[str, Any], key: str) -> int | None:
    return codec.parse_quantity(value[key], key) if value.get(key) is not None else None


def access_list(value: Any) -> AccessList:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParams("invalid argument: accessList must be a list")
    _bounded(value, MAX_LIST_ITEMS, "access list entries")
    entries = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("storageKeys", []), list):
            raise InvalidParams("invalid argument: accessList entries are {address, storageKeys}")
        _bounded(item.get("storageKeys", []), MAX_LIST_ITEMS, "storage keys of an entry")
        keys = tuple(codec.parse_hash(k, "storage key") for k in item.get("storageKeys", []))
        entries.append((codec.parse_address(item.get("address"), "address"), keys))
    return tuple(entries)


_OVERRIDE_FIELDS = {"balance", "nonce", "code", "state", "stateDiff"}


def state_overrides(value: Any) -> Overrides | None:
    """geth's state override set: {address: {balance, nonce, code, state | stateDiff}}."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 2: state overrides must be an object")
    _bounded(value, MAX_LIST_ITEMS, "overridden accounts")
    out: Overrides = {}
    for address, fields in value.items():
        if not isinstance(fields, dict) or not set(fields) <= _OVERRIDE_FIELDS:
            raise InvalidParams(f"invalid argument 2: override of {address} has unknown fields")
        if "state" in fields and "stateDiff" in fields:
            raise InvalidParams(f"account {address} has both 'state' and 'stateDiff'")
        parsed: dict[str, Any] = {}
        for key in ("balance", "nonce"):
            if fields.get(key) is not None:
                parsed[key] = codec.parse_quantity(fields[key], key)
        if parsed.get("nonce", 0) >= 2**64:
            raise InvalidParams("invalid argument 2: nonce does not fit 64 bits")
        if fields.get("code") is not None:
            parsed["code"] = codec.parse_data(fields["code"], "code")
        for key in ("state", "stateDiff"):
            if fields.get(key) is not None:
                if not isinstance(fields[key], dict):
                    raise InvalidParams(f"invalid argument 2: {key} must be an object")
                _bounded(fields[key], MAX_LIST_ITEMS, f"slots of {key}")
                parsed[key] = {
                    codec.parse_hash(slot, "slot"): codec.parse_hash(word, "value")
                    for slot, word in fields[key].items()
                }
        out[codec.parse_address(address, "address")] = parsed
    return out


def _bounded(items: list[Any] | dict[Any, Any], limit: int, what: str) -> None:
    """Refuse a list parameter past its bound before parsing any of it (parsing costs)."""
    if len(items) > limit:
        raise LimitExceeded(f"too many {what}: at most {limit}")


def anything(value: Any) -> Any:
    return value


# ---- chain -------------------------------------------------------------------------------------


@rpc("eth_chainId")
def chain_id(node: Sequencer) -> str:
    return quantity(node.chain_id)


@rpc("net_version")
def net_version(node: Sequencer) -> str:
    return str(node.chain_id)


@rpc("net_listening")
def net_listening(node: Sequencer) -> bool:
    return True


@rpc("net_peerCount")
def net_peer_count(node: Sequencer) -> str:
    return "0x0"


@rpc("web3_clientVersion")
def client_version(node: Sequencer) -> str:
    return CLIENT_VERSION


@rpc("web3_sha3", codec.parse_data)
def web3_sha3(node: Sequencer, value: bytes) -> str:
    return data(keccak(value))


@rpc("eth_blockNumber")
def block_number(node: Sequencer) -> str:
    return quantity(node.committed.number)


@rpc("eth_syncing")
def syncing(node: Sequencer) -> bool:
    return False


@rpc("eth_accounts")
def accounts(node: Sequencer) -> list[str]:
    return []


@rpc("eth_mining")
def mining(node: Sequencer) -> bool:
    return False


@rpc("eth_hashrate")
def hashrate(node: Sequencer) -> str:
    return "0x0"


# ---- blocks ------------------------------------------------------------------------------------


@rpc("eth_getBlockByNumber", block_tag, boolean)
def get_block_by_number(node: Sequencer, tag: Any, full: bool) -> dict[str, Any] | None:
    if isinstance(tag, int) and tag > node.committed.number:
        return None
    block = node.block(resolve_block(node, tag))
    return None if block is None else block_json(block, full)


@rpc("eth_getBlockByHash", codec.parse_hash, boolean)
def get_block_by_hash(node: Sequencer, block_hash: bytes, full: bool) -> dict[str, Any] | None:
    block = node.block_by_hash(block_hash)
    return None if block is None else block_json(block, full)


def _block_or_none(node: Sequencer, tag: Any) -> Block | None:
    if isinstance(tag, int) and tag > node.committed.number:
        return None
    return node.block(resolve_block(node, tag))


@rpc("eth_getBlockTransactionCountByNumber", block_tag)
def tx_count_by_number(node: Sequencer, tag: Any) -> str | None:
    block = _block_or_none(node, tag)
    return None if block is None else quantity(len(block_entries(block)))


@rpc("eth_getBlockTransactionCountByHash", codec.parse_hash)
def tx_count_by_hash(node: Sequencer, block_hash: bytes) -> str | None:
    block = node.block_by_hash(block_hash)
    return None if block is None else quantity(len(block_entries(block)))


@rpc("eth_getUncleCountByBlockNumber", block_tag)
def uncle_count_by_number(node: Sequencer, tag: Any) -> str | None:
    return None if _block_or_none(node, tag) is None else "0x0"


@rpc("eth_getUncleCountByBlockHash", codec.parse_hash)
def uncle_count_by_hash(node: Sequencer, block_hash: bytes) -> str | None:
    return None if node.block_by_hash(block_hash) is None else "0x0"


@rpc("eth_getBlockReceipts", block_tag)
def block_receipts(node: Sequencer, tag: Any) -> list[dict[str, Any]] | None:
    block = node.block_by_hash(tag[1]) if isinstance(tag, tuple) else _block_or_none(node, tag)
    if block is None:
        return None
    return [receipt_json(block, i) for i in range(len(block_entries(block)))]


# ---- transactions ------------------------------------------------------------------------------


@rpc("eth_getTransactionByHash", codec.parse_hash)
def get_transaction(node: Sequencer, tx_hash: bytes) -> dict[str, Any] | None:
    status = node.transaction(tx_hash)
    return None if status is None else entry_json(status.tx, status.block, status.index)


@rpc("eth_getRawTransactionByHash", codec.parse_hash)
def get_raw_transaction(node: Sequencer, tx_hash: bytes) -> str | None:
    status = node.transaction(tx_hash)
    return None if status is None else data(_raw(status.tx))


def _raw(entry: Transaction | Deposit) -> bytes:
    return encode_deposit(entry) if isinstance(entry, Deposit) else entry.raw


def _raw_tx_at(block: Block | None, index: int) -> str | None:
    entries = block_entries(block) if block is not None else ()
    return data(_raw(entries[index])) if index < len(entries) else None


@rpc("eth_getRawTransactionByBlockNumberAndIndex", block_tag, codec.parse_quantity)
def raw_tx_by_number_index(node: Sequencer, tag: Any, index: int) -> str | None:
    return _raw_tx_at(_block_or_none(node, tag), index)


@rpc("eth_getRawTransactionByBlockHashAndIndex", codec.parse_hash, codec.parse_quantity)
def raw_tx_by_hash_index(node: Sequencer, block_hash: bytes, index: int) -> str | None:
    return _raw_tx_at(node.block_by_hash(block_hash), index)


def _tx_at(block: Block | None, index: int) -> dict[str, Any] | None:
    entries = block_entries(block) if block is not None else ()
    return entry_json(entries[index], block, index) if index < len(entries) else None


@rpc("eth_getTransactionByBlockNumberAndIndex", block_tag, codec.parse_quantity)
def tx_by_number_index(node: Sequencer, tag: Any, index: int) -> dict[str, Any] | None:
    return _tx_at(_block_or_none(node, tag), index)


@rpc("eth_getTransactionByBlockHashAndIndex", codec.parse_hash, codec.parse_quantity)
def tx_by_hash_index(node: Sequencer, block_hash: bytes, index: int) -> dict[str, Any] | None:
    return _tx_at(node.block_by_hash(block_hash), index)


@rpc("eth_getTransactionReceipt", codec.parse_hash)
def get_receipt(node: Sequencer, tx_hash: bytes) -> dict[str, Any] | None:
    status = node.transaction(tx_hash)
    if status is None or status.block is None:
        return None
    return receipt_json(status.block, status.index)


# ---- state -------------------------------------------------------------------------------------


def _reader(node: Sequencer, tag: Any) -> State:
    return node.state_at(resolve_block(node, tag))


@rpc("eth_getBalance", codec.parse_address, block_tag, required=1)
def get_balance(node: Sequencer, address: bytes, tag: Any = "latest") -> str:
    return quantity(get_account(_reader(node, tag), address)[1])


@rpc("eth_getTransactionCount", codec.parse_address, block_tag, required=1)
def get_transaction_count(node: Sequencer, address: bytes, tag: Any = "latest") -> str:
    if tag == "pending":
        state_nonce = get_account(node.state, address)[0]
        return quantity(node.mempool.next_nonce(Address(address), state_nonce))
    return quantity(get_account(_reader(node, tag), address)[0])


@rpc("eth_getCode", codec.parse_address, block_tag, required=1)
def get_code(node: Sequencer, address: bytes, tag: Any = "latest") -> str:
    return data(_reader(node, tag).get(code_key(address)) or b"")


@rpc("eth_getStorageAt", codec.parse_address, codec.parse_storage_slot, block_tag, required=2)
def get_storage_at(node: Sequencer, address: bytes, slot: bytes, tag: Any = "latest") -> str:
    value = _reader(node, tag).get(storage_key(address, slot)) or b""
    return data(value[-32:].rjust(32, b"\x00"))


# ---- execution ----------------------------------------------------------------------------
# The work is in sequencer/simulate.py; `budget` is the event loop's share (see RpcServer).


@rpc("eth_call", call_object, block_tag, state_overrides, required=1, runs="budget")
def eth_call(
    node: Sequencer, request: CallRequest, tag: Any = "latest",
    overrides: Overrides | None = None, *, gas_cap: int, budget: Budget | None = None,
) -> str:  # fmt: skip
    number = resolve_block(node, tag)
    return data(simulate.call(node, request, number, overrides, gas_cap, budget))


@rpc("eth_estimateGas", call_object, block_tag, state_overrides, required=1, runs="budget")
def estimate_gas(
    node: Sequencer, request: CallRequest, tag: Any = "latest",
    overrides: Overrides | None = None, *, gas_cap: int, budget: Budget | None = None,
) -> str:  # fmt: skip
    number = resolve_block(node, tag)
    return quantity(simulate.estimate_gas(node, request, number, overrides, gas_cap, budget))


@rpc("eth_createAccessList", call_object, block_tag, required=1, runs="budget")
def create_access_list(
    node: Sequencer, request: CallRequest, tag: Any = "latest", *, gas_cap: int,
    budget: Budget | None = None,
) -> dict[str, Any]:  # fmt: skip
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


@rpc("eth_gasPrice")
def gas_price(node: Sequencer) -> str:
    return quantity(node.manifest.base_fee)


@rpc("eth_maxPriorityFeePerGas")
def max_priority_fee(node: Sequencer) -> str:
    return "0x0"


@rpc("eth_blobBaseFee")
def blob_base_fee(node: Sequencer) -> str:
    return "0x1"


def _percentile_rewards(block: Block, percentiles: list[float]) -> list[str]:
    base = block.header.base_fee
    tips = sorted(
        (min(tx.max_priority_fee, tx.max_fee - base), r.gas_used)
        for tx, r in zip(block.transactions, block.receipts, strict=True)
    )
    if not tips:
        return ["0x0"] * len(percentiles)
    total = sum(g for _, g in tips)
    out, cumulative, i = [], tips[0][1], 0
    for p in percentiles:
        threshold = total * p / 100
        while cumulative < threshold and i < len(tips) - 1:
            i += 1
            cumulative += tips[i][1]
        out.append(quantity(tips[i][0]))
    return out


def _percentiles(value: Any) -> list[float]:
    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(p, (int, float)) for p in value):
        raise InvalidParams("invalid argument 2: reward percentiles must be a list of numbers")
    if any(not 0 <= p <= 100 for p in value) or value != sorted(value):
        raise InvalidParams("invalid reward percentiles: must be ascending values in 0..100")
    return [float(p) for p in value]


@rpc("eth_feeHistory", codec.parse_quantity, block_tag, _percentiles, required=2)
def fee_history(
    node: Sequencer, count: int, tag: Any, percentiles: list[float] | None = None
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
    if percentiles:
        out["reward"] = [_percentile_rewards(b, percentiles) for b in blocks if b]
    return out


# ---- logs --------------------------------------------------------------------------------------


def log_filter(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 0: expected a filter object")
    addresses = value.get("address")
    if addresses is None:
        addrs: list[bytes] = []
    elif isinstance(addresses, list):
        _bounded(addresses, MAX_LIST_ITEMS, "filter addresses")
        addrs = [codec.parse_address(a) for a in addresses]
    else:
        addrs = [codec.parse_address(addresses)]
    topics: list[list[bytes] | None] = []
    raw_topics = value.get("topics") or []
    if not isinstance(raw_topics, list) or len(raw_topics) > 4:
        raise InvalidParams("invalid argument 0: topics must be a list of at most 4 entries")
    for entry in raw_topics:
        if entry is None:
            topics.append(None)
        elif isinstance(entry, list):
            _bounded(entry, MAX_LIST_ITEMS, "topics in one position")
            topics.append([codec.parse_hash(t, "topic") for t in entry] or None)
        else:
            topics.append([codec.parse_hash(entry, "topic")])
    out = {"addresses": addrs, "topics": topics, "block_hash": None}
    if value.get("blockHash") is not None:
        if value.get("fromBlock") is not None or value.get("toBlock") is not None:
            raise InvalidParams(
                "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock"
            )
        out["block_hash"] = codec.parse_hash(value["blockHash"], "blockHash")
    out["from"] = block_tag(value.get("fromBlock"))
    out["to"] = block_tag(value.get("toBlock"))
    return out


def log_matches(log: Any, addresses: list[bytes], topics: list[list[bytes] | None]) -> bool:
    if addresses and log.address not in addresses:
        return False
    if len(topics) > len(log.topics):
        return False
    return all(wanted is None or log.topics[i] in wanted for i, wanted in enumerate(topics))


def _bloom_may_match(
    bloom: bytes, addresses: list[bytes], topics: list[list[bytes] | None]
) -> bool:
    if addresses and not any(bloom_contains(bloom, a) for a in addresses):
        return False
    return all(wanted is None or any(bloom_contains(bloom, t) for t in wanted) for wanted in topics)


def filter_logs(node: Sequencer, flt: dict[str, Any]) -> list[dict[str, Any]]:
    """eth_getLogs: blooms first (headers only), bodies only of the blocks that may match."""
    if flt["block_hash"] is not None:
        block = node.block_by_hash(flt["block_hash"])
        if block is None:
            raise InvalidParams("unknown block")
        return block_logs(block, flt)
    start, end = _log_range(node, flt)
    out: list[dict[str, Any]] = []
    for chunk in range(start, end + 1, _HEADER_CHUNK):
        for header in node.headers(chunk, min(chunk + _HEADER_CHUNK, end + 1)):
            if not _bloom_may_match(header.logs_bloom, flt["addresses"], flt["topics"]):
                continue
            block = node.block(header.number)
            if block is not None:
                out.extend(block_logs(block, flt))
            if len(out) > MAX_LOG_RESULTS:
                raise LimitExceeded(f"query returned more than {MAX_LOG_RESULTS} results")
    return out


_HEADER_CHUNK = 1_000


def _log_range(node: Sequencer, flt: dict[str, Any]) -> tuple[int, int]:
    """(first, last) block of a filter's range; empty (1, 0) past the head."""
    head = node.committed.number
    start = resolve_block(node, flt["from"]) if not isinstance(flt["from"], int) else flt["from"]
    end = resolve_block(node, flt["to"]) if not isinstance(flt["to"], int) else min(flt["to"], head)
    if start > end:
        if isinstance(flt["from"], int) and flt["from"] > head:
            return 1, 0
        raise InvalidParams("invalid block range params")
    if end - start + 1 > MAX_LOG_BLOCK_RANGE:
        raise LimitExceeded(f"block range too large: at most {MAX_LOG_BLOCK_RANGE} blocks")
    return start, end


def block_logs(block: Block, flt: dict[str, Any]) -> list[dict[str, Any]]:
    """The logs of `block` that match a parsed filter's addresses and topics, rendered."""
    addresses, topics = flt["addresses"], flt["topics"]
    if not _bloom_may_match(block.header.logs_bloom, addresses, topics):
        return []
    out: list[dict[str, Any]] = []
    log_index = 0
    for tx_index, receipt in enumerate(block_entry_receipts(block)):
        for log in receipt.logs:
            if log_matches(log, addresses, topics):
                out.append(log_json(log, block, tx_index, log_index))
            log_index += 1
    # Logs of the cross-app messages the block executed (before its transactions) follow,
    # named by message id and numbered after the transactions.
    first = len(block_entries(block))
    for position, (message, receipt) in enumerate(zip(block.inbound, block.inbound_receipts,
                                                      strict=True)):  # fmt: skip
        for log in receipt.logs:
            if log_matches(log, addresses, topics):
                out.append(log_json(log, block, first + position, log_index, message.id))
            log_index += 1
    return out


@rpc("eth_getLogs", log_filter, runs="thread")
def get_logs(node: Sequencer, flt: dict[str, Any]) -> list[dict[str, Any]]:
    return filter_logs(node, flt)


# ---- tracing (EVM apps) ------------------------------------------------------------------------


def trace_config(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 1: expected a trace config object")
    tracer = value.get("tracer") or None
    if tracer not in (None, "callTracer"):
        raise InvalidParams(f"tracer {tracer!r} is not supported: use callTracer or the default")
    config = value.get("tracerConfig") or {}
    limit = value.get("limit") or 0
    if not isinstance(config, dict) or not isinstance(limit, int) or limit < 0:
        raise InvalidParams("invalid argument 1: bad tracerConfig or limit")
    return {"tracer": tracer, "only_top": bool(config.get("onlyTopCall")), "limit": limit}


@rpc("debug_traceTransaction", codec.parse_hash, trace_config, required=1, runs="isolated")
def trace_transaction(node: Sequencer, tx_hash: bytes, config: Any = None) -> dict[str, Any]:
    """Replays the transaction's block up to it on a scratch engine loaded with the parent
    block's whole state, O(state) per call (see vm/evm/trace.py for what is traced)."""
    if not node.evm:
        raise InvalidParams("debug_traceTransaction traces EVM apps only")
    status = node.transaction(tx_hash)
    if status is None or status.block is None:
        raise TxRejected("transaction not found")
    block = status.block
    parent = block.header.number - 1
    state = node.state_at(parent)
    scratch = EvmVM(node.chain_id, node.manifest.gas_limit, node.state.items_at(parent))
    trace = trace_in_block(state, block, status.index, scratch)
    config = config or {}
    if config.get("tracer") == "callTracer":
        tree = call_tree(trace)
        if config["only_top"]:
            tree.pop("calls", None)
        return tree
    return struct_logs(trace, config.get("limit", 0))


# ---- proofs ------------------------------------------------------------------------------------


def _proof_json(proof: Proof) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": data(proof.key),
        "value": None if proof.value is None else data(proof.value),
        "siblings": [data(s) for s in proof.siblings],
    }
    if proof.other_key_hash:
        out["otherKeyHash"] = data(proof.other_key_hash)
        out["otherValue"] = data(proof.other_value)
    return out


def slot_list(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise InvalidParams("invalid argument 1: expected a list of storage slots")
    _bounded(value, MAX_PROOF_SLOTS, "storage slots")
    return [codec.parse_storage_slot(v) for v in value]


@rpc("rollup_getProof", codec.parse_address, slot_list, required=1)
def get_proof(node: Sequencer, address: bytes, slots: list[bytes] | None = None) -> dict[str, Any]:
    """Proofs of an account and storage slots against the newest block's state root.

    The trie is binary keccak (see vm/commitment.py), not Ethereum's Patricia trie, so this is
    not eth_getProof. Keys are the raw state keys: 0x00 ++ address for the account (value:
    nonce as 8 bytes ++ balance), 0x01 ++ address ++ slot for storage.
    """
    header = node.head
    return {
        "blockNumber": quantity(header.number),
        "blockHash": data(block_hash(header)),
        "stateRoot": data(header.state_root),
        "account": _proof_json(node.tree.prove(account_key(address))),
        "storageProof": [
            dict(_proof_json(node.tree.prove(storage_key(address, slot))), slot=data(slot))
            for slot in slots or []
        ],
    }
