"""Parameter parsers of the JSON-RPC methods, and the typed shapes they parse into.

A parser takes one positional parameter as decoded from JSON and returns its typed value, or
raises InvalidParams (malformed) or LimitExceeded (a list past its bound, refused before any
of it is parsed: parsing costs). Nothing here reads the node except `resolve_block`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rollup.errors import BlockNotFound, InvalidParams, LimitExceeded
from rollup.types import AccessList
from sequencer.node import Sequencer
from sequencer.simulate import (
    MAX_SIMULATE_BLOCKS,
    MAX_SIMULATE_CALLS,
    AccountOverride,
    CallRequest,
    Overrides,
    SimBlock,
    SimCall,
)
from services.rpc import codec

__all__ = [
    "Parser",
    "BlockTag",
    "ByHash",
    "LogFilter",
    "TraceConfig",
    "block_tag",
    "resolve_block",
    "boolean",
    "call_object",
    "access_list",
    "state_overrides",
    "log_filter",
    "trace_config",
    "slot_list",
    "storage_requests",
    "SimulatePayload",
    "simulate_payload",
    "percentiles",
    "anything",
    "bounded",
    "MAX_LIST_ITEMS",
    "MAX_PROOF_SLOTS",
]

MAX_LIST_ITEMS = 1_024  # entries of any list parameter: addresses, topics, keys, overrides
MAX_PROOF_SLOTS = 256

Parser = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class ByHash:
    """A block named by its hash (EIP-1898's {"blockHash": ...} or a bare 32-byte hash)."""

    hash: bytes


Tag = Literal["latest", "pending", "safe", "finalized", "earliest"]
BlockTag = Tag | int | ByHash
_TAGS: tuple[Tag, ...] = ("latest", "pending", "safe", "finalized", "earliest")


def bounded(items: list[Any] | dict[Any, Any], limit: int, what: str) -> None:
    """Refuse a list parameter past its bound before parsing any of it (parsing costs)."""
    if len(items) > limit:
        raise LimitExceeded(f"too many {what}: at most {limit}")


def anything(value: Any) -> Any:
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(f"invalid argument: expected a boolean, got {value!r}")
    return value


# ---- blocks ----------------------------------------------------------------------------------


def block_tag(value: Any) -> BlockTag:
    """A block number, a tag, or an EIP-1898 object; resolved later against the node."""
    if value is None:
        return "latest"
    if isinstance(value, dict):
        if "blockHash" in value:
            return ByHash(codec.parse_hash(value["blockHash"], "blockHash"))
        if "blockNumber" in value:
            return block_tag(value["blockNumber"])
        raise InvalidParams("invalid argument: block object needs blockHash or blockNumber")
    for tag in _TAGS:
        if value == tag:
            return tag
    if isinstance(value, str) and len(value) == 66:  # a block hash, as geth's BlockNumberOrHash
        return ByHash(codec.parse_hash(value, "blockHash"))
    return codec.parse_quantity(value, "block number")


def resolve_block(node: Sequencer, tag: BlockTag) -> int:
    """The number of the committed block `tag` names; BlockNotFound past the head."""
    head = node.committed.number
    if tag in ("safe", "finalized"):  # what the DA poster posted / the L1 finalized
        posted = node.safe_head if tag == "safe" else node.finalized_head
        return head if posted is None else min(posted, head)
    if tag in ("latest", "pending"):
        return head
    if tag == "earliest":
        return 0
    if isinstance(tag, ByHash):
        block = node.block_by_hash(tag.hash)
        if block is None:
            raise BlockNotFound("header for hash not found")
        return block.header.number
    assert isinstance(tag, int)
    if tag > head:
        raise BlockNotFound("header not found")
    return tag


# ---- calls -----------------------------------------------------------------------------------


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
    bounded(value, MAX_LIST_ITEMS, "access list entries")
    entries = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("storageKeys", []), list):
            raise InvalidParams("invalid argument: accessList entries are {address, storageKeys}")
        bounded(item.get("storageKeys", []), MAX_LIST_ITEMS, "storage keys of an entry")
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
    bounded(value, MAX_LIST_ITEMS, "overridden accounts")
    return {codec.parse_address(a, "address"): _override(a, f) for a, f in value.items()}


