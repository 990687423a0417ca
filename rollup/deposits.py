"""Deposits from the L1: the Portal's event, the deposit transaction it determines, its codec.

    L1 event  TransactionDeposited(uint64 indexed chainId, uint64 indexed nonce,
                                   address indexed from, bytes opaqueData)
    opaque    = to(20) ++ mint(32) ++ value(32) ++ gas(8) ++ l1_token(20) ++ token_amount(32)
                ++ decimals(1) ++ symbol(32) ++ data                (abi.encodePacked)
    source    = keccak(u64(chain_id) ++ l1_block_hash(32) ++ u256(log_index))   the deposit id
    deposit   = rlp([source_hash, nonce, from, to, mint, value, gas, l1_token, token_amount,
                     decimals, symbol, data])
    hash      = keccak(0x7e ++ deposit)                          the L2 transaction's hash

A deposit transaction has no signature and pays no fee; the L1 event fully determines it, so
anyone following the L1 derives the same one. Limits (the Portal's, checked again on decode):
gas in 21000 + 16 * len(data) .. MAX_DEPOSIT_GAS, data at most MAX_DEPOSIT_DATA bytes,
decimals at most 77, `to` not zero. bridge/README.md has the whole flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rollup import rlp
from rollup.crypto import keccak
from rollup.errors import MalformedMessage
from rollup.rlp import decode_int, encode_int
from rollup.types import ZERO_ADDRESS, Address, Hash32

__all__ = [
    "DEPOSIT_TX",
    "MAX_DEPOSIT_GAS",
    "MAX_DEPOSIT_DATA",
    "ALIAS_OFFSET",
    "Deposit",
    "deposit_source_hash",
    "deposit_from_event",
    "encode_deposit",
    "decode_deposit",
    "alias_l1_address",
    "unalias_l2_address",
    "bridged_token_address",
    "BRIDGE_ADDRESS",
    "L2_TO_L1_ADDRESS",
]

DEPOSIT_TX = 0x7E
MAX_DEPOSIT_GAS = 5_000_000
MAX_DEPOSIT_DATA = 120_000
ALIAS_OFFSET = 0x1111000000000000000000000000000000001111
_OPAQUE_HEAD = 20 + 32 + 32 + 8 + 20 + 32 + 1 + 32

# System addresses of every app chain (no key controls them).
L2_TO_L1_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000f0004"))
BRIDGE_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000f0005"))


@dataclass(frozen=True, slots=True)
class Deposit:
    """One L1 deposit as the app chain executes it (a transaction of type 0x7e)."""

    source_hash: Hash32  # the deposit id
    nonce: int  # the chain's deposit counter in the Portal
    sender: Address  # the L1 sender, aliased when it is a contract
    to: Address
    mint: int  # wei credited to `sender` before the call
    value: int  # wei the call carries
    gas: int
    l1_token: Address  # zero: no token
    token_amount: int  # of the bridged token, credited to `to`
    decimals: int
    symbol: bytes  # 32 bytes, zero-padded
    data: bytes
    l1_block: int = field(default=0, compare=False)  # where the L1 event is (not encoded)
    hash: Hash32 = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", Hash32(keccak(bytes((DEPOSIT_TX,)) + _rlp(self))))

    @property
    def tx_type(self) -> int:
        return DEPOSIT_TX


def deposit_source_hash(chain_id: int, l1_block_hash: bytes, log_index: int) -> Hash32:
    head = chain_id.to_bytes(8, "big") + l1_block_hash
    return Hash32(keccak(head + log_index.to_bytes(32, "big")))


def alias_l1_address(address: bytes) -> Address:
    """A contract's address on the app chain: OP's alias, so it never acts for an L2 account."""
    value = (int.from_bytes(address, "big") + ALIAS_OFFSET) % 2**160
    return Address(value.to_bytes(20, "big"))


def unalias_l2_address(address: bytes) -> Address:
    value = (int.from_bytes(address, "big") - ALIAS_OFFSET) % 2**160
    return Address(value.to_bytes(20, "big"))


def bridged_token_address(l1_token: bytes) -> Address:
    """Where an L1 token's canonical bridged token lives on every app chain."""
    return Address(keccak(b"app-rollup:bridged-token:" + l1_token)[12:])


