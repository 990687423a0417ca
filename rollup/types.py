"""Plain data of the protocol: transactions, logs, receipts, block headers and blocks.

Addresses and hashes are raw `bytes` (20 and 32 long) everywhere inside the node; hex is a
concern of the JSON-RPC edge only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NewType

if TYPE_CHECKING:
    from rollup.deposits import Deposit
    from rollup.messages import CrossMessage
    from rollup.withdrawals import Withdrawal

__all__ = [
    "Address",
    "Hash32",
    "ZERO_ADDRESS",
    "ZERO_HASH",
    "MAX_CHAIN_ID",
    "LEGACY_TX",
    "ACCESS_LIST_TX",
    "DYNAMIC_FEE_TX",
    "AccessList",
    "Transaction",
    "Log",
    "Receipt",
    "BlockHeader",
    "Block",
    "BlockEnv",
]

Address = NewType("Address", bytes)
Hash32 = NewType("Hash32", bytes)

ZERO_ADDRESS = Address(b"\x00" * 20)
ZERO_HASH = Hash32(b"\x00" * 32)
MAX_CHAIN_ID = 2**53 - 1  # the largest chain id MetaMask takes (a JavaScript safe integer)

LEGACY_TX = 0
ACCESS_LIST_TX = 1
DYNAMIC_FEE_TX = 2

AccessList = tuple[tuple[bytes, tuple[bytes, ...]], ...]


@dataclass(frozen=True, slots=True)
class Transaction:
    """A decoded, signature-checked transaction of any supported type."""

    tx_type: int
    chain_id: int | None
    nonce: int
    max_priority_fee: int  # equals gas_price for legacy and EIP-2930 transactions
    max_fee: int  # equals gas_price for legacy and EIP-2930 transactions
    gas: int
    to: Address | None
    value: int
    data: bytes
    access_list: AccessList
    v: int  # y-parity for typed transactions, the EIP-155 v for legacy ones
    r: int
    s: int
    sender: Address
    hash: Hash32
    raw: bytes = field(repr=False)

    def effective_gas_price(self, base_fee: int) -> int:
        return min(self.max_fee, base_fee + self.max_priority_fee)

    def max_cost(self) -> int:
        """The balance a sender needs to submit it: gas * fee cap + value."""
        return self.gas * self.max_fee + self.value


@dataclass(frozen=True, slots=True)
class Log:
    address: Address
    topics: tuple[Hash32, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class Receipt:
    status: int  # 1 success, 0 failure
    gas_used: int
    cumulative_gas_used: int
    effective_gas_price: int
    logs: tuple[Log, ...]
    contract_address: Address | None = None
    return_data: bytes = b""  # output, or revert data on failure; not part of Ethereum's receipt


@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    parent_hash: Hash32
    timestamp: int  # seconds, as the EVM sees it
    timestamp_ms: int  # when the sequencer sealed it; several blocks share a second
    coinbase: Address
    state_root: Hash32
    transactions_root: Hash32
    receipts_root: Hash32
    messages_root: Hash32
    withdrawals_root: Hash32
    logs_bloom: bytes
    gas_limit: int
    gas_used: int
    base_fee: int
    l1_origin: int  # the newest L1 block whose deposits this block may include
    chain_id: int
    l1_origin_hash: Hash32 = ZERO_HASH  # that L1 block's hash (zero: no L1 followed)


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    hash: Hash32
    transactions: tuple[Transaction, ...]
    receipts: tuple[Receipt, ...]
    # Cross-app messages (rollup.messages). `inbound` is an input of the block, executed in
    # order before its transactions; `inbound_receipts` (one per inbound message) and
    # `outbound` (what the block emitted, src_index = position) are outputs of execution.
    inbound: tuple[CrossMessage, ...] = ()
    inbound_receipts: tuple[Receipt, ...] = ()
    outbound: tuple[CrossMessage, ...] = ()
    # Bridge (rollup.deposits, rollup.withdrawals). `deposits` are an input, executed first of
    # all, each with its receipt; `withdrawals` are an output, the leaves the block appended to
    # the withdrawals tree.
    deposits: tuple[Deposit, ...] = ()
    deposit_receipts: tuple[Receipt, ...] = ()
    withdrawals: tuple[Withdrawal, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockEnv:
    """What a block's execution may know about the world: its only source of time."""

    number: int
    timestamp: int
    coinbase: Address
    base_fee: int
    gas_limit: int
    chain_id: int
    prev_randao: Hash32 = ZERO_HASH
