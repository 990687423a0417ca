"""EIP-3607 (no transactions from accounts with code) and EIP-3860 (initcode size) in the STF,
which the verifier shares: a block that breaks them is invalid, not just refused by the pool."""

from __future__ import annotations

import pytest

from rollup.transactions import MAX_INITCODE_SIZE
from tests.vm.evm.conftest import ALICE, BOB, FUNDS, Chain, genesis
from vm.state import code_key
from vm.stf import InvalidTransaction


def test_a_sender_with_code_is_invalid() -> None:
    data = genesis({ALICE: FUNDS, BOB: FUNDS})
    data[code_key(ALICE)] = b"\x60\x00"
    chain = Chain(data)
    with pytest.raises(InvalidTransaction, match="sender not an eoa"):
        chain.apply(chain.sign(ALICE, BOB, value=1))
    assert chain.apply(chain.sign(BOB, ALICE, value=1)).status == 1


def test_initcode_above_the_limit_is_invalid_and_at_the_limit_runs() -> None:
    chain = Chain()
    too_big = chain.sign(ALICE, None, data=b"\x00" * (MAX_INITCODE_SIZE + 1), gas=5_000_000)
    with pytest.raises(InvalidTransaction, match="max initcode size exceeded"):
        chain.apply(too_big)
    at_limit = chain.sign(ALICE, None, data=b"\x00" * MAX_INITCODE_SIZE, gas=5_000_000)
    assert chain.apply(at_limit).status == 1  # STOPs at once: an empty contract
