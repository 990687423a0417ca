"""Decoding of signed Ethereum transactions: legacy (EIP-155), EIP-2930 and EIP-1559.

    legacy  = rlp([nonce, gasPrice, gas, to, value, data, v, r, s])
              signed over rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])
    2930    = 0x01 ++ rlp([chainId, nonce, gasPrice, gas, to, value, data, accessList,
                           yParity, r, s])
    1559    = 0x02 ++ rlp([chainId, nonce, tip, feeCap, gas, to, value, data, accessList,
                           yParity, r, s])
              typed ones are signed over type ++ rlp(all fields before yParity)

The hot path slices the signing payload out of the raw bytes (no re-encoding) and recovers the
sender with libsecp256k1. The hash of a transaction is keccak(raw), what eth_sendRawTransaction
returns. Decoding is strict (canonical RLP, low-s, r and s in range) and errors carry geth's words.
"""

from __future__ import annotations

from rollup import rlp
from rollup.crypto import keccak, recover_address
from rollup.errors import InvalidSender, NotReplayProtected, TxDecodeError, UnsupportedTransaction
from rollup.types import (
    ACCESS_LIST_TX,
    DYNAMIC_FEE_TX,
    LEGACY_TX,
    AccessList,
    Address,
    Hash32,
    Transaction,
)

__all__ = [
    "contract_address",
    "decode_transaction",
    "decode_unsigned",
    "signing_hash",
    "intrinsic_gas",
    "message_intrinsic_gas",
    "MAX_TX_SIZE",
    "MAX_INITCODE_SIZE",
    "MAX_TX_GAS",
]

MAX_TX_SIZE = 128 * 1024  # geth's txMaxSize: 4 slots of 32 KiB
MAX_INITCODE_SIZE = 2 * 24_576  # EIP-3860
# EIP-7825 (Ethereum since Fusaka): one transaction's gas, whatever the block's limit. It
# bounds what one transaction can hold in memory (a native app's ~4 bytes a gas) and how
# long it runs, on the sequencer and on every verifier.
MAX_TX_GAS = 2**24

_FIELD_COUNT = {LEGACY_TX: 9, ACCESS_LIST_TX: 11, DYNAMIC_FEE_TX: 12}


def _int(item: rlp.RLPItem, name: str, max_bits: int = 256) -> int:
    if not isinstance(item, bytes):
        raise TxDecodeError(f"rlp: expected input string or byte for {name}")
    if item[:1] == b"\x00":
        raise TxDecodeError(f"rlp: non-canonical integer (leading zero bytes) for {name}")
    if len(item) * 8 > max_bits:
        raise TxDecodeError(f"rlp: input string too long for {name}")
    return int.from_bytes(item, "big")


def _to(item: rlp.RLPItem) -> Address | None:
    if not isinstance(item, bytes) or len(item) not in (0, 20):
        raise TxDecodeError("rlp: input string too long for common.Address")
    return Address(item) if item else None


def _bytes(item: rlp.RLPItem, name: str) -> bytes:
    if not isinstance(item, bytes):
        raise TxDecodeError(f"rlp: expected input string or byte for {name}")
    return item


def _access_list(item: rlp.RLPItem) -> AccessList:
    if not isinstance(item, list):
        raise TxDecodeError("rlp: expected input list for types.AccessList")
    entries: list[tuple[bytes, tuple[bytes, ...]]] = []
    for entry in item:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise TxDecodeError("rlp: expected input list for types.AccessTuple")
        address, keys = entry[0], entry[1]
        if not isinstance(address, bytes) or len(address) != 20:
            raise TxDecodeError("rlp: input string too short for common.Address")
        key_list: list[bytes] = []
        for key in keys:
            if not isinstance(key, bytes) or len(key) != 32:
                raise TxDecodeError("rlp: input string too short for common.Hash")
            key_list.append(key)
        entries.append((address, tuple(key_list)))
    return tuple(entries)


def _envelope(raw: bytes) -> tuple[int, list[rlp.RLPItem], list[int], int]:
    """Split raw bytes into (type, fields, field offsets, offset of the list)."""
    if not raw:
        raise TxDecodeError("typed transaction too short")
    first = raw[0]
    if first >= 0xC0:
        tx_type, start = LEGACY_TX, 0
    elif first in (ACCESS_LIST_TX, DYNAMIC_FEE_TX):
        tx_type, start = first, 1
    elif first <= 0x7F:
        raise UnsupportedTransaction("transaction type not supported")
    else:
        raise TxDecodeError("rlp: expected input list for types.LegacyTx")
    try:
        fields, offsets = rlp.decode_list_with_offsets(raw, start)
    except rlp.RLPError as exc:
        raise TxDecodeError(str(exc)) from None
    if len(fields) != _FIELD_COUNT[tx_type]:
        raise TxDecodeError(f"rlp: wrong number of fields for transaction type {tx_type}")
    return tx_type, fields, offsets, start


def _signing_payload(raw: bytes, tx_type: int, offsets: list[int], chain_id: int | None) -> bytes:
    if tx_type == LEGACY_TX:
        body = raw[offsets[0] : offsets[6]]
        if chain_id is not None:
            body += rlp.encode(rlp.encode_int(chain_id)) + b"\x80\x80"
        return rlp.list_header(len(body)) + body
    body = raw[offsets[0] : offsets[_FIELD_COUNT[tx_type] - 3]]
    return bytes((tx_type,)) + rlp.list_header(len(body)) + body


def _legacy_chain(v: int) -> tuple[int | None, int]:
    """(chain id, y-parity) from a legacy v."""
    if v in (27, 28):
        return None, v - 27
    if v >= 35:
        return (v - 35) // 2, (v - 35) % 2
    raise InvalidSender("invalid sender: invalid transaction v, r, s values")