def _override(address: str, fields: Any) -> AccountOverride:
    if not isinstance(fields, dict) or not set(fields) <= _OVERRIDE_FIELDS:
        raise InvalidParams(f"invalid argument 2: override of {address} has unknown fields")
    if "state" in fields and "stateDiff" in fields:
        raise InvalidParams(f"account {address} has both 'state' and 'stateDiff'")
    nonce = _optional_quantity(fields, "nonce")
    if nonce is not None and nonce >= 2**64:
        raise InvalidParams("invalid argument 2: nonce does not fit 64 bits")
    code = fields.get("code")
    return AccountOverride(
        balance=_optional_quantity(fields, "balance"),
        nonce=nonce,
        code=codec.parse_data(code, "code") if code is not None else None,
        state=_slots(fields, "state"),
        state_diff=_slots(fields, "stateDiff"),
    )


def _slots(fields: dict[str, Any], key: str) -> dict[bytes, bytes] | None:
    if fields.get(key) is None:
        return None
    if not isinstance(fields[key], dict):
        raise InvalidParams(f"invalid argument 2: {key} must be an object")
    bounded(fields[key], MAX_LIST_ITEMS, f"slots of {key}")
    return {
        codec.parse_hash(slot, "slot"): codec.parse_hash(word, "value")
        for slot, word in fields[key].items()
    }


# ---- logs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFilter:
    """A filter object (eth_getLogs, eth_newFilter, a logs subscription), parsed.

    `topics[i]` is the set wanted at position i, None for any; `block_hash` excludes a range.
    """

    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()
    block_hash: bytes | None = None
    from_block: BlockTag = "latest"
    to_block: BlockTag = "latest"


def log_filter(value: Any) -> LogFilter:
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 0: expected a filter object")
    block_hash = None
    if value.get("blockHash") is not None:
        if value.get("fromBlock") is not None or value.get("toBlock") is not None:
            raise InvalidParams(
                "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock"
            )
        block_hash = codec.parse_hash(value["blockHash"], "blockHash")
    return LogFilter(
        addresses=_addresses(value.get("address")),
        topics=_topics(value.get("topics") or []),
        block_hash=block_hash,
        from_block=block_tag(value.get("fromBlock")),
        to_block=block_tag(value.get("toBlock")),
    )


def _addresses(value: Any) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        bounded(value, MAX_LIST_ITEMS, "filter addresses")
        return tuple(codec.parse_address(a) for a in value)
    return (codec.parse_address(value),)


def _topics(value: Any) -> tuple[tuple[bytes, ...] | None, ...]:
    if not isinstance(value, list) or len(value) > 4:
        raise InvalidParams("invalid argument 0: topics must be a list of at most 4 entries")
    topics: list[tuple[bytes, ...] | None] = []
    for entry in value:
        if entry is None:
            topics.append(None)
        elif isinstance(entry, list):
            bounded(entry, MAX_LIST_ITEMS, "topics in one position")
            topics.append(tuple(codec.parse_hash(t, "topic") for t in entry) or None)
        else:
            topics.append((codec.parse_hash(entry, "topic"),))
    return tuple(topics)


# ---- tracing, proofs, fees -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """debug_traceTransaction's options: callTracer (optionally the top call only) or the
    default struct logger (at most `limit` steps; 0: all)."""

    call_tracer: bool = False
    only_top: bool = False
    limit: int = 0


def trace_config(value: Any) -> TraceConfig:
    if value is None:
        return TraceConfig()
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 1: expected a trace config object")
    tracer = value.get("tracer") or None
    if tracer not in (None, "callTracer"):
        raise InvalidParams(f"tracer {tracer!r} is not supported: use callTracer or the default")
    config = value.get("tracerConfig") or {}
    limit = value.get("limit") or 0
    if not isinstance(config, dict) or not isinstance(limit, int) or limit < 0:
        raise InvalidParams("invalid argument 1: bad tracerConfig or limit")
    return TraceConfig(tracer == "callTracer", bool(config.get("onlyTopCall")), limit)


def slot_list(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise InvalidParams("invalid argument 1: expected a list of storage slots")
    bounded(value, MAX_PROOF_SLOTS, "storage slots")
    return [codec.parse_storage_slot(v) for v in value]


def percentiles(value: Any) -> list[float]:
    """eth_feeHistory's reward percentiles: ascending numbers in 0..100."""
    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(p, (int, float)) for p in value):
        raise InvalidParams("invalid argument 2: reward percentiles must be a list of numbers")
    if any(not 0 <= p <= 100 for p in value) or value != sorted(value):
        raise InvalidParams("invalid reward percentiles: must be ascending values in 0..100")
    return [float(p) for p in value]


