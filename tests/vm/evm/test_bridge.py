"""The bridge on an EVM app chain, through the STF: deposits (ETH, a token that installs the
BridgedToken contract, a forced call), and withdrawals through the L2ToL1 contract and a
bridged token's `withdraw`, each numbered into the withdrawals tree."""

from __future__ import annotations

from typing import Any

from eth_abi import decode, encode

from rollup.crypto import keccak
from rollup.deposits import L2_TO_L1_ADDRESS, Deposit, bridged_token_address, deposit_from_event
from rollup.types import Address
from rollup.withdrawals import tree_proof, verify_tree_proof
from vm.bridge import (
    apply_deposits,
    initiate_withdrawal_calldata,
    record_withdrawals,
    withdrawal_at,
    withdrawal_count,
    withdrawals_root_of,
)
from vm.contracts.l2_to_l1 import L2_TO_L1_RUNTIME
from vm.state import code_key, get_balance

from .conftest import ALICE, BOB, CHAIN_ID, Chain, genesis

L1_TOKEN = Address(b"\x7b" * 20)
L1_USER = Address(b"\x43" * 20)


def bridged_chain() -> Chain:
    data = genesis({ALICE: 10**21, BOB: 10**21})
    data[code_key(L2_TO_L1_ADDRESS)] = L2_TO_L1_RUNTIME  # what an EVM chain's genesis does
    return Chain(data)


def deposit(
    nonce: int,
    to: bytes,
    mint: int = 0,
    value: int = 0,
    token: bytes = bytes(20),
    amount: int = 0,
    data: bytes = b"",
    sender: bytes = L1_USER,
) -> Deposit:
    opaque = (
        to
        + mint.to_bytes(32, "big")
        + value.to_bytes(32, "big")
        + (300_000).to_bytes(8, "big")
        + token
        + amount.to_bytes(32, "big")
        + bytes([8])
        + b"WBTC".ljust(32, b"\0")
        + data
    )
    return deposit_from_event(CHAIN_ID, nonce, sender, opaque, keccak(bytes([nonce])), 0, 1)


def call(
    chain: Chain, to: bytes, signature: str, types: list[str], args: list[Any], out: str
) -> Any:
    data = keccak(signature.encode())[:4] + encode(types, args)
    result = chain.call(Address(to), data)
    assert result.success, result.output
    return decode([out], result.output)[0]


def test_deposits_credit_eth_and_install_the_bridged_token() -> None:
    chain = bridged_chain()
    receipts = apply_deposits(
        chain.state,
        chain.env,
        chain.vm,
        [
            deposit(0, BOB, mint=5, value=5),
            deposit(1, BOB, token=L1_TOKEN, amount=700),
        ],
    )
    assert [r.status for r in receipts] == [1, 1]
    token = bridged_token_address(L1_TOKEN)
    assert call(chain, token, "balanceOf(address)", ["address"], [BOB], "uint256") == 700
    assert call(chain, token, "totalSupply()", [], [], "uint256") == 700
    assert call(chain, token, "decimals()", [], [], "uint8") == 8
    assert call(chain, token, "symbol()", [], [], "string") == "WBTC"
    assert call(chain, token, "name()", [], [], "string") == "Bridged WBTC"
    assert receipts[1].logs and receipts[1].logs[0].address == token  # Transfer(0, BOB, 700)
    assert get_balance(chain.state, BOB) == 10**21 + 5


def test_withdrawals_through_l2_to_l1_and_a_bridged_token() -> None:
    chain = bridged_chain()
    apply_deposits(chain.state, chain.env, chain.vm, [deposit(0, BOB, token=L1_TOKEN, amount=90)])
    target = Address(b"\x66" * 20)
    eth = chain.send(
        BOB,
        L2_TO_L1_ADDRESS,
        initiate_withdrawal_calldata(target, 21_000, b""),
        value=10**18,
        gas=200_000,
    )
    assert eth.status == 1
    token = bridged_token_address(L1_TOKEN)
    burn = keccak(b"withdraw(address,uint256)")[:4] + encode(["address", "uint256"], [target, 40])
    assert chain.send(BOB, token, burn, gas=200_000).status == 1
    assert withdrawal_count(chain.state) == 2
    first, second = (withdrawal_at(chain.state, CHAIN_ID, n) for n in (0, 1))
    assert first is not None and second is not None
    assert (first.sender, first.target, first.value, first.l1_token) == (
        BOB,
        target,
        10**18,
        bytes(20),
    )
    assert (second.sender, second.l1_token, second.token_amount, second.value) == (
        BOB,
        L1_TOKEN,
        40,
        0,
    )
    assert get_balance(chain.state, L2_TO_L1_ADDRESS) == 0  # burned
    assert call(chain, token, "balanceOf(address)", ["address"], [BOB], "uint256") == 50
    root = withdrawals_root_of(chain.state)
    hashes = [first.hash, second.hash]
    assert verify_tree_proof(root, 2, second.hash, 1, tree_proof(hashes, 1))


def test_a_contract_cannot_fake_a_token_withdrawal() -> None:
    """Anyone may call L2ToL1.initiateTokenWithdrawal, but only the canonical token passes."""
    chain = bridged_chain()
    data = keccak(b"initiateTokenWithdrawal(address,address,uint256)")[:4] + encode(
        ["address", "address", "uint256"], [ALICE, ALICE, 10**6]
    )
    receipt = chain.send(ALICE, L2_TO_L1_ADDRESS, data, gas=200_000)
    assert receipt.status == 0 and withdrawal_count(chain.state) == 0


def test_a_forced_call_is_a_deposit_with_calldata() -> None:
    chain = bridged_chain()
    # a deposit from the L1 calls L2ToL1 itself: the depositor withdraws straight back
    data = initiate_withdrawal_calldata(L1_USER, 0, b"")
    (receipt,) = apply_deposits(
        chain.state, chain.env, chain.vm, [deposit(0, L2_TO_L1_ADDRESS, mint=9, value=9, data=data)]
    )
    assert receipt.status == 1
    w = withdrawal_at(chain.state, CHAIN_ID, 0)
    assert w is not None and (w.sender, w.value) == (L1_USER, 9)
    assert record_withdrawals  # the STF recorded it from the L2ToL1 log of the deposit's call
