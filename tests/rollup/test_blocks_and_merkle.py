import pytest
from eth_account import Account

from rollup import errors
from rollup.blocks import (
    block_hash,
    decode_body,
    decode_header,
    decode_receipts,
    encode_body,
    encode_header,
    encode_receipts,
)
from rollup.bloom import bloom_contains, logs_bloom
from rollup.crypto import keccak
from rollup.genesis import DEV_ACCOUNTS, DEV_KEYS, DEV_MNEMONIC
from rollup.merkle import merkle_proof, merkle_root, verify_proof
from rollup.transactions import decode_transaction
from rollup.types import Address, BlockHeader, Hash32, Log, Receipt


def header(**changes: object) -> BlockHeader:
    fields = dict(
        number=5,
        parent_hash=Hash32(b"\x01" * 32),
        timestamp=10,
        timestamp_ms=10_500,
        coinbase=Address(b"\x02" * 20),
        state_root=Hash32(b"\x03" * 32),
        transactions_root=Hash32(b"\x04" * 32),
        receipts_root=Hash32(b"\x05" * 32),
        messages_root=Hash32(b"\x06" * 32),
        withdrawals_root=Hash32(b"\x07" * 32),
        logs_bloom=bytes(256),
        gas_limit=30_000_000,
        gas_used=21_000,
        base_fee=10**9,
        l1_origin=3,
        chain_id=901,
    )
    fields.update(changes)
    return BlockHeader(**fields)  # type: ignore[arg-type]


def test_header_round_trip_and_hash_covers_every_field() -> None:
    h = header()
    assert decode_header(encode_header(h)) == h
    assert block_hash(h) != block_hash(header(l1_origin=4))
    assert block_hash(h) != block_hash(header(timestamp_ms=10_501))


def test_body_and_receipts_round_trip() -> None:
    raw = Account.sign_transaction(
        {
            "type": 2,
            "chainId": 901,
            "nonce": 0,
            "to": "0x" + "11" * 20,
            "value": 1,
            "gas": 21000,
            "maxFeePerGas": 10**9,
            "maxPriorityFeePerGas": 0,
        },
        DEV_KEYS[1],
    ).raw_transaction
    tx = decode_transaction(bytes(raw), 901)
    assert decode_body(encode_body([tx])) == (tx,)
    log = Log(Address(b"\x09" * 20), (Hash32(b"\x0a" * 32),), b"data")
    receipts = [
        Receipt(1, 21000, 21000, 10**9, (log,)),
        Receipt(0, 5000, 26000, 10**9, (), None, b"x"),
    ]
    assert decode_receipts(encode_receipts(receipts)) == tuple(receipts)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 8, 33])
def test_every_merkle_proof_verifies_and_a_wrong_leaf_does_not(count: int) -> None:
    leaves = [keccak(bytes([i])) for i in range(count)]
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        path = merkle_proof(leaves, index)
        assert verify_proof(root, leaf, path)
        assert not verify_proof(root, keccak(b"other"), path)


def test_bloom_contains_what_was_logged() -> None:
    log = Log(Address(b"\x09" * 20), (Hash32(b"\x0a" * 32),), b"")
    bloom = logs_bloom([log])
    assert bloom_contains(bloom, log.address) and bloom_contains(bloom, log.topics[0])
    assert not bloom_contains(bytes(256), log.address)


def test_dev_accounts_are_anvils() -> None:
    Account.enable_unaudited_hdwallet_features()
    for index, (address, key) in enumerate(DEV_ACCOUNTS):
        derived = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        assert derived.address == address and derived.key.hex() == key


def test_error_table_maps_to_eip1474_codes() -> None:
    assert errors.rpc_code(errors.ParseError("x")) == -32700
    assert errors.rpc_code(errors.InvalidRequest("x")) == -32600
    assert errors.rpc_code(errors.MethodNotFound("m")) == -32601
    assert errors.rpc_code(errors.InvalidParams("x")) == -32602
    assert errors.rpc_code(errors.NonceTooLow("0x1", 1, 2)) == -32000
    assert errors.rpc_code(errors.ExecutionReverted("r", b"")) == 3
    assert errors.rpc_code(errors.LimitExceeded("x")) == -32005
    assert errors.rpc_code(ValueError()) == -32603
    assert errors.http_status(errors.InvalidParams("x")) == 422
    message = errors.InsufficientFunds(1, 5).message
    assert message == "insufficient funds for gas * price + value: balance 1, tx cost 5, overshot 4"
