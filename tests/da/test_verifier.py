"""The verifier against an in-memory inbox and LocalDA: it re-derives a real chain to the same
blocks, and each injected fault (tampered data, wrong roots, gaps, reordered or misplaced
batches, bad signatures and transactions, malformed references) stops it at the right block
with a clear reason; unreachable or missing data makes it wait, never diverge or crash."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from da.batch import Batch, batch_from_blocks
from da.channel import encode_channel
from da.commitment import encode_refs
from da.frames import encode_frames, encode_payload
from da.local import LocalDA
from da.poster import Poster, PosterConfig, PosterStore, channel_id_for
from da.verifier import Verifier
from rollup.crypto import SECP256K1_N, keccak
from rollup.messages import CALL, CrossMessage
from rollup.outputs import output_root
from rollup.types import Address
from services.verifier import build_replayer

FAST = PosterConfig(max_delay_s=0.0, max_batch_blocks=2, finality_poll_s=0.0)


@pytest.fixture
def world(tmp_path: Path, token_app: Path, chain: Any, memory_inbox: type) -> Any:
    """A chain of 6 blocks (a native and a token transfer each), a local DA store and an
    inbox; `post` commits a range, optionally tampered; `verifier()` reads them back."""

    class World:
        def __init__(self) -> None:
            self.chain = chain
            self.inbox = memory_inbox(strict=False)
            self.da = LocalDA(tmp_path / "da")

        def post(
            self,
            first: int,
            last: int,
            *,
            batch: Callable[[Batch], Batch] | None = None,
            channel: Callable[[bytes], bytes] | None = None,
            hash_posted: bool = True,
            root: bytes | None = None,
            blocks: tuple[int, int] | None = None,
        ) -> None:
            """Commit blocks first..last; the data may be of `blocks` instead, altered."""
            lo, hi = blocks or (first, last)
            real = [chain.node.block(n) for n in range(lo, hi + 1)]
            made = batch_from_blocks(chain.node.chain_id, real)
            encoded = encode_channel(batch(made) if batch else made)
            posted = channel(encoded) if channel else encoded
            frames = encode_frames(channel_id_for(chain.node.chain_id, lo, hi), posted, 400)
            refs = [self.da.submit(encode_payload([frame])) for frame in frames]
            data_hash = keccak(posted if hash_posted else encoded)
            self.inbox.commit(
                chain.node.chain_id,
                first,
                last,
                data_hash,
                root or output_root(real[-1].header),
                encode_refs(refs),
            )

        def verifier(self, threads: int = 2) -> Verifier:
            _name, replayer = build_replayer(token_app)
            local = LocalDA(tmp_path / "da", readonly=True)
            return Verifier(replayer, self.inbox, {"local": local}, 0, threads)

    return World()


def _grown(world: Any, grow: Any, blocks: int = 6) -> Any:
    grow(world.chain, blocks)
    return world


def test_the_posted_chain_is_re_derived_to_the_same_blocks(
    tmp_path: Path, world: Any, grow: Any, chain_source: type
) -> None:
    _grown(world, grow)
    poster = Poster(
        world.chain.node.chain_id,
        chain_source(world.chain),
        world.da,
        world.inbox,
        PosterStore(tmp_path / "poster.sqlite"),
        FAST,
    )
    while poster.step():
        pass
    for threads in (0, 2):
        verifier = world.verifier(threads)
        status = verifier.verify_until_idle()
        assert status.message == "in sync at block 6" and status.waiting is None
        assert (status.batches, status.blocks, status.txs) == (3, 6, 12)
        assert verifier.replayer.head == world.chain.node.committed  # every header, rebuilt
        world.inbox.mine(2)
        assert verifier.verify_until_idle().finalized == 6
        verifier.close()


def _diverged(world: Any) -> tuple[int, str]:
    verifier = world.verifier()
    status = verifier.verify_until_idle()
    verifier.close()
    assert status.state == "diverged", status
    assert status.message == f"diverged at block {status.block}: {status.reason}"
    return status.block, status.reason or ""


def test_a_flipped_byte_in_stored_data_is_detected(world: Any, grow: Any, tmp_path: Path) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4)
    objects = sorted((tmp_path / "da" / "objects").rglob("*"))
    victim = [p for p in objects if p.is_file()][0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    block, reason = _diverged(world)
    assert "DA data is corrupt" in reason and block in (1, 3)


def test_data_that_does_not_match_its_hash_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4, channel=lambda c: c[:-1] + bytes((c[-1] ^ 1,)), hash_posted=False)
    committed = world.inbox.items[1].data_hash.hex()
    assert _diverged(world) == (
        3,
        "batch 1 (blocks 3-4, L1 block 2): the data does not match "
        f"the committed data hash 0x{committed}",
    )


def test_a_tampered_batch_posted_with_its_own_hash_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)
    world.post(1, 2, channel=lambda c: c[:40] + bytes((c[40] ^ 0x10,)) + c[41:])
    block, reason = _diverged(world)
    assert block in (1, 2) and reason, reason  # a decode error, or what re-execution shows


def test_a_wrong_output_root_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4, root=keccak(b"not the output root"))
    block, reason = _diverged(world)
    assert block == 4 and "output root" in reason and "L1 commitment says" in reason


def test_a_wrong_state_root_claim_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)
    world.post(1, 2, batch=lambda b: dataclasses.replace(b, state_root=keccak(b"x")))
    block, reason = _diverged(world)
    assert block == 2 and "the batch claims" in reason and "state root" in reason


def test_a_gap_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 5)
    world.post(1, 2)
    world.post(4, 5)  # the contract refuses this; an inbox that did not is still caught
    assert _diverged(world) == (
        3,
        "batch 1 (blocks 4-5, L1 block 2) starts at block 4: a gap: blocks 3-3 were never posted",
    )


def test_a_reordered_batch_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 4)
    world.post(1, 2, blocks=(3, 4))  # the data of the next batch under this commitment
    block, reason = _diverged(world)
    assert block == 1 and "holds blocks 3-4" in reason and "reordered" in reason


def test_a_repeated_range_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)
    world.post(1, 2)
    world.post(1, 2)
    assert "blocks already posted" in _diverged(world)[1]


def test_a_missing_batch_number_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4)
    world.inbox.items[1] = dataclasses.replace(world.inbox.items[1], index=2)
    block, reason = _diverged(world)
    assert block == 3 and "where batch 1 was expected" in reason


def test_an_invalid_signature_is_detected_at_its_block(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)

    def high_s(batch: Batch) -> Batch:  # the same transaction, its s flipped to N - s
        raw = bytearray(batch.blocks[1].transactions[0])
        s = int.from_bytes(raw[-32:], "big")
        raw[-32:] = (SECP256K1_N - s).to_bytes(32, "big")
        txs = (bytes(raw), *batch.blocks[1].transactions[1:])
        block = dataclasses.replace(batch.blocks[1], transactions=txs)
        return dataclasses.replace(batch, blocks=(batch.blocks[0], block))

    world.post(1, 2, batch=high_s)
    block, reason = _diverged(world)
    assert block == 2 and "transaction 0 of block 2" in reason and "invalid signature" in reason


def test_an_invalid_transaction_is_detected_at_its_block(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)

    def swapped(batch: Batch) -> Batch:  # the same sender's two transactions, reordered
        block = batch.blocks[1]
        reordered = dataclasses.replace(block, transactions=block.transactions[::-1])
        return dataclasses.replace(batch, blocks=(batch.blocks[0], reordered))

    world.post(1, 2, batch=swapped)
    block, reason = _diverged(world)
    assert block == 2 and "transaction 0" in reason and "nonce mismatch" in reason


def test_an_unreadable_reference_is_detected(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)
    world.post(1, 2)
    world.inbox.items[0] = dataclasses.replace(world.inbox.items[0], da_ref=b"\xff\x00garbage")
    block, reason = _diverged(world)
    assert block == 1 and "unreadable DA reference" in reason


def test_missing_data_makes_it_wait_until_the_data_is_there(
    world: Any, grow: Any, tmp_path: Path
) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4)
    files = [p for p in (tmp_path / "da" / "objects").rglob("*") if p.is_file()]
    kept = {p: p.read_bytes() for p in files}
    for path in files:
        path.unlink()
    verifier = world.verifier()
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 0" and "not available" in (status.waiting or "")
    for path, data in kept.items():
        path.write_bytes(data)
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 4" and status.waiting is None
    verifier.close()


class FlakyInbox:
    """Wraps an inbox: unreachable, or answering with events that do not decode."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.mode = inner, "down"

    def commitments(self, *args: Any) -> Any:
        if self.mode == "down":
            raise ConnectionError("L1 unreachable (test)")
        if self.mode == "malformed":
            raise ValueError("malformed BatchCommitted log (L1 block 7, tx 0xab)")
        return self.inner.commitments(*args)

    def reverts(self, *args: Any) -> Any:
        return self.inner.reverts(*args) if self.mode == "ok" else self.commitments(*args)

    def l1_block_number(self, tag: str = "latest") -> int:
        return int(self.inner.l1_block_number(tag))


