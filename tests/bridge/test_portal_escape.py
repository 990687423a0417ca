"""The escape hatch and bus settlement on a real EVM (Anvil), with real binary-trie proofs: a
vm.commitment.StateTree holds the accounts and bridged-token balances, its root goes into the
output root the batcher commits, and once the chain has committed nothing for its escape window
an account exits exactly once with its ETH and tokens (an aliased account at its L1 contract);
settle moves exactly the growth of a bus counter, once."""

from __future__ import annotations

import pytest

from bridge.l1 import L1Rejected
from bridge.portal import OutputRootProof, TokenClaim
from rollup.crypto import keccak
from rollup.deposits import alias_l1_address, bridged_token_address
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.types import ZERO_ADDRESS, Address
from rollup.withdrawals import EMPTY_WITHDRAWALS_ROOT, Withdrawal
from tests.bridge.conftest import DELAY, WINDOW, Bridge, Tree
from vm.commitment import StateTree
from vm.contracts.bridged_token import balance_slot
from vm.state import account_key, storage_key

pytestmark = pytest.mark.e2e

ALICE_KEY = DEV_KEYS[2]
ETHER = 10**18
BUS_ESCROW = bytes.fromhex("00000000000000000000000000000000000f0002")


def _account(nonce: int, balance: int) -> bytes:
    return nonce.to_bytes(8, "big") + _word(balance)