def storage_requests(value: Any) -> dict[bytes, list[bytes]]:
    """eth_getStorageValues' {address: [slot, ...]}: at most MAX_LIST_ITEMS slots in all,
    refused before any is parsed; at least one address (geth answers an empty one -32602)."""
    if not isinstance(value, dict) or not value:
        raise InvalidParams("invalid argument 0: expected a non-empty {address: [slots]} object")
    if any(not isinstance(slots, list) for slots in value.values()):
        raise InvalidParams("invalid argument 0: each address maps to a list of storage slots")
    if sum(len(slots) for slots in value.values()) > MAX_LIST_ITEMS:
        raise LimitExceeded(f"too many storage slots: at most {MAX_LIST_ITEMS} in all")
    out: dict[bytes, list[bytes]] = {}
    for address, slots in value.items():
        parsed = [codec.parse_storage_slot(slot) for slot in slots]
        out.setdefault(codec.parse_address(address), []).extend(parsed)
    return out


# ---- eth_simulateV1 --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatePayload:
    """eth_simulateV1's first parameter, parsed (sequencer/simulate.py runs it)."""

    blocks: list[SimBlock]
    validation: bool = False


_PAYLOAD_FIELDS = {"blockStateCalls", "validation", "traceTransfers", "returnFullTransactions"}
_BLOCK_FIELDS = {"blockOverrides", "stateOverrides", "calls"}
# the block overrides supported (not withdrawals, blobBaseFee): see services/rpc/eth.py
_BLOCK_OVERRIDES = {"number", "time", "gasLimit", "feeRecipient", "baseFeePerGas", "prevRandao"}


def simulate_payload(value: Any) -> SimulatePayload:
    """Refuses what it does not do (traceTransfers, full transactions, other block overrides)
    rather than ignore it, and any list past its bound before parsing it."""
    if not isinstance(value, dict) or not set(value) <= _PAYLOAD_FIELDS:
        raise InvalidParams(
            f"invalid argument 0: expected an object with {sorted(_PAYLOAD_FIELDS)}"
        )
    for unsupported in ("traceTransfers", "returnFullTransactions"):
        if value.get(unsupported):
            raise InvalidParams(f"eth_simulateV1: {unsupported} is not supported by this node")
    blocks = value.get("blockStateCalls")
    if not isinstance(blocks, list):
        raise InvalidParams("invalid argument 0: blockStateCalls must be a list")
    bounded(blocks, MAX_SIMULATE_BLOCKS, "blocks to simulate")
    calls = sum(len(b.get("calls") or []) if isinstance(b, dict) else 0 for b in blocks)
    if calls > MAX_SIMULATE_CALLS:
        raise LimitExceeded(f"too many calls to simulate: at most {MAX_SIMULATE_CALLS}")
    validation = value.get("validation", False)
    return SimulatePayload([_sim_block(b) for b in blocks], boolean(validation))


def _sim_block(value: Any) -> SimBlock:
    if not isinstance(value, dict) or not set(value) <= _BLOCK_FIELDS:
        raise InvalidParams(f"invalid block state call: expected {sorted(_BLOCK_FIELDS)}")
    overrides = value.get("blockOverrides") or {}
    if not isinstance(overrides, dict) or not set(overrides) <= _BLOCK_OVERRIDES:
        raise InvalidParams(
            f"eth_simulateV1: the block overrides supported are {sorted(_BLOCK_OVERRIDES)}"
        )
    calls = value.get("calls") or []
    if not isinstance(calls, list):
        raise InvalidParams("invalid block state call: calls must be a list")
    coinbase, randao = overrides.get("feeRecipient"), overrides.get("prevRandao")
    return SimBlock(
        calls=tuple(_sim_call(c) for c in calls),
        overrides=state_overrides(value.get("stateOverrides")),
        number=_optional_quantity(overrides, "number"),
        time=_optional_quantity(overrides, "time"),
        gas_limit=_optional_quantity(overrides, "gasLimit"),
        coinbase=None if coinbase is None else codec.parse_address(coinbase, "feeRecipient"),
        base_fee=_optional_quantity(overrides, "baseFeePerGas"),
        prev_randao=None if randao is None else codec.parse_storage_slot(randao),
    )


def _sim_call(value: Any) -> SimCall:
    request = call_object(value)
    return SimCall(request, _optional_quantity(value, "nonce"))
