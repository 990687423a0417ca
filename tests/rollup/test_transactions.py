"""Decoding signed transactions: compared with eth-account, the reference implementation."""

import contextlib

import pytest
from eth_account import Account

from rollup import rlp
from rollup.errors import InvalidSender, NotReplayProtected, TxDecodeError, UnsupportedTransaction
from rollup.genesis import DEV_KEYS
from rollup.transactions import decode_transaction, decode_unsigned, intrinsic_gas, signing_hash

CHAIN = 901001
KEY = DEV_KEYS[0]
SENDER = Account.from_key(KEY).address
TO = "0x" + "22" * 20

TXS = {
    "legacy": {"chainId": CHAIN, "nonce": 7, "to": TO, "value": 5, "gas": 21000, "gasPrice": 10**9},
    "2930": {
        "type": 1,
        "chainId": CHAIN,
        "nonce": 0,
        "to": TO,
        "value": 0,
        "gas": 50000,
        "gasPrice": 10**9,
        "data": b"\x01\x00",
        "accessList": [{"address": "0x" + "33" * 20, "storageKeys": ["0x" + "00" * 31 + "01"]}],
    },
    "1559": {
        "type": 2,
        "chainId": CHAIN,
        "nonce": 2**40,
        "to": TO,
        "value": 10**18,
        "gas": 30000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**8,
        "data": b"\xaa" * 40,
    },
    "create": {
        "type": 2,
        "chainId": CHAIN,
        "nonce": 0,
        "value": 0,
        "gas": 100000,
        "maxFeePerGas": 10**9,
        "maxPriorityFeePerGas": 0,
        "data": b"\x60\x00",
    },
}


def sign(tx: dict) -> bytes:
    return bytes(Account.sign_transaction(tx, KEY).raw_transaction)


@pytest.mark.parametrize("name", list(TXS))
def test_decode_matches_eth_account(name: str) -> None:
    fields = TXS[name]
    raw = sign(fields)
    tx = decode_transaction(raw, CHAIN)
    assert "0x" + tx.sender.hex() == SENDER.lower()
    assert Account.recover_transaction(raw) == SENDER
    assert tx.nonce == fields["nonce"] and tx.value == fields["value"] and tx.gas == fields["gas"]
    assert tx.data == fields.get("data", b"")
    assert tx.to == (bytes.fromhex(fields["to"][2:]) if "to" in fields else None)
    assert decode_unsigned(raw, tx.sender) == tx
    assert signing_hash(raw) != tx.hash


def test_wrong_chain_id_is_invalid_sender() -> None:
    raw = sign(TXS["1559"])
    with pytest.raises(InvalidSender, match=f"invalid chain id for signer: have {CHAIN} want 5"):
        decode_transaction(raw, 5)


def test_zero_r_is_invalid_sender_and_a_flipped_bit_recovers_someone_else() -> None:
    tx = decode_transaction(sign(TXS["1559"]), CHAIN)
    items = rlp.decode(tx.raw[1:])
    assert isinstance(items, list)
    items[-2] = b""
    with pytest.raises(InvalidSender):
        decode_transaction(b"\x02" + rlp.encode(items), CHAIN)
    flipped = bytearray(tx.raw)
    flipped[-1] ^= 0x01  # ECDSA recovery then yields another key, or none at all
    with contextlib.suppress(InvalidSender):
        assert decode_transaction(bytes(flipped), CHAIN).sender != tx.sender


def test_high_s_is_rejected() -> None:
    tx = decode_transaction(sign(TXS["1559"]), CHAIN)
    items = rlp.decode(tx.raw[1:])
    assert isinstance(items, list)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    items[-1] = rlp.encode_int(n - tx.s)
    items[-3] = rlp.encode_int(1 - tx.v)
    with pytest.raises(InvalidSender):
        decode_transaction(b"\x02" + rlp.encode(items), CHAIN)


def test_pre_eip155_legacy_is_refused() -> None:
    items = [
        rlp.encode_int(0),
        rlp.encode_int(10**9),
        rlp.encode_int(21000),
        b"\x22" * 20,
        b"",
        b"",
    ]
    msg_hash = __import__("rollup.crypto", fromlist=["keccak"]).keccak(rlp.encode(items))
    signed = Account.unsafe_sign_hash(msg_hash, KEY)
    raw = rlp.encode(
        items + [rlp.encode_int(signed.v), rlp.encode_int(signed.r), rlp.encode_int(signed.s)]
    )
    with pytest.raises(NotReplayProtected):
        decode_transaction(raw, CHAIN)
    assert (
        "0x" + decode_transaction(raw, CHAIN, allow_unprotected=True).sender.hex() == SENDER.lower()
    )


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", TxDecodeError),
        (b"\x03\xc0", UnsupportedTransaction),
        (b"\x02\xc3\x01\x02\x03", TxDecodeError),
        (b"\xc0", TxDecodeError),
        (b"\x85hello", TxDecodeError),
        (b"\x02" + rlp.encode([b"\x00\x01"] + [b""] * 11), TxDecodeError),
    ],
)
def test_malformed_bytes_are_decode_errors(raw: bytes, error: type) -> None:
    with pytest.raises(error):
        decode_transaction(raw, CHAIN)


def test_intrinsic_gas_follows_ethereum() -> None:
    assert intrinsic_gas(decode_transaction(sign(TXS["legacy"]), CHAIN)) == 21000
    assert intrinsic_gas(decode_transaction(sign(TXS["1559"]), CHAIN)) == 21000 + 16 * 40
    assert (
        intrinsic_gas(decode_transaction(sign(TXS["2930"]), CHAIN)) == 21000 + 16 + 4 + 2400 + 1900
    )
    assert (
        intrinsic_gas(decode_transaction(sign(TXS["create"]), CHAIN)) == 21000 + 16 + 4 + 32000 + 2
    )
