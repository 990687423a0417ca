"""Deposits re-derived from the L1: a real chain whose node follows a fake L1 (its deposits and
block hashes), its poster posting into LocalDA and an in-memory inbox, and a verifier that
takes each block's deposits from that L1. It agrees with an honest node; it names the deposit
a chain skipped, reordered, repeated, altered, invented or left out past the sequencing
window (censorship: the node's `fault_ignore_deposits`), and the origin a block must not
name; it waits, never diverges, while the L1 cannot answer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from da.batch import Batch
from da.verifier import Verifier
from rollup.crypto import keccak
from rollup.deposits import Deposit
from rollup.types import Address, Hash32
from vm.state import DictReader, get_account

WINDOW = 4  # L1 blocks: l1_world's verifiers' sequencing window
ALICE_TO = Address(b"\xa1" * 20)
BOB_TO = Address(b"\xb0" * 20)


World = Any  # tests/da/conftest.py's L1World


@pytest.fixture
def world(l1_world: World) -> World:
    return l1_world


def _balance(verifier: Verifier, address: bytes) -> int:
    return int(get_account(DictReader(verifier.replayer.world), Address(address))[1])


def _verified(verifier: Verifier) -> Any:
    status = verifier.verify_until_idle()
    assert status.state == "in_sync" and status.waiting is None, status
    return status


def _diverged(world: World) -> tuple[int, str]:
    verifier = world.verifier()
    status = verifier.verify_until_idle()
    verifier.close()
    assert status.state == "diverged", status
    return status.block, status.reason or ""


def _name(d: Deposit) -> str:
    return f"deposit 0x{d.source_hash.hex()} (nonce {d.nonce}, L1 block {d.l1_block})"


# ---- an honest chain ----


def test_deposits_are_re_derived_from_the_l1_and_executed(world: World, grow: Any) -> None:
    grow(world.chain, 2)
    world.post()  # blocks 1-2 at L1 block 1
    first = world.l1.deposit(world.chain_id, ALICE_TO, mint=3 * 10**18)  # L1 block 2
    second = world.l1.deposit(world.chain_id, BOB_TO, mint=10**18)  # L1 block 3
    world.inbox.mine()  # L1 block 4: the origin (one confirmation) reaches both
    number = world.produce()
    block = world.chain.node.block(number)
    assert [d.nonce for d in block.deposits] == [0, 1]
    assert (block.header.l1_origin, block.header.l1_origin_hash) == (3, world.l1.hash(3))
    grow(world.chain, 1)
    world.post()
    verifier = world.verifier()
    status = _verified(verifier)
    assert status.message == f"in sync at block {number + 1}"
    assert verifier.replayer.head == world.chain.node.committed  # every header, rebuilt
    assert _balance(verifier, ALICE_TO) == 3 * 10**18 and _balance(verifier, BOB_TO) == 10**18
    assert (first.l1_block, second.l1_block) == (2, 3)
    verifier.close()


def test_a_verifier_without_the_portal_waits_at_the_first_deposit(world: World, grow: Any) -> None:
    grow(world.chain, 2)
    world.l1.deposit(world.chain_id, ALICE_TO)
    world.inbox.mine()
    number = world.produce()
    world.post()
    verifier = world.verifier(portal=False)
    status = verifier.verify_until_idle()
    assert status.state == "in_sync" and status.verified == number - 1
    assert status.waiting == (
        f"block {number} executes L1 deposits, but this verifier was "
        "given no Portal to read them from (--portal)"
    )
    verifier.close()


def test_an_l1_that_cannot_answer_makes_it_wait(world: World, grow: Any) -> None:
    world.l1.deposit(world.chain_id, ALICE_TO)
    world.inbox.mine()
    number = world.produce()
    world.post()
    verifier = world.verifier()
    world.l1.down = True
    assert "unreachable" in (verifier.verify_until_idle().waiting or "")
    world.l1.down = False
    world.l1.lag = world.l1.height  # an RPC far behind: no block hash is there yet
    status = verifier.verify_until_idle()
    assert status.state == "in_sync" and "is not on the L1 (yet)" in (status.waiting or "")
    world.l1.lag = 0
    assert _verified(verifier).message == f"in sync at block {number}"
    verifier.close()


# ---- censorship: the sequencing window ----


def test_a_node_that_ignores_deposits_is_caught_when_the_window_closes(
    world: World, grow: Any
) -> None:
    builder = world.chain.node.builder  # the block builder decides what a block takes
    builder.config = dataclasses.replace(builder.config, fault_ignore_deposits=True)
    grow(world.chain, 1)
    world.post()  # L1 block 1
    censored = world.l1.deposit(world.chain_id, ALICE_TO)  # L1 block 2: due at 2 + 4 = 6
    due = censored.l1_block + WINDOW
    verifier = world.verifier()
    while world.inbox.l1 + 1 < due:  # a batch a block, each committed before the deadline
        grow(world.chain, 1)
        world.post()
        assert _verified(verifier).verified == world.chain.node.committed.number
    grow(world.chain, 2)
    world.post()  # committed at L1 block 6 = D + W, without the deposit: too late
    last = world.chain.node.committed.number
    assert world.inbox.items[-1].l1_block == due
    status = verifier.verify_until_idle()
    assert status.state == "diverged" and status.block == last
    batch = len(world.inbox.items) - 1
    assert status.message == (
        f"diverged at block {last}: {_name(censored)} due at L1 block {due}; batch {batch} "
        f"(blocks {last - 1}-{last}, L1 block {due}) leaves it out"
    )
    verifier.close()


def test_a_deposit_included_late_but_in_the_window_is_fine(world: World, grow: Any) -> None:
    builder = world.chain.node.builder
    config = builder.config
    builder.config = dataclasses.replace(config, fault_ignore_deposits=True)
    deposit = world.l1.deposit(world.chain_id, ALICE_TO)
    grow(world.chain, 1)
    world.post()
    world.inbox.mine(WINDOW - 2)  # the next commitment lands at D + W, the last in time
    builder.config = config  # the node catches up just in time
    number = world.produce()
    world.post()
    assert world.inbox.items[-1].l1_block == deposit.l1_block + WINDOW
    verifier = world.verifier()
    assert _verified(verifier).message == f"in sync at block {number}"
    assert _balance(verifier, ALICE_TO) == 10**18
    verifier.close()


# ---- what a block may take from the L1 ----


def _with_deposits(world: World, grow: Any, count: int = 2) -> tuple[list[Deposit], int]:
    """Block 1 a transfer on L1 origin 1; block 2 `count` deposits; nothing posted."""
    world.inbox.mine(2)
    grow(world.chain, 1)
    deposits = [world.l1.deposit(world.chain_id, ALICE_TO) for _ in range(count)]
    world.inbox.mine()
    number = world.produce()
    assert len(world.chain.node.block(number).deposits) == count
    return deposits, number


def _block(index: int, **changes: Any) -> Callable[[Batch], Batch]:
    def alter(batch: Batch) -> Batch:
        blocks = list(batch.blocks)
        blocks[index] = dataclasses.replace(blocks[index], **changes)
        return dataclasses.replace(batch, blocks=tuple(blocks))

    return alter


def test_reordered_deposits_are_named(world: World, grow: Any) -> None:
    (d0, d1), number = _with_deposits(world, grow)
    world.commit(1, number, _block(1, deposits=(d1.hash, d0.hash)))
    assert _diverged(world) == (
        number,
        f"{_name(d1)} comes before {_name(d0)} (the deposits are reordered)",
    )


def test_a_skipped_deposit_is_named(world: World, grow: Any) -> None:
    (d0, d1), number = _with_deposits(world, grow)
    world.commit(1, number, _block(1, deposits=(d1.hash,)))
    assert _diverged(world) == (number, f"{_name(d0)} is skipped: the block executes nonce 1")


def test_a_repeated_deposit_is_named(world: World, grow: Any) -> None:
    (d0, _d1), number = _with_deposits(world, grow)
    world.commit(1, number, _block(1, deposits=(d0.hash, d0.hash)))
    assert _diverged(world) == (number, f"{_name(d0)} is executed again (a duplicate)")


def test_an_altered_deposit_is_named(world: World, grow: Any) -> None:
    (d0,), number = _with_deposits(world, grow, 1)
    forged = Hash32(keccak(b"a deposit the L1 never saw"))
    world.commit(1, number, _block(1, deposits=(forged,)))
    assert _diverged(world) == (
        number,
        f"its deposit nonce 0 is transaction 0x{forged.hex()}, "
        f"not the L1's {_name(d0)}, transaction 0x{d0.hash.hex()} "
        "(altered)",
    )


def test_more_deposits_than_the_l1_has_at_the_origin_are_named(world: World, grow: Any) -> None:
    (d0, d1), number = _with_deposits(world, grow)
    extra = Hash32(keccak(b"a third"))
    world.commit(1, number, _block(1, deposits=(d0.hash, d1.hash, extra)))
    origin = world.chain.node.block(number).header.l1_origin
    assert _diverged(world) == (
        number,
        f"it executes deposit nonce 2 (transaction "
        f"0x{extra.hex()}), which the L1 does not have at or below the "
        f"block's L1 origin {origin}",
    )


def test_a_deposit_from_after_the_origin_is_named(world: World, grow: Any) -> None:
    (d0,), number = _with_deposits(world, grow, 1)
    early = d0.l1_block - 1
    world.commit(1, number, _block(1, l1_origin=early, l1_origin_hash=world.l1.hash(early)))
    assert _diverged(world) == (number, f"{_name(d0)} is after the block's L1 origin {early}")


def test_an_origin_that_is_not_the_l1s_block_is_caught(world: World, grow: Any) -> None:
    _deposits, number = _with_deposits(world, grow, 1)
    origin = world.chain.node.block(number).header.l1_origin
    fake = Hash32(keccak(b"another fork"))
    world.commit(1, number, _block(1, l1_origin_hash=fake))
    assert _diverged(world) == (
        number,
        f"its L1 origin, block {origin} 0x{fake.hex()}, is not "
        f"the L1's block {origin} "
        f"(0x{world.l1.hash(origin).hex()})",
    )


def test_an_origin_after_the_commitment_is_caught(world: World, grow: Any) -> None:
    grow(world.chain, 2)
    ahead = world.l1.height + 5  # the commitment lands in the next L1 block
    world.commit(1, 2, _block(1, l1_origin=ahead, l1_origin_hash=Hash32(bytes(32))))
    block, reason = _diverged(world)
    assert block == 2 and f"its L1 origin {ahead} is after L1 block {ahead - 4}" in reason


def test_an_origin_below_the_block_before_is_caught(world: World, grow: Any) -> None:
    _deposits, number = _with_deposits(world, grow, 1)
    world.post()
    grow(world.chain, 1)
    following = number + 1
    world.commit(following, following, _block(0, l1_origin=0, l1_origin_hash=Hash32(bytes(32))))
    origin = world.chain.node.block(number).header.l1_origin
    assert _diverged(world) == (
        following,
        f"its L1 origin 0 is below the block before's ({origin})",
    )


def test_batches_without_an_l1_origin_carry_no_deposits(world: World, grow: Any) -> None:
    """A chain that follows no L1 names origin 0 with the zero hash: fine, with no deposits."""
    world.chain.node.l1 = None
    grow(world.chain, 2)
    world.post()
    assert [
        b.l1_origin_hash
        for b in (world.chain.node.block(1), world.chain.node.block(2))
        for b in [b.header]
    ] == [Hash32(bytes(32))] * 2
    verifier = world.verifier()
    assert _verified(verifier).message == "in sync at block 2"
    verifier.close()


def test_deposits_read_from_after_the_first_one_make_it_wait(world: World, grow: Any) -> None:
    """--portal-from-block after the Portal's first deposit: the L1's deposits do not start at
    the chain's next nonce; the verifier says so and waits (it is not the chain's fault)."""
    world.l1.deposit(world.chain_id, ALICE_TO)
    second = world.l1.deposit(world.chain_id, BOB_TO)
    world.inbox.mine()
    number = world.produce()
    world.post()
    verifier = world.verifier(deposits_from=second.l1_block)
    status = verifier.verify_until_idle()
    assert status.state == "in_sync" and status.verified == number - 1
    assert status.waiting == (
        f"the L1's deposits of chain {world.chain_id} skip from nonce 0 to 1 (L1 block "
        f"{second.l1_block}): are deposits read from before the Portal's first one "
        "(--portal-from-block)?"
    )
    verifier.close()