def deposit_from_event(
    chain_id: int,
    nonce: int,
    sender: bytes,
    opaque: bytes,
    l1_block_hash: bytes,
    log_index: int,
    l1_block: int = 0,
) -> Deposit:
    """The deposit an L1 TransactionDeposited event determines; MalformedMessage if the event
    breaks a rule the Portal enforces (it cannot come from the Portal)."""
    if len(opaque) < _OPAQUE_HEAD:
        raise MalformedMessage(f"deposit data of {len(opaque)} bytes is shorter than its head")
    if len(sender) != 20:
        raise MalformedMessage("deposit sender is not an address")
    to = Address(opaque[0:20])
    mint = int.from_bytes(opaque[20:52], "big")
    value = int.from_bytes(opaque[52:84], "big")
    gas = int.from_bytes(opaque[84:92], "big")
    l1_token = Address(opaque[92:112])
    token_amount = int.from_bytes(opaque[112:144], "big")
    decimals, symbol, data = opaque[144], opaque[145:177], opaque[177:]
    deposit = Deposit(
        deposit_source_hash(chain_id, l1_block_hash, log_index),
        nonce,
        Address(sender),
        to,
        mint,
        value,
        gas,
        l1_token,
        token_amount,
        decimals,
        symbol,
        data,
        l1_block,
    )
    _check(deposit)
    return deposit


def _check(d: Deposit) -> None:
    if d.to == ZERO_ADDRESS:
        raise MalformedMessage("deposit to the zero address")
    if len(d.data) > MAX_DEPOSIT_DATA:
        raise MalformedMessage(f"deposit data of {len(d.data)} bytes exceeds {MAX_DEPOSIT_DATA}")
    if not 21_000 + 16 * len(d.data) <= d.gas <= MAX_DEPOSIT_GAS:
        raise MalformedMessage(f"deposit gas {d.gas} is out of range")
    if d.decimals > 77 or len(d.symbol) != 32:
        raise MalformedMessage("deposit token metadata is out of range")
    if d.l1_token == ZERO_ADDRESS and d.token_amount:
        raise MalformedMessage("deposit credits a token amount without a token")
    if max(d.mint, d.value, d.token_amount) >= 2**256 or d.nonce >= 2**64:
        raise MalformedMessage("deposit amount or nonce is out of range")


def _rlp(d: Deposit) -> bytes:
    return rlp.encode(
        [
            d.source_hash,
            encode_int(d.nonce),
            d.sender,
            d.to,
            encode_int(d.mint),
            encode_int(d.value),
            encode_int(d.gas),
            d.l1_token,
            encode_int(d.token_amount),
            encode_int(d.decimals),
            d.symbol,
            d.data,
        ]
    )


def encode_deposit(d: Deposit) -> bytes:
    """0x7e ++ rlp([...]): what a block body and the DA carry, and what its hash covers."""
    return bytes((DEPOSIT_TX,)) + _rlp(d)


def decode_deposit(raw: bytes) -> Deposit:
    """Strict decoding; MalformedMessage naming what is wrong."""
    if raw[:1] != bytes((DEPOSIT_TX,)):
        raise MalformedMessage("not a deposit transaction (type 0x7e)")
    try:
        items = [rlp.as_bytes(x) for x in rlp.as_list(rlp.decode(raw[1:]), 12)]
        source, nonce, sender, to, mint, value, gas, token, amount, decimals, symbol, data = items
        if len(source) != 32 or len(sender) != 20 or len(to) != 20 or len(token) != 20:
            raise MalformedMessage("deposit field of the wrong length")
        deposit = Deposit(
            Hash32(source),
            decode_int(nonce),
            Address(sender),
            Address(to),
            decode_int(mint),
            decode_int(value),
            decode_int(gas),
            Address(token),
            decode_int(amount),
            decode_int(decimals),
            symbol,
            data,
        )
    except rlp.RLPError as exc:
        raise MalformedMessage(f"deposit is not valid RLP: {exc}") from None
    _check(deposit)
    return deposit
