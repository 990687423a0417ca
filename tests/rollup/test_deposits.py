"""Deposit transactions: the L1 event's bytes determine them; strict codec; aliasing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.deposits import (
    alias_l1_address,
    bridged_token_address,
    decode_deposit,
    deposit_from_event,
    deposit_source_hash,
    encode_deposit,
    unalias_l2_address,
)
from rollup.errors import MalformedMessage


def opaque(
    to: bytes = b"\x02" * 20,
    mint: int = 5,
    value: int = 5,
    gas: int = 100_000,
    token: bytes = bytes(20),
    amount: int = 0,
    data: bytes = b"",
) -> bytes:
    return (
        to
        + mint.to_bytes(32, "big")
        + value.to_bytes(32, "big")
        + gas.to_bytes(8, "big")
        + token
        + amount.to_bytes(32, "big")
        + bytes([18])
        + b"TOKEN".ljust(32, b"\0")
        + data
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**64 - 1), st.binary(max_size=300), st.integers(0, 2**256 - 1))
def test_an_event_gives_a_deposit_that_round_trips(nonce: int, data: bytes, mint: int) -> None:
    event = opaque(mint=mint, value=mint, data=data, gas=21_000 + 16 * len(data))
    deposit = deposit_from_event(901, nonce, b"\x01" * 20, event, b"\xaa" * 32, 3)
    assert deposit.source_hash == deposit_source_hash(901, b"\xaa" * 32, 3)
    assert decode_deposit(encode_deposit(deposit)) == deposit
    assert decode_deposit(encode_deposit(deposit)).hash == deposit.hash


def test_the_deposit_id_differs_by_chain_block_and_log() -> None:
    ids = {
        deposit_source_hash(c, h, i)
        for c in (1, 2)
        for h in (b"\x01" * 32, b"\x02" * 32)
        for i in (0, 1)
    }
    assert len(ids) == 8


@pytest.mark.parametrize(
    "event, reason",
    [
        (opaque()[:100], "shorter than its head"),
        (opaque(to=bytes(20)), "zero address"),
        (opaque(gas=20_000), "gas"),
        (opaque(data=b"x" * 10, gas=21_000), "gas"),
        (opaque(amount=3), "without a token"),
    ],
)
def test_events_the_portal_cannot_emit_are_refused(event: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        deposit_from_event(901, 0, b"\x01" * 20, event, b"\xaa" * 32, 0)


def test_garbage_does_not_decode() -> None:
    for raw in (b"", b"\x7e", b"\x7e\xc0", b"\x02" + b"\x00" * 10):
        with pytest.raises(MalformedMessage):
            decode_deposit(raw)


def test_aliasing_is_ops_and_reversible() -> None:
    contract = bytes.fromhex("ffffffffffffffffffffffffffffffffffffffff")
    aliased = alias_l1_address(contract)
    assert aliased.hex() == "1111000000000000000000000000000000001110"  # wraps around 2**160
    assert unalias_l2_address(aliased) == contract
    assert bridged_token_address(b"\x01" * 20) != bridged_token_address(b"\x02" * 20)
