"""Deposits and the escape hatch on a real EVM (Anvil), with real binary-trie proofs: while a
chain's hatch is open it takes no deposits (a new commitment closes it again), and every
deposit its exit root did not execute (nonce at or past the state's next deposit nonce, key
0x0d, proven present or absent) is paid back once to its L1 depositor, from its own chain's
balance only."""

from __future__ import annotations

import pytest

from bridge.l1 import L1Rejected
from bridge.portal import DepositRecord, KeyProof, OutputRootProof
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.rlp import encode_int
from rollup.types import ZERO_ADDRESS
from rollup.withdrawals import EMPTY_WITHDRAWALS_ROOT
from tests.bridge.conftest import DELAY, WINDOW, Bridge
from vm.commitment import StateTree
from vm.state import account_key

pytestmark = pytest.mark.e2e

ALICE, ALICE_KEY = DEV_ADDRESSES[2], DEV_KEYS[2]
BOB, BOB_KEY = DEV_ADDRESSES[3], DEV_KEYS[3]
ANYONE_KEY = DEV_KEYS[5]
ETHER = 10**18
NEXT_DEPOSIT = b"\x0d"  # vm/bridge.py: the next deposit nonce to execute


class AppState:
    """An app chain's state trie (vm/commitment.py) and its output root."""

    def __init__(self, items: dict[bytes, bytes], noise: int = 40) -> None:
        filler = {account_key(keccak(b"%d" % i)[12:]): b"\x01" for i in range(noise)}
        self.tree = StateTree({**filler, **items}.items())
        self.output = OutputRootProof(self.tree.root, EMPTY_WITHDRAWALS_ROOT, keccak(b"head"))

    def next_nonce(self) -> KeyProof:
        """The proof of key 0x0d that reclaimDeposit takes (its absence when not set)."""
        proof = self.tree.prove(NEXT_DEPOSIT)
        if proof.value is not None:
            return KeyProof(proof.value, proof.siblings)
        return KeyProof(b"", proof.siblings, proof.other_key_hash or bytes(32), proof.other_value)


def executed(count: int) -> AppState:
    """A state that executed deposits 0..count-1."""
    return AppState({NEXT_DEPOSIT: encode_int(count)})


def eth_record(sender: bytes, amount: int) -> DepositRecord:
    return DepositRecord(sender, amount, ZERO_ADDRESS, 0)


def _token(bridge: Bridge, holder_key: str, holder: bytes, amount: int) -> bytes:
    token = bridge.deploy("TestToken", "Test", "TT", 6)
    bridge.send("TestToken", token, "mint", holder, amount)
    bridge.portal_as(holder_key).approve_token(token, amount)
    return token