def test_an_unreachable_or_malformed_inbox_makes_it_wait(world: Any, grow: Any) -> None:
    _grown(world, grow, 2)
    world.post(1, 2)
    verifier = world.verifier()
    flaky = FlakyInbox(world.inbox)
    verifier.inbox = flaky
    assert "unreachable" in (verifier.verify_until_idle().waiting or "")
    flaky.mode = "malformed"
    status = verifier.verify_until_idle()
    assert status.state == "in_sync" and "malformed BatchCommitted log" in (status.waiting or "")
    flaky.mode = "ok"
    assert verifier.verify_until_idle().message == "in sync at block 2"
    verifier.close()


def test_inbound_messages_from_a_chain_that_never_posted_make_it_wait(
    tmp_path: Path, world: Any, grow: Any, chain_source: type
) -> None:
    """The messages travel in the batch, but chain 7 has no batch on the inbox: the verifier
    cannot check them, so it waits (naming chain 7 and the block) and never moves its head.
    tests/da/test_inbound_check.py has chains that do post."""
    chain = world.chain
    grow(chain, 1)
    holder = chain.accounts[3]
    for nonce in range(2):  # two calls from app chain 7 into the token app, in channel order
        call = CrossMessage(
            src_chain=7,
            src_block=5,
            src_index=nonce,
            channel_nonce=nonce,
            dst_chain=chain.node.chain_id,
            sender=Address(b"\x0a" * 20),
            target=chain.app.address,
            kind=CALL,
            gas=200_000,
            expiry=2**40,
            data=chain.calldata("balanceOf", holder),
        )
        assert chain.node.receive(call)
    assert chain.node.produce(1_800_000_000_000) is not None
    grow(chain, 1)
    block = chain.node.block(2)
    assert len(block.inbound) == 2 and len(block.inbound_receipts) == 2
    poster = Poster(
        chain.node.chain_id,
        chain_source(chain),
        world.da,
        world.inbox,
        PosterStore(tmp_path / "poster.sqlite"),
        FAST,
    )
    while poster.step():
        pass
    verifier = world.verifier()
    for _ in range(2):  # and again: it retries, and still waits
        status = verifier.verify_until_idle()
        assert status.message == "in sync at block 0" and status.verified == 0
        assert status.waiting == (
            "source chain 7 has not posted block 5 yet: it has no batch on this inbox (no "
            f"batcher, or not posting); inbound message 0x{block.inbound[0].id.hex()} of block "
            "2 comes from it"
        )
    verifier.close()
    assert verifier.replayer.head.number == 0


