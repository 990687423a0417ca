"""Withdrawals through the Portal on a real EVM (Anvil), against trees built by
rollup/withdrawals.py and output roots committed to BatchInbox by the chain's batcher: prove and
finalize pay ETH and tokens; early, repeated, tampered, unknown, cross-chain and re-entrant
attempts revert; a re-prove never pushes the clock back; a reverted batch voids its proofs; and
a chain is never paid from another chain's balance."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import decode
from web3 import Web3
from web3.exceptions import ContractLogicError

from bridge.l1 import L1Rejected
from bridge.portal import OutputRootProof
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.types import ZERO_ADDRESS, Address
from rollup.withdrawals import Withdrawal
from tests.bridge.conftest import DELAY, Bridge, Tree

pytestmark = pytest.mark.e2e

ALICE, BOB, CAROL = DEV_ADDRESSES[2], DEV_ADDRESSES[3], DEV_ADDRESSES[4]
ALICE_KEY, BOB_KEY = DEV_KEYS[2], DEV_KEYS[3]
ETHER = 10**18


def _withdrawal(
    chain: int,
    nonce: int,
    target: bytes,
    value: int,
    *,
    token: bytes = ZERO_ADDRESS,
    amount: int = 0,
    gas: int = 0,
    data: bytes = b"",
) -> Withdrawal:
    return Withdrawal(
        chain, nonce, ALICE, Address(target), value, Address(token), amount, gas, data
    )


def _funded_chain(bridge: Bridge, ether: int = 10) -> int:
    chain = bridge.new_chain()
    bridge.portal_as(ALICE_KEY).deposit_eth(chain, ALICE, ether * ETHER)
    return chain


def _fresh_address(seed: bytes) -> bytes:
    return keccak(seed)[12:]


def test_prove_and_finalize_pay_the_target(bridge: Bridge) -> None:
    chain = _funded_chain(bridge)
    token = bridge.deploy("TestToken", "Test", "TT", 6)
    bridge.send("TestToken", token, "mint", ALICE, 1_000)
    alice = bridge.portal_as(ALICE_KEY)
    alice.approve_token(token, 1_000)
    alice.deposit_erc20(chain, token, ALICE, 1_000)

    targets = [_fresh_address(b"target-%d" % i) for i in range(4)]
    tree = Tree(
        [
            _withdrawal(chain, 0, targets[0], 1 * ETHER),
            _withdrawal(chain, 1, targets[1], 2 * ETHER, gas=50_000, data=b"\x01"),
            _withdrawal(chain, 2, targets[2], 0, token=token, amount=400),
            _withdrawal(chain, 3, targets[3], 3, token=token, amount=100),
        ]
    )
    commit = bridge.commit(chain, tree.output())
    prover = bridge.portal_as(BOB_KEY)  # anyone may prove and finalize
    for w in tree.withdrawals:
        prover.prove_withdrawal(w, commit.index, tree.output(), tree.count, tree.siblings(w.nonce))
        assert bridge.portal.proven(w.hash) == (tree.output().root, commit.index)
    with pytest.raises(L1Rejected, match=rf"NotMatured\({chain}, {commit.index}, "):
        prover.finalize_withdrawal(tree.withdrawals[0])
    bridge.warp(DELAY)

    for w in tree.withdrawals:
        done = prover.finalize_withdrawal(w)
        assert done.success and bridge.portal.is_finalized(w.hash)
        assert bridge.owner.balance(w.target) == w.value
        assert bridge.view("TestToken", token, "balanceOf", w.target) == w.token_amount
    assert bridge.portal.eth_balance(chain) == 10 * ETHER - 3 * ETHER - 3
    assert bridge.portal.token_balance(chain, token) == 500
    with pytest.raises(L1Rejected, match="AlreadyFinalized"):
        prover.finalize_withdrawal(tree.withdrawals[0])
    with pytest.raises(L1Rejected, match="AlreadyFinalized"):
        prover.prove_withdrawal(
            tree.withdrawals[0], commit.index, tree.output(), tree.count, tree.siblings(0)
        )
    assert bridge.portal.withdrawal_hash(tree.withdrawals[1]) == tree.withdrawals[1].hash


def test_tampered_unknown_and_foreign_proofs_revert(bridge: Bridge) -> None:
    chain, other = _funded_chain(bridge), _funded_chain(bridge)
    tree = Tree([_withdrawal(chain, i, BOB, i + 1) for i in range(3)])
    output = tree.output()
    commit = bridge.commit(chain, output)
    w, index = tree.withdrawals[1], commit.index
    siblings = tree.siblings(1)
    bad_siblings = list(siblings)
    bad_siblings[5] = keccak(b"not a sibling")

    portal = bridge.portal
    refusals = [
        (
            lambda: portal.prove_withdrawal(w, index, output, tree.count, bad_siblings),
            "BadWithdrawalProof",
        ),
        (
            lambda: portal.prove_withdrawal(
                replace(w, value=10 * ETHER), index, output, tree.count, siblings
            ),
            "BadWithdrawalProof",
        ),
        (
            lambda: portal.prove_withdrawal(
                replace(w, target=ALICE), index, output, tree.count, siblings
            ),
            "BadWithdrawalProof",
        ),
        (
            lambda: portal.prove_withdrawal(w, index, output, tree.count + 1, siblings),
            "BadWithdrawalProof",
        ),  # the count is part of the withdrawals root
        (
            lambda: portal.prove_withdrawal(
                replace(w, nonce=3), index, output, tree.count, siblings
            ),
            "BadWithdrawalProof",
        ),  # nonce >= count
        (
            lambda: portal.prove_withdrawal(
                w, index, replace(output, block_hash=bytes(32)), tree.count, siblings
            ),
            "BadOutputRootProof",
        ),
        (
            lambda: portal.prove_withdrawal(w, index + 1, output, tree.count, siblings),
            f"UnknownOutput\\({chain}, {index + 1}\\)",
        ),
        (
            lambda: portal.prove_withdrawal(
                replace(w, target=portal.address), index, output, tree.count, siblings
            ),
            "UnsafeTarget",
        ),
        (lambda: portal.finalize_withdrawal(w), "NotProven"),
    ]
    for call, reason in refusals:
        with pytest.raises(L1Rejected, match=reason):
            call()

    # a replay against another app's chain: the chain id is in the withdrawal hash, so the
    # same tree committed for `other` proves nothing about `chain`'s withdrawals
    foreign = bridge.commit(other, output)
    replay = replace(w, chain_id=other)
    with pytest.raises(L1Rejected, match="BadWithdrawalProof"):
        portal.prove_withdrawal(replay, foreign.index, output, tree.count, siblings)
    with pytest.raises(L1Rejected, match="NotProven"):
        portal.finalize_withdrawal(replay)
    with pytest.raises(L1Rejected, match="BadOutputRootProof|UnknownOutput"):
        portal.prove_withdrawal(
            w, foreign.index, tree.output(state_root=bytes(32)), tree.count, siblings
        )


def test_a_re_prove_never_pushes_the_clock_back(bridge: Bridge) -> None:
    chain = _funded_chain(bridge)
    target = _fresh_address(b"patient")
    tree = Tree([_withdrawal(chain, 0, target, ETHER)])
    w = tree.withdrawals[0]
    early = bridge.commit(chain, tree.output())
    bridge.warp(DELAY // 2)
    later = bridge.commit(chain, tree.output(block=b"\x33" * 32))  # a later block, same tree

    # a griefer proves against the later batch; the owner moves it to the earlier one
    griefer = bridge.portal_as(BOB_KEY)
    griefer.prove_withdrawal(w, later.index, tree.output(block=b"\x33" * 32), 1, tree.siblings(0))
    with pytest.raises(L1Rejected, match=rf"AlreadyProven\(0x{w.hash.hex()}, {later.index}\)"):
        griefer.prove_withdrawal(
            w, later.index, tree.output(block=b"\x33" * 32), 1, tree.siblings(0)
        )
    bridge.portal.prove_withdrawal(w, early.index, tree.output(), 1, tree.siblings(0))
    with pytest.raises(L1Rejected, match="AlreadyProven"):  # and never back to a later one
        griefer.prove_withdrawal(
            w, later.index, tree.output(block=b"\x33" * 32), 1, tree.siblings(0)
        )
    assert bridge.portal.proven(w.hash) == (tree.output().root, early.index)

    bridge.warp(DELAY - DELAY // 2)  # the early batch's delay has passed, not the later one's
    assert bridge.portal.finalize_withdrawal(w).success
    assert bridge.owner.balance(target) == ETHER


def test_a_reverted_batch_voids_its_proofs(bridge: Bridge) -> None:
    chain = _funded_chain(bridge)
    target = _fresh_address(b"reverted")
    tree = Tree([_withdrawal(chain, 0, target, ETHER)])
    w = tree.withdrawals[0]
    bad = bridge.commit(chain, tree.output(state_root=b"\x66" * 32))
    bridge.portal.prove_withdrawal(
        w, bad.index, tree.output(state_root=b"\x66" * 32), 1, tree.siblings(0)
    )
    bridge.warp(DELAY)
    bridge.inbox.revert_batches(chain, bad.index)
    assert bridge.inbox.output(chain, bad.index) == (bytes(32), 0)
    with pytest.raises(L1Rejected, match=rf"ProofVoid\(0x{w.hash.hex()}, {bad.index}\)"):
        bridge.portal.finalize_withdrawal(w)

    good = bridge.commit(chain, tree.output())  # the honest batch, under the same index
    assert good.index == bad.index
    with pytest.raises(L1Rejected, match="ProofVoid"):
        bridge.portal.finalize_withdrawal(w)
    bridge.portal.prove_withdrawal(w, good.index, tree.output(), 1, tree.siblings(0))
    with pytest.raises(L1Rejected, match="NotMatured"):  # the delay counts from the new commit
        bridge.portal.finalize_withdrawal(w)
    bridge.warp(DELAY)
    assert bridge.portal.finalize_withdrawal(w).success
    assert bridge.owner.balance(target) == ETHER


def test_a_reentrant_target_is_paid_once(bridge: Bridge) -> None:
    chain = _funded_chain(bridge)
    for fail in (False, True):
        target = bridge.deploy("ReentrantTarget", bridge.portal.address)
        tree = Tree([_withdrawal(chain, 0, target, ETHER, gas=200_000, data=b"\x01")])
        w = tree.withdrawals[0]
        finalize = bridge.portal.finalize_calldata(w)
        bridge.send("ReentrantTarget", target, "arm", finalize, fail)
        commit = bridge.commit(chain, tree.output())
        bridge.portal.prove_withdrawal(w, commit.index, tree.output(), 1, tree.siblings(0))
        bridge.warp(DELAY)
        before = bridge.portal.eth_balance(chain)

        done = bridge.portal.finalize_withdrawal(w)
        assert done.success is not fail
        with pytest.raises(L1Rejected, match="AlreadyFinalized"):  # a failed call is final
            bridge.portal.finalize_withdrawal(w)
        if fail:  # the call reverted: nothing paid, the value stays with its chain
            assert bridge.owner.balance(target) == 0
            assert bridge.portal.eth_balance(chain) == before
            continue
        assert bridge.view("ReentrantTarget", target, "calls") == 1
        assert bridge.view("ReentrantTarget", target, "reentered") is False
        error = bridge.view("ReentrantTarget", target, "reentryError")
        assert error == keccak(b"Reentered()")[:4]
        assert bridge.owner.balance(target) == ETHER
        assert bridge.portal.eth_balance(chain) == before - ETHER


def test_finalizing_with_too_little_gas_reverts_instead_of_failing_the_call(
    bridge: Bridge,
) -> None:
    chain = _funded_chain(bridge)
    tree = Tree([_withdrawal(chain, 0, BOB, 1, gas=1_000_000, data=b"\x01")])
    w = tree.withdrawals[0]
    commit = bridge.commit(chain, tree.output())
    bridge.portal.prove_withdrawal(w, commit.index, tree.output(), 1, tree.siblings(0))
    bridge.warp(DELAY)
    call: Any = {
        "to": Web3.to_checksum_address(bridge.portal.address),
        "gas": 300_000,
        "data": bridge.portal.finalize_calldata(w),
    }
    with pytest.raises(ContractLogicError) as caught:
        bridge.owner.w3.eth.call(call)
    data = bytes.fromhex(str(caught.value.data)[2:])
    assert data[:4] == keccak(b"InsufficientGas(uint256,uint256)")[:4]
    _available, needed = decode(["uint256", "uint256"], data[4:])
    assert needed > 1_000_000 * 64 // 63
    assert not bridge.portal.is_finalized(w.hash)


def test_a_chain_is_never_paid_from_another_chains_balance(bridge: Bridge) -> None:
    rich, poor = _funded_chain(bridge, ether=50), _funded_chain(bridge, ether=1)
    tree = Tree([_withdrawal(poor, 0, CAROL, 2 * ETHER)])
    w = tree.withdrawals[0]
    commit = bridge.commit(poor, tree.output())
    bridge.portal.prove_withdrawal(w, commit.index, tree.output(), 1, tree.siblings(0))
    bridge.warp(DELAY)
    held = bridge.owner.balance(bridge.portal.address)
    assert held >= 51 * ETHER  # the Portal could pay, but not from `poor`'s balance
    with pytest.raises(
        L1Rejected,
        match=rf"InsufficientChainBalance\({poor}, "
        rf"0x{'00' * 20}, {2 * ETHER}, {ETHER}\)",
    ):
        bridge.portal.finalize_withdrawal(w)
    assert bridge.portal.eth_balance(rich) == 50 * ETHER
    bridge.portal_as(ALICE_KEY).deposit_eth(poor, ALICE, ETHER)  # now it can
    assert bridge.portal.finalize_withdrawal(w).success


def test_outputs_are_read_back_from_the_inbox(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    assert bridge.inbox.last_commit_time(chain) == 0 and bridge.inbox.batch_count(chain) == 0
    proof = OutputRootProof(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    commit = bridge.commit(chain, proof)
    root, committed_at = bridge.inbox.output(chain, commit.index)
    assert root == proof.root == commit.output_root
    assert committed_at == bridge.inbox.last_commit_time(chain) == bridge.now()
    assert bridge.inbox.output(chain, commit.index + 1) == (bytes(32), 0)