def signing_hash(raw: bytes) -> bytes:
    """The hash a sender signed, for a raw signed transaction."""
    tx_type, fields, offsets, _ = _envelope(raw)
    if tx_type == LEGACY_TX:
        chain_id, _parity = _legacy_chain(_int(fields[6], "V"))
    else:
        chain_id = _int(fields[0], "ChainID")
    return keccak(_signing_payload(raw, tx_type, offsets, chain_id))


def decode_transaction(raw: bytes, chain_id: int, allow_unprotected: bool = False) -> Transaction:
    """Decode `raw`, check its chain id and signature, and recover the sender.

    Raises a `TxRejected` subclass with geth's message on any defect.
    """
    tx_type, fields, offsets, _ = _envelope(raw)
    if tx_type == LEGACY_TX:
        nonce = _int(fields[0], "Nonce", 64)
        gas_price = _int(fields[1], "GasPrice")
        tip = fee_cap = gas_price
        gas = _int(fields[2], "Gas", 64)
        to, value, data = _to(fields[3]), _int(fields[4], "Value"), _bytes(fields[5], "Data")
        access_list: AccessList = ()
        v, r, s = _int(fields[6], "V"), _int(fields[7], "R"), _int(fields[8], "S")
        tx_chain, parity = _legacy_chain(v)
        if tx_chain is None and not allow_unprotected:
            raise NotReplayProtected()
    else:
        tx_chain = _int(fields[0], "ChainID")
        nonce = _int(fields[1], "Nonce", 64)
        if tx_type == ACCESS_LIST_TX:
            tip = fee_cap = _int(fields[2], "GasPrice")
        else:
            tip, fee_cap = _int(fields[2], "GasTipCap"), _int(fields[3], "GasFeeCap")
        base = 4 if tx_type == DYNAMIC_FEE_TX else 3
        gas = _int(fields[base], "Gas", 64)
        to, value = _to(fields[base + 1]), _int(fields[base + 2], "Value")
        data = _bytes(fields[base + 3], "Data")
        access_list = _access_list(fields[base + 4])
        parity = v = _int(fields[base + 5], "V", 8)
        r, s = _int(fields[base + 6], "R"), _int(fields[base + 7], "S")
    if tx_chain is not None and tx_chain != chain_id:
        raise InvalidSender(
            f"invalid sender: invalid chain id for signer: have {tx_chain} want {chain_id}"
        )
    msg_hash = keccak(_signing_payload(raw, tx_type, offsets, tx_chain))
    sender = recover_address(msg_hash, parity, r, s)
    if sender is None:
        raise InvalidSender("invalid sender: invalid transaction v, r, s values")
    return Transaction(
        tx_type=tx_type,
        chain_id=tx_chain,
        nonce=nonce,
        max_priority_fee=tip,
        max_fee=fee_cap,
        gas=gas,
        to=to,
        value=value,
        data=data,
        access_list=access_list,
        v=v,
        r=r,
        s=s,
        sender=Address(sender),
        hash=Hash32(keccak(raw)),
        raw=raw,
    )


def decode_unsigned(raw: bytes, sender: Address) -> Transaction:
    """Rebuild a transaction whose sender is already known (stored blocks, DA replay skips
    nothing: the verifier calls `decode_transaction` instead)."""
    tx_type, fields, _offsets, _ = _envelope(raw)
    if tx_type == LEGACY_TX:
        v = _int(fields[6], "V")
        chain, _parity = _legacy_chain(v)
        gas_price = _int(fields[1], "GasPrice")
        return Transaction(
            LEGACY_TX,
            chain,
            _int(fields[0], "Nonce"),
            gas_price,
            gas_price,
            _int(fields[2], "Gas"),
            _to(fields[3]),
            _int(fields[4], "Value"),
            _bytes(fields[5], "Data"),
            (),
            v,
            _int(fields[7], "R"),
            _int(fields[8], "S"),
            sender,
            Hash32(keccak(raw)),
            raw,
        )
    base = 4 if tx_type == DYNAMIC_FEE_TX else 3
    tip = _int(fields[2], "fee")
    fee_cap = _int(fields[3], "fee") if tx_type == DYNAMIC_FEE_TX else tip
    return Transaction(
        tx_type,
        _int(fields[0], "ChainID"),
        _int(fields[1], "Nonce"),
        tip,
        fee_cap,
        _int(fields[base], "Gas"),
        _to(fields[base + 1]),
        _int(fields[base + 2], "Value"),
        _bytes(fields[base + 3], "Data"),
        _access_list(fields[base + 4]),
        _int(fields[base + 5], "V"),
        _int(fields[base + 6], "R"),
        _int(fields[base + 7], "S"),
        sender,
        Hash32(keccak(raw)),
        raw,
    )


def intrinsic_gas(tx: Transaction) -> int:
    """Gas charged before execution: Ethereum's schedule (Istanbul calldata, Shanghai initcode)."""
    return message_intrinsic_gas(tx.data, tx.to is None, tx.access_list)


def message_intrinsic_gas(data: bytes, create: bool, access_list: AccessList = ()) -> int:
    zeros = data.count(0)
    gas = 21_000 + 4 * zeros + 16 * (len(data) - zeros)
    if create:
        gas += 32_000 + 2 * ((len(data) + 31) // 32)
    for _address, keys in access_list:
        gas += 2_400 + 1_900 * len(keys)
    return gas


def contract_address(sender: bytes, nonce: int) -> Address:
    """Where CREATE from `sender` at `nonce` puts a contract: keccak(rlp([sender, nonce]))[12:]."""
    return Address(keccak(rlp.encode([sender, rlp.encode_int(nonce)]))[12:])