def test_the_owners_revert_of_a_bad_batch_lets_the_verifier_recover(
    world: Any, grow: Any, token_app: Path, tmp_path: Path
) -> None:
    """A fake batch (a leaked batcher key) diverges the verifier; the inbox owner reverts it,
    the honest batch is posted in its place, and the verifier goes on from the block before
    (the fake batch was taken back as it diverged: nothing to rebuild)."""
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4, root=keccak(b"a fake output root"))
    rebuilds: list[int] = []
    verifier = Verifier(*_parts(world, token_app, tmp_path, rebuilds))
    assert verifier.verify_until_idle().state == "diverged"
    assert verifier.replayer.head.number == 2  # blocks 3-4 executed, then taken back
    world.inbox.revert(world.chain.node.chain_id, 1)
    world.post(3, 4)
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 4" and (status.rewinds, status.rollbacks) == (0, 0)
    assert rebuilds == []
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_revert_of_verified_batches_is_taken_back_with_the_undo_logs(
    world: Any, grow: Any, token_app: Path, tmp_path: Path
) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4)
    rebuilds: list[int] = []
    verifier = Verifier(*_parts(world, token_app, tmp_path, rebuilds))
    replayer = verifier.replayer
    assert verifier.verify_until_idle().message == "in sync at block 4"
    world.inbox.revert(world.chain.node.chain_id, 0)  # both batches, already verified
    status = verifier.verify_until_idle()
    assert status.block == 0  # back at genesis, nothing posted yet
    assert (status.rewinds, status.rollbacks, status.rolled_back_blocks) == (0, 1, 4)
    world.post(1, 4)
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 4" and status.rewinds == 0
    assert rebuilds == [] and verifier.replayer is replayer
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_revert_from_a_middle_batch_rolls_back_to_the_batch_before(
    world: Any, grow: Any, token_app: Path, tmp_path: Path
) -> None:
    _grown(world, grow, 6)
    for first in (1, 3, 5):
        world.post(first, first + 1)  # L1 blocks 1-3
    rebuilds: list[int] = []
    verifier = Verifier(*_parts(world, token_app, tmp_path, rebuilds))
    assert verifier.verify_until_idle().message == "in sync at block 6"
    world.inbox.revert(world.chain.node.chain_id, 1)  # batches 1 and 2
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 2" and status.l1_block == 1
    assert (status.rewinds, status.rollbacks, status.rolled_back_blocks) == (0, 1, 4)
    world.post(3, 4)
    world.post(5, 6)
    assert verifier.verify_until_idle().message == "in sync at block 6" and rebuilds == []
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_revert_of_final_batches_re_derives_from_genesis(
    world: Any, grow: Any, token_app: Path, tmp_path: Path
) -> None:
    """The L1 finalized both batches: their undo logs are gone, so the owner's revert of them
    is followed from genesis."""
    _grown(world, grow, 4)
    world.post(1, 2)
    world.post(3, 4)
    world.inbox.mine(2)  # L1 block 4: both batches final
    rebuilds: list[int] = []
    verifier = Verifier(*_parts(world, token_app, tmp_path, rebuilds))
    status = verifier.verify_until_idle()
    assert (status.finalized, status.undoable) == (4, 0)
    world.inbox.revert(world.chain.node.chain_id, 1)
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 2" and len(rebuilds) == 1
    assert (status.rewinds, status.rollbacks) == (1, 0)
    world.post(3, 4)
    assert verifier.verify_until_idle().message == "in sync at block 4"
    _as_from_genesis(world, verifier)
    verifier.close()


