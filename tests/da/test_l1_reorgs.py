"""L1 reorgs under the poster and the verifier (a FakeL1 that replaces its newest blocks): the
poster posts again what a reorg removed and follows a commitment the reorg moved; the verifier
notices that an L1 block it relied on is gone, reads the L1 again from the fork point when
nothing it verified relied on what changed, takes back with its undo logs the batches that
relied on what changed and re-derives from the fork point, and re-derives from genesis only
when the logs do not reach back (a reorg under finality, logs dropped to bound memory)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from da.l1 import L1Anchors
from da.verifier import Verifier
from rollup.types import Address

World = Any  # tests/da/conftest.py's L1World


@pytest.fixture
def world(l1_world: World) -> World:
    return l1_world


def _in_sync(verifier: Any, block: int) -> Any:
    status = verifier.verify_until_idle()
    assert status.message == f"in sync at block {block}" and status.waiting is None, status
    return status


def _rebuilds(verifier: Verifier) -> list[int]:
    """Counts the verifier's rebuilds from genesis (one entry each)."""
    calls: list[int] = []
    inner = verifier._rebuild
    assert inner is not None

    def rebuild() -> Any:
        calls.append(1)
        return inner()

    verifier._rebuild = rebuild
    return calls


def _as_from_genesis(world: World, verifier: Verifier) -> None:
    """The verifier stands where a fresh one, deriving the same L1 from genesis, does: the
    same head, the same state (every key), a state tree with the head's root."""
    fresh = world.verifier()
    _in_sync(fresh, verifier.replayer.head.number)
    replayer = verifier.replayer
    assert replayer.head == fresh.replayer.head == world.chain.node.committed
    assert replayer.world == fresh.replayer.world
    assert replayer.tree.root == replayer.head.state_root
    fresh.close()


def test_a_reorg_above_what_was_verified_only_reads_the_l1_again(world: World, grow: Any) -> None:
    grow(world.chain, 2)
    world.post()  # L1 block 1
    world.inbox.mine(3)  # 2-4: empty
    verifier = world.verifier()
    _in_sync(verifier, 2)
    world.l1.reorg(2)  # 3-4 replaced; batch 0 (L1 block 1) stands
    grow(world.chain, 2)
    world.post()
    status = _in_sync(verifier, 4)
    assert (status.l1_reorgs, status.rewinds) == (1, 0)
    verifier.close()