def test_deposits_are_refused_while_the_hatch_is_open(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    token = _token(bridge, ALICE_KEY, ALICE, 1_000)
    bridge.warp(WINDOW + 1)  # no output yet: nothing to escape with, so no hatch
    alice.deposit_eth(chain, BOB, ETHER)
    assert not bridge.portal.escape_hatch_open(chain)

    bridge.commit(chain, executed(1).output)
    bridge.warp(WINDOW - 10)
    alice.deposit_eth(chain, BOB, 1)  # the window is not over yet (the hatch opens after it)
    bridge.warp(12)
    assert bridge.portal.escape_hatch_open(chain)
    with pytest.raises(L1Rejected, match=rf"EscapeHatchOpen\({chain}, "):
        alice.deposit_eth(chain, BOB, ETHER)
    with pytest.raises(L1Rejected, match=rf"EscapeHatchOpen\({chain}, "):
        alice.deposit_erc20(chain, token, BOB, 1_000)
    assert bridge.portal.chain(chain).deposit_count == 2

    bridge.commit(chain, executed(2).output)  # the sequencer is back before anyone escaped
    assert not bridge.portal.escape_hatch_open(chain)
    alice.deposit_eth(chain, BOB, ETHER)
    alice.deposit_erc20(chain, token, BOB, 1_000)
    assert bridge.portal.chain(chain).deposit_count == 4


def test_exit_mode_keeps_deposits_out_even_after_a_new_commit(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    alice.deposit_eth(chain, BOB, ETHER)
    state = executed(0)
    bridge.commit(chain, state.output)
    bridge.warp(WINDOW + 1)
    bridge.portal.reclaim_deposit(
        chain, 0, state.output, state.next_nonce(), eth_record(ALICE, ETHER)
    )
    bridge.commit(chain, executed(1).output)
    assert not bridge.portal.escape_hatch_open(chain)
    with pytest.raises(L1Rejected, match=rf"ChainInExitMode\({chain}, 0\)"):
        alice.deposit_eth(chain, BOB, 1)


def test_an_unexecuted_eth_deposit_is_paid_back_once(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    alice.deposit_eth(chain, BOB, 2 * ETHER)  # nonce 0: the exit root executes it
    state = executed(1)
    bridge.commit(chain, state.output)
    alice.deposit_eth(chain, BOB, 3 * ETHER)  # nonce 1: the sequencer never includes it
    bridge.warp(WINDOW + 1)
    anyone = bridge.portal_as(ANYONE_KEY)  # anyone may reclaim; it pays the depositor
    proof = state.next_nonce()

    with pytest.raises(L1Rejected, match=rf"DepositExecuted\({chain}, 0, 1\)"):
        anyone.reclaim_deposit(chain, 0, state.output, proof, eth_record(ALICE, 2 * ETHER))
    with pytest.raises(L1Rejected, match=rf"BadDepositRecord\({chain}, 1\)"):
        anyone.reclaim_deposit(chain, 1, state.output, proof, eth_record(ALICE, 3 * ETHER + 1))
    with pytest.raises(L1Rejected, match=rf"BadDepositRecord\({chain}, 1\)"):
        anyone.reclaim_deposit(chain, 1, state.output, proof, eth_record(BOB, 3 * ETHER))
    forged = KeyProof(encode_int(2), proof.siblings)  # "nonce 1 was executed too"
    with pytest.raises(L1Rejected, match="BadStateProof"):
        anyone.reclaim_deposit(chain, 1, state.output, forged, eth_record(ALICE, 3 * ETHER))
    # "the key is absent", its own leaf passed off as another key's: deposit 0 paid twice
    absent = KeyProof(b"", proof.siblings, keccak(NEXT_DEPOSIT), proof.value)
    with pytest.raises(L1Rejected, match="BadStateProof"):
        anyone.reclaim_deposit(chain, 0, state.output, absent, eth_record(ALICE, 2 * ETHER))
    with pytest.raises(L1Rejected, match="BadOutputRootProof"):
        anyone.reclaim_deposit(chain, 1, executed(0).output, proof, eth_record(ALICE, 3 * ETHER))
    with pytest.raises(L1Rejected, match=rf"UnknownDeposit\({chain}, 2, 2\)"):
        anyone.reclaim_deposit(chain, 2, state.output, proof, eth_record(ALICE, 3 * ETHER))

    before, held = bridge.owner.balance(ALICE), bridge.portal.eth_balance(chain)
    record = bridge.portal.deposit_record(chain, 1)
    assert record == eth_record(ALICE, 3 * ETHER)
    assert bridge.portal.deposit_hash(chain, 1) == record.hash
    anyone.reclaim_deposit(chain, 1, state.output, proof, record)
    assert bridge.owner.balance(ALICE) == before + 3 * ETHER
    assert bridge.portal.eth_balance(chain) == held - 3 * ETHER == 2 * ETHER
    assert bridge.portal.exit_mode(chain) == (state.output.root, 0)
    assert bridge.portal.is_reclaimed(chain, 1) and not bridge.portal.is_reclaimed(chain, 0)

    with pytest.raises(L1Rejected, match=rf"AlreadyReclaimed\({chain}, 1\)"):
        anyone.reclaim_deposit(chain, 1, state.output, proof, record)
    assert bridge.owner.balance(ALICE) == before + 3 * ETHER


def test_an_unexecuted_erc20_deposit_is_paid_back_in_the_l1_token(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    token = _token(bridge, ALICE_KEY, ALICE, 10_000)
    alice = bridge.portal_as(ALICE_KEY)
    alice.deposit_erc20(chain, token, BOB, 6_000)
    state = executed(1)
    bridge.commit(chain, state.output)
    alice.deposit_erc20(chain, token, BOB, 4_000)
    bridge.warp(WINDOW + 1)

    record = bridge.portal.deposit_record(chain, 1)
    assert record == DepositRecord(ALICE, 0, token, 4_000)
    with pytest.raises(L1Rejected, match=rf"BadDepositRecord\({chain}, 1\)"):
        alice.reclaim_deposit(
            chain, 1, state.output, state.next_nonce(), DepositRecord(ALICE, 0, token, 6_000)
        )
    bridge.portal.reclaim_deposit(chain, 1, state.output, state.next_nonce(), record)
    assert bridge.view("TestToken", token, "balanceOf", ALICE) == 4_000
    assert bridge.portal.token_balance(chain, token) == 6_000
    with pytest.raises(L1Rejected, match=rf"AlreadyReclaimed\({chain}, 1\)"):
        bridge.portal.reclaim_deposit(chain, 1, state.output, state.next_nonce(), record)
    assert bridge.view("TestToken", token, "balanceOf", ALICE) == 4_000


def test_a_state_without_executed_deposits_proves_the_key_absent(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    bridge.portal_as(ALICE_KEY).deposit_eth(chain, BOB, ETHER)  # the chain never runs it
    state = AppState({})
    absent = state.next_nonce()
    assert absent.value == b""
    bridge.commit(chain, state.output)
    bridge.warp(WINDOW + 1)

    # an absence proof taken in another state, or a leaf that is not on the key's path
    other = AppState({}, noise=7).next_nonce()
    with pytest.raises(L1Rejected, match="BadStateProof"):
        bridge.portal.reclaim_deposit(chain, 0, state.output, other, eth_record(ALICE, ETHER))
    assert absent.other_key_hash != bytes(32)  # the walk ends on another key's leaf
    off_path = keccak(b"\xff" + NEXT_DEPOSIT)  # a leaf hash that does not share the path
    wrong = KeyProof(b"", absent.siblings, off_path, absent.other_value)
    with pytest.raises(L1Rejected, match="BadStateProof"):
        bridge.portal.reclaim_deposit(chain, 0, state.output, wrong, eth_record(ALICE, ETHER))

    before = bridge.owner.balance(ALICE)
    bridge.portal.reclaim_deposit(chain, 0, state.output, absent, eth_record(ALICE, ETHER))
    assert bridge.owner.balance(ALICE) == before + ETHER


@pytest.mark.parametrize("noise", [0, 1, 2, 3, 5, 8])
def test_absence_proofs_of_every_shape_verify(bridge: Bridge, noise: int) -> None:
    """Small tries end the key's walk on an empty subtree or on another key's leaf, at
    various depths (an empty state: no siblings at all)."""
    chain = bridge.new_chain()
    bridge.portal_as(ALICE_KEY).deposit_eth(chain, BOB, 7)
    state = AppState({}, noise=noise)
    bridge.commit(chain, state.output)
    bridge.warp(WINDOW + 1)
    before = bridge.owner.balance(ALICE)
    bridge.portal.reclaim_deposit(chain, 0, state.output, state.next_nonce(), eth_record(ALICE, 7))
    assert bridge.owner.balance(ALICE) == before + 7


def test_a_contract_depositor_is_paid_back_at_the_contract(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    depositor = bridge.deploy("Depositor")
    portal = bridge.portal.address
    bridge.send("Depositor", depositor, "deposit", portal, chain, BOB, 21_000, value=ETHER)
    state = executed(0)
    bridge.commit(chain, state.output)
    bridge.warp(WINDOW + 1)
    record = bridge.portal.deposit_record(chain, 0)
    assert record == eth_record(depositor, ETHER)  # the L1 caller, not its alias
    bridge.portal.reclaim_deposit(chain, 0, state.output, state.next_nonce(), record)
    assert bridge.owner.balance(depositor) == ETHER


def test_a_reclaim_never_pays_from_another_chains_balance(bridge: Bridge) -> None:
    rich, poor = bridge.new_chain(), bridge.new_chain()
    bridge.portal_as(BOB_KEY).deposit_eth(rich, BOB, 5 * ETHER)
    bridge.portal_as(ALICE_KEY).deposit_eth(poor, BOB, 3 * ETHER)
    # poor's state claims bus value it sent to rich: settling it empties poor's balance
    counter_key = b"\x0c" + rich.to_bytes(8, "big")
    state = AppState({counter_key: encode_int(3 * ETHER)})
    batch = bridge.commit(poor, state.output)
    bridge.warp(DELAY)
    value = state.tree.prove(counter_key)
    bridge.portal.settle(
        poor, rich, batch.index, state.output, encode_int(3 * ETHER), list(value.siblings)
    )
    assert bridge.portal.eth_balance(poor) == 0
    bridge.warp(WINDOW + 1)

    anyone = bridge.portal_as(ANYONE_KEY)
    proof = state.next_nonce()
    with pytest.raises(L1Rejected, match=rf"BadDepositRecord\({poor}, 0\)"):
        anyone.reclaim_deposit(poor, 0, state.output, proof, eth_record(BOB, 5 * ETHER))
    with pytest.raises(L1Rejected, match=rf"InsufficientChainBalance\({poor}, "):
        anyone.reclaim_deposit(poor, 0, state.output, proof, eth_record(ALICE, 3 * ETHER))
    assert bridge.portal.eth_balance(rich) == 8 * ETHER
    assert not bridge.portal.is_reclaimed(poor, 0)
    # and rich's hatch is not open: its own deposits cannot be reclaimed through poor's
    with pytest.raises(L1Rejected, match=rf"EscapeNotOpen\({rich}, |NoOutput\({rich}\)"):
        anyone.reclaim_deposit(rich, 0, state.output, proof, eth_record(BOB, 5 * ETHER))