def test_a_revert_of_batches_not_yet_verified_only_drops_them(
    world: Any, grow: Any, token_app: Path, tmp_path: Path
) -> None:
    _grown(world, grow, 4)
    world.post(1, 2)
    verifier = Verifier(*_parts(world, token_app, tmp_path))
    assert verifier.verify_until_idle().message == "in sync at block 2"
    world.post(3, 4, root=keccak(b"fake"))
    world.inbox.revert(world.chain.node.chain_id, 1)  # before the verifier saw it
    world.post(3, 4)
    status = verifier.verify_until_idle()
    assert status.message == "in sync at block 4" and (status.rewinds, status.rollbacks) == (0, 0)
    verifier.close()


def _parts(
    world: Any, token_app: Path, tmp_path: Path, rebuilds: list[int] | None = None
) -> tuple[Any, ...]:
    """A verifier's arguments, with the rebuild it uses to start over (each call counted in
    `rebuilds`)."""
    _name, replayer = build_replayer(token_app)
    local = LocalDA(tmp_path / "da", readonly=True)

    def rebuild() -> Any:
        if rebuilds is not None:
            rebuilds.append(1)
        return build_replayer(token_app)[1]

    return replayer, world.inbox, {"local": local}, 0, 2, None, rebuild


def _as_from_genesis(world: Any, verifier: Verifier) -> None:
    """The verifier stands where a fresh one, deriving the same inbox from genesis, does:
    the same head, the same state (every key), a state tree with the head's root."""
    fresh = world.verifier()
    status = fresh.verify_until_idle()
    assert status.message == f"in sync at block {verifier.replayer.head.number}", status
    assert verifier.replayer.head == fresh.replayer.head == world.chain.node.committed
    assert verifier.replayer.world == fresh.replayer.world
    assert verifier.replayer.tree.root == verifier.replayer.head.state_root
    fresh.close()