def test_a_reorg_that_removes_a_verified_commitment_is_followed(world: World, grow: Any) -> None:
    grow(world.chain, 4)
    world.post()  # batches 0 and 1 at L1 blocks 1 and 2
    verifier = world.verifier()
    rebuilds, replayer = _rebuilds(verifier), verifier.replayer
    _in_sync(verifier, 4)
    removed = world.inbox.items[1]
    world.l1.reorg(1)  # L1 block 2 replaced: batch 1's commitment is gone
    assert world.inbox.next_block(world.chain_id) == 3
    status = verifier.verify_until_idle()  # batch 1 taken back: batch 0 stands
    assert status.message == "in sync at block 2" and (status.l1_reorgs, status.rewinds) == (1, 0)
    assert (status.rollbacks, status.rolled_back_blocks, status.undoable) == (1, 2, 1)
    world.post()  # the poster sees the inbox's position go back: posts blocks 3-4 again
    again = world.inbox.items[-1]
    assert (again.index, again.first_block, again.last_block) == (1, 3, 4)
    assert again.l1_block > removed.l1_block and world.poster.status.safe == 4
    assert [r.l1_block for r in world.poster.store.all()] == [1, again.l1_block]
    _in_sync(verifier, 4)
    assert rebuilds == [] and verifier.replayer is replayer  # from the fork point, not genesis
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_reorg_that_removes_several_verified_commitments_rolls_them_all_back(
    world: World, grow: Any
) -> None:
    grow(world.chain, 8)
    world.post()  # batches 0-3 at L1 blocks 1-4
    verifier = world.verifier()
    verifier.inbox.finality_lag = 10  # nothing final: every batch can be taken back
    rebuilds = _rebuilds(verifier)
    assert _in_sync(verifier, 8).undoable == 4
    world.l1.reorg(3)  # L1 blocks 2-4 replaced: batches 1-3 are gone
    status = _in_sync(verifier, 2)
    assert (status.rewinds, status.rollbacks, status.rolled_back_blocks) == (0, 1, 6)
    assert status.l1_block == 1 and status.undoable == 1
    world.post()  # posted again, in new L1 blocks
    status = _in_sync(verifier, 8)
    assert rebuilds == [] and (status.rewinds, status.undoable) == (0, 4)
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_deposit_a_rolled_back_batch_executed_is_executed_again(world: World, grow: Any) -> None:
    """The reorg takes the batch's commitment, not the deposit's L1 block: the batch, posted
    again, executes the same deposit, which the rollback gave back to the verifier's feed."""
    grow(world.chain, 2)
    world.post()  # batch 0 at L1 block 1
    world.l1.deposit(world.chain_id, Address(b"\xa1" * 20))  # L1 block 2
    world.inbox.mine()  # L1 block 3: the origin reaches the deposit
    number = world.produce()
    assert [d.nonce for d in world.chain.node.block(number).deposits] == [0]
    world.post()  # batch 1 at L1 block 4
    verifier = world.verifier()
    rebuilds = _rebuilds(verifier)
    _in_sync(verifier, number)
    world.l1.reorg(1)  # L1 block 4 replaced
    status = _in_sync(verifier, number - 1)
    assert (status.rollbacks, status.rewinds) == (1, 0)
    world.post()
    _in_sync(verifier, number)
    assert rebuilds == []
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_diverged_verifier_follows_a_reorg_that_removes_the_bad_batch(
    world: World, grow: Any
) -> None:
    """The bad batch is taken back as soon as it diverges (the replayer stays on the last
    verified block), so a reorg that removes it needs no rebuild either."""
    grow(world.chain, 4)
    world.post()  # batches 0 and 1 at L1 blocks 1 and 2
    verifier = world.verifier()
    rebuilds = _rebuilds(verifier)
    _in_sync(verifier, 4)
    grow(world.chain, 2)
    world.commit(5, 6, lambda b: replace(b, state_root=b"\x01" * 32))  # L1 block 3
    status = verifier.verify_until_idle()
    assert status.state == "diverged" and status.block == 6, status
    assert verifier.replayer.head.number == 4  # blocks 5-6 executed, then taken back
    assert verifier.replayer.tree.root == verifier.replayer.head.state_root
    world.l1.reorg(1)  # the bad commitment is gone
    world.post()  # the honest batch
    status = _in_sync(verifier, 6)
    assert (status.rewinds, status.rollbacks) == (0, 0) and rebuilds == []
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_reorg_under_finality_re_derives_from_genesis(world: World, grow: Any) -> None:
    """The logs of final batches are gone (no reorg reaches under finality); one that does
    anyway leaves no anchor standing: the verifier starts over."""
    grow(world.chain, 4)
    world.post()  # batches 0 and 1 at L1 blocks 1 and 2
    world.inbox.mine(3)  # L1 block 5: 3 final
    verifier = world.verifier()
    rebuilds = _rebuilds(verifier)
    status = _in_sync(verifier, 4)
    assert (status.finalized, status.undoable, status.undo_bytes) == (4, 0, 0)
    world.l1.reorg(5)  # L1 blocks 1-5 replaced
    status = _in_sync(verifier, 0)
    assert (status.rewinds, status.rollbacks) == (1, 0) and len(rebuilds) == 1
    verifier.close()


def test_a_reorg_past_the_undo_logs_kept_re_derives_from_genesis(world: World, grow: Any) -> None:
    grow(world.chain, 4)
    world.post()  # batches 0 and 1 at L1 blocks 1 and 2
    verifier = world.verifier()
    verifier.max_undo_bytes = 0  # every log dropped as soon as it is kept
    rebuilds = _rebuilds(verifier)
    status = _in_sync(verifier, 4)
    assert (status.undoable, status.undo_bytes) == (0, 0)
    world.l1.reorg(1)  # batch 1 is gone
    status = _in_sync(verifier, 2)  # from genesis: batch 0 again
    assert (status.rewinds, status.rollbacks) == (1, 0) and len(rebuilds) == 1
    world.post()
    _in_sync(verifier, 4)
    _as_from_genesis(world, verifier)
    verifier.close()


def test_undo_logs_are_dropped_when_the_l1_finalizes_their_batches(world: World, grow: Any) -> None:
    grow(world.chain, 8)
    world.post()  # batches 0-3 at L1 blocks 1-4; L1 block 2 final
    verifier = world.verifier()
    status = _in_sync(verifier, 8)
    assert (status.finalized, status.undoable) == (4, 2) and status.undo_bytes > 0
    kept = status.undo_bytes
    world.inbox.mine(2)  # L1 block 4 final
    verifier.step()
    status = verifier.status()
    assert (status.finalized, status.undoable, status.undo_bytes) == (8, 0, 0) and kept > 0
    verifier.close()