def _word(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


class AppState:
    """An app chain's state as its node commits it (vm/state.py keys, vm/commitment.py trie)."""

    def __init__(self, items: dict[bytes, bytes]) -> None:
        noise = {account_key(keccak(b"%d" % i)[12:]): _account(i, i + 1) for i in range(40)}
        self.items = {**noise, **items}
        self.tree = StateTree(self.items.items())
        self.output = OutputRootProof(self.tree.root, EMPTY_WITHDRAWALS_ROOT, keccak(b"head"))

    def prove(self, key: bytes) -> tuple[bytes, list[bytes]]:
        proof = self.tree.prove(key)
        assert proof.value is not None
        return proof.value, list(proof.siblings)

    def claim(self, l1_token: bytes, owner: bytes) -> TokenClaim:
        value, siblings = self.prove(
            storage_key(bridged_token_address(l1_token), balance_slot(owner))
        )
        return TokenClaim(l1_token, value, tuple(siblings))


def test_an_account_escapes_once_with_its_eth_and_tokens(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    token = bridge.deploy("TestToken", "Test", "TT", 6)
    bridge.send("TestToken", token, "mint", DEV_ADDRESSES[2], 10_000)
    alice.approve_token(token, 10_000)
    alice.deposit_erc20(chain, token, DEV_ADDRESSES[2], 10_000)
    alice.deposit_eth(chain, DEV_ADDRESSES[2], 20 * ETHER)
    depositor = bridge.deploy("Depositor")
    bridge.send(
        "Depositor",
        depositor,
        "deposit",
        bridge.portal.address,
        chain,
        depositor,
        21_000,
        key=ALICE_KEY,
        value=ETHER,
    )

    user = keccak(b"escaping user")[12:]  # an L2 account whose key is elsewhere
    aliased = alias_l1_address(depositor)
    state = AppState(
        {
            account_key(user): _account(7, 3 * ETHER),
            storage_key(bridged_token_address(token), balance_slot(user)): _word(2_500),
            account_key(aliased): _account(0, ETHER // 2),
            account_key(BUS_ESCROW): _account(0, 4 * ETHER),
        }
    )
    bridge.commit(chain, state.output)
    value, siblings = state.prove(account_key(user))

    with pytest.raises(L1Rejected, match=rf"EscapeNotOpen\({chain}, "):
        bridge.portal.escape(chain, state.output, user, value, siblings)
    bridge.warp(WINDOW + 1)

    anyone = bridge.portal_as(DEV_KEYS[5])  # the hatch needs no key of the user's
    anyone.escape(chain, state.output, user, value, siblings, [state.claim(token, user)])
    assert bridge.owner.balance(user) == 3 * ETHER
    assert bridge.view("TestToken", token, "balanceOf", user) == 2_500
    assert bridge.portal.exit_mode(chain) is not None
    assert bridge.portal.has_escaped(chain, user) and bridge.portal.has_escaped(chain, user, token)
    assert bridge.portal.eth_balance(chain) == 21 * ETHER - 3 * ETHER
    assert bridge.portal.token_balance(chain, token) == 7_500

    with pytest.raises(L1Rejected, match="AlreadyEscaped"):
        anyone.escape(chain, state.output, user, value, siblings)
    with pytest.raises(L1Rejected, match="AlreadyEscaped"):
        anyone.escape(chain, state.output, user, tokens=[state.claim(token, user)])

    # a contract's alias is paid at the contract
    before = bridge.owner.balance(depositor)
    value, siblings = state.prove(account_key(aliased))
    anyone.escape(chain, state.output, aliased, value, siblings)
    assert bridge.owner.balance(depositor) == before + ETHER // 2
    assert bridge.owner.balance(aliased) == 0

    # what may not exit: the bus escrow, a value the root does not hold, an empty claim
    value, siblings = state.prove(account_key(BUS_ESCROW))
    with pytest.raises(L1Rejected, match="SystemAccount"):
        anyone.escape(chain, state.output, BUS_ESCROW, value, siblings)
    other = keccak(b"%d" % 3)[12:]
    value, siblings = state.prove(account_key(other))
    with pytest.raises(L1Rejected, match="BadStateProof"):
        anyone.escape(chain, state.output, other, _account(3, 100 * ETHER), siblings)
    with pytest.raises(L1Rejected, match="NothingToClaim"):
        anyone.escape(chain, state.output, other)
    anyone.escape(chain, state.output, other, value, siblings)
    assert bridge.owner.balance(other) == 4


def test_the_exit_root_is_fixed_by_the_first_escape(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    bridge.portal_as(ALICE_KEY).deposit_eth(chain, DEV_ADDRESSES[2], 10 * ETHER)
    user = keccak(b"late user")[12:]
    old = AppState({account_key(user): _account(0, ETHER)})
    bridge.commit(chain, old.output)
    bridge.warp(WINDOW + 1)
    value, siblings = old.prove(account_key(keccak(b"1")[12:]))
    bridge.portal.escape(chain, old.output, keccak(b"1")[12:], value, siblings)

    # the sequencer comes back and commits a newer state: it counts for nothing now
    new = AppState({account_key(user): _account(0, 5 * ETHER)})
    bridge.commit(chain, new.output)
    value, siblings = new.prove(account_key(user))
    with pytest.raises(L1Rejected, match="BadOutputRootProof"):
        bridge.portal.escape(chain, new.output, user, value, siblings)
    with pytest.raises(L1Rejected, match="ChainInExitMode"):
        bridge.portal_as(ALICE_KEY).deposit_eth(chain, DEV_ADDRESSES[2], 1)
    # nor does a withdrawal proven against a batch committed after the exit root
    w = Withdrawal(chain, 0, Address(user), Address(user), ETHER, ZERO_ADDRESS, 0, 0, b"")
    tree = Tree([w])
    batch = bridge.commit(chain, tree.output())  # the inbox takes it; the Portal ignores it
    with pytest.raises(L1Rejected, match=rf"ChainInExitMode\({chain}, 0\)"):
        bridge.portal.prove_withdrawal(w, batch.index, tree.output(), 1, tree.siblings(0))
    value, siblings = old.prove(account_key(user))
    bridge.portal.escape(chain, old.output, user, value, siblings)
    assert bridge.owner.balance(user) == ETHER


def test_a_chain_that_never_committed_has_no_exit_root(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    bridge.warp(WINDOW + 1)
    with pytest.raises(L1Rejected, match=rf"NoOutput\({chain}\)"):
        bridge.portal.escape(chain, AppState({}).output, keccak(b"x")[12:], _account(0, 1), [])


def test_settle_moves_the_growth_of_the_bus_counter_once(bridge: Bridge) -> None:
    src, dst = bridge.new_chain(), bridge.new_chain()
    bridge.portal_as(ALICE_KEY).deposit_eth(src, DEV_ADDRESSES[2], 10 * ETHER)
    counter_key = b"\x0c" + dst.to_bytes(8, "big")
    first = AppState({counter_key: _word(3 * ETHER)})
    batch = bridge.commit(src, first.output)
    value, siblings = first.prove(counter_key)
    with pytest.raises(L1Rejected, match=rf"NotMatured\({src}, {batch.index}, "):
        bridge.portal.settle(src, dst, batch.index, first.output, value, siblings)
    bridge.warp(DELAY)

    bridge.portal.settle(src, dst, batch.index, first.output, value, siblings)
    assert bridge.portal.eth_balance(src) == 7 * ETHER
    assert bridge.portal.eth_balance(dst) == 3 * ETHER
    assert bridge.portal.settled(src, dst) == 3 * ETHER
    with pytest.raises(L1Rejected, match="NothingToSettle"):
        bridge.portal.settle(src, dst, batch.index, first.output, value, siblings)
    with pytest.raises(L1Rejected, match="BadStateProof"):
        bridge.portal.settle(src, dst, batch.index, first.output, _word(9 * ETHER), siblings)
    with pytest.raises(L1Rejected, match="SameChain"):
        bridge.portal.settle(src, src, batch.index, first.output, value, siblings)

    later = AppState({counter_key: _word(5 * ETHER)})
    batch = bridge.commit(src, later.output)
    bridge.warp(DELAY)
    value, siblings = later.prove(counter_key)
    bridge.portal.settle(src, dst, batch.index, later.output, value, siblings)
    assert bridge.portal.eth_balance(src) == 5 * ETHER
    assert bridge.portal.eth_balance(dst) == 5 * ETHER
    assert bridge.portal.settled(src, dst) == 5 * ETHER