def test_the_poster_follows_a_commitment_a_reorg_moved(world: World, grow: Any) -> None:
    """The same commitment, included again one L1 block later: its record follows it, and so
    does finality (counted from the L1 block it is in now)."""
    grow(world.chain, 2)
    world.post()  # batch 0 at L1 block 1
    world.inbox.mine()
    record = world.poster.store.all()[0]
    assert record.l1_block == 1
    world.l1.reorg(2)  # blocks 1-2 replaced; the new block 2 holds the same commitment
    world.inbox.items = [
        type(record)(
            **{**_fields(record), "chain_id": world.chain_id, "l1_block": 2, "l1_tx": b"\x77" * 32}
        )
    ]
    world.poster.step()
    moved = world.poster.store.all()[0]
    assert (moved.l1_block, moved.l1_tx) == (2, b"\x77" * 32)
    assert world.poster.status.safe == 2 and len(world.inbox.items) == 1  # nothing re-posted
    world.inbox.mine()  # L1 block 1 final: the commitment is not (it is in block 2 now)
    world.poster.step()
    assert world.poster.status.finalized == 0
    world.inbox.mine()
    world.poster.step()
    assert world.poster.status.finalized == 2


def test_a_reorg_that_replaced_the_origin_of_verified_blocks_is_re_derived(
    world: World, grow: Any
) -> None:
    """The node's blocks named an L1 block the reorg replaced: derived again on the new L1,
    they are not the canonical chain's, and the verifier says so at the first of them."""
    world.inbox.mine(3)
    grow(world.chain, 2)  # blocks 1-2 on origin 2
    world.post()  # L1 block 4
    verifier = world.verifier()
    _in_sync(verifier, 2)
    world.l1.reorg(3)  # blocks 2-4 replaced: the origin and the commitment
    (record,) = world.poster.store.all()  # the commitment, included again as it was
    world.inbox.items = [type(record)(**{**_fields(record), "chain_id": world.chain_id})]
    status = verifier.verify_until_idle()
    assert status.state == "diverged" and status.block == 1, status
    assert (status.l1_reorgs, status.rewinds) == (1, 1)  # no anchor left: from genesis
    assert "is not the L1's block 2" in (status.reason or "")
    verifier.close()


def test_a_deposit_a_reorg_moved_before_the_node_took_it_is_credited_once(
    world: World, grow: Any
) -> None:
    grow(world.chain, 1)
    world.post()
    first = world.l1.deposit(world.chain_id, Address(b"\xa1" * 20))  # the newest L1 block
    world.l1.reorg(1, keep=True)  # the same deposit, in the replacing block: another id
    world.inbox.mine()
    number = world.produce()
    (credited,) = world.chain.node.block(number).deposits
    assert credited.nonce == 0 and credited.source_hash != first.source_hash
    world.post()
    verifier = world.verifier()
    _in_sync(verifier, number)
    verifier.close()


def test_anchors_find_the_fork_point_by_bisection() -> None:
    class Chain:
        def __init__(self) -> None:
            self.fork, self.asked = 10**9, 0

        def l1_block_number(self, tag: str = "latest") -> int:
            return 100

        def l1_block_hash(self, number: int) -> bytes | None:
            self.asked += 1
            return number.to_bytes(32, "big") if number <= self.fork else b"\x01" * 32

    l1, anchors = Chain(), L1Anchors()
    for number in range(0, 100, 3):
        anchors.add(number, number.to_bytes(32, "big"))
    assert anchors.holds(l1)
    l1.fork, l1.asked = 50, 0
    assert not anchors.holds(l1)
    assert anchors.fork_point(l1) == 48 and l1.asked <= 7
    assert anchors.newest() == (48, (48).to_bytes(32, "big"))
    anchors.prune(30)
    assert anchors.fork_point(l1) == 48 and len(anchors) == 7  # 30 kept: the floor
    l1.fork = -1
    assert anchors.fork_point(l1) is None and len(anchors) == 0


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def test_a_reorg_while_the_inbox_is_read_makes_it_read_again(world: World, grow: Any) -> None:
    """The scan reads the tip's hash before and after the inbox: a reorg in between (here:
    while `commitments` answers) is a wait, and the next step reads the new chain."""
    grow(world.chain, 2)
    world.post()
    world.inbox.mine(2)
    inner = world.inbox.commitments
    calls = []

    def reorging(*args: Any) -> Any:
        found = inner(*args)
        if not calls:
            world.l1.reorg(1)  # an empty block replaced, under the verifier's feet
        calls.append(args)
        return found

    world.inbox.commitments = reorging
    verifier = world.verifier()
    status = verifier.verify_until_idle()
    assert status.verified == 0 and "reorganized while its inbox was read" in (status.waiting or "")
    _in_sync(verifier, 2)
    verifier.close()
