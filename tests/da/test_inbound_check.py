"""Verifiers check cross-app messages against the source chain's DA data, in process: the
token and orderbook templates message each other over the LocalNetwork bus, both chains post
to one in-memory inbox and one LocalDA store, and each chain's verifier checks the messages it
received against the other's posted batches (never re-executing the other chain). A source
whose posted outbound list differs from its execution diverges; a destination block with a
message its source never posted diverges naming the message; a message whose source block is
not posted yet makes the verifier wait, and pass once it is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from da.batch import Batch, batch_from_blocks
from da.channel import encode_channel
from da.commitment import encode_refs
from da.derive import SourceOutbox
from da.frames import encode_frames, encode_payload
from da.local import LocalDA
from da.poster import channel_id_for
from da.verifier import Verifier, VerifierStatus
from rollup.crypto import keccak
from rollup.messages import CALL, CrossMessage
from rollup.outputs import output_root
from rollup.types import Block, BlockEnv
from sequencer.harness import LocalChain
from sequencer.network import LocalNetwork
from services.verifier import build_replayer
from tests.conftest import BOOK_CHAIN, TOKEN_CHAIN, render_pair
from vm.state import DictReader, State
from vm.stf import execute_block


class Pair:
    """The token app (chain A) and the orderbook app (chain B) on one bus, one inbox and one
    DA store; `post` commits a chain's blocks, `verifier` re-derives a chain from them."""

    def __init__(self, tmp: Path, memory_inbox: type) -> None:
        self.dirs = dict(zip((TOKEN_CHAIN, BOOK_CHAIN), render_pair(tmp), strict=True))
        self.net = LocalNetwork.from_dirs(self.dirs[TOKEN_CHAIN], self.dirs[BOOK_CHAIN])
        self.token, self.book = self.net.chains
        self.inbox = memory_inbox()
        self.store = tmp / "da"
        self.da = LocalDA(self.store)

    def close(self) -> None:
        self.net.close()

    def deposit(self, amount: int) -> int:
        """Alice sends `amount` tokens to the orderbook; returns the block that sent it."""
        alice = self.token.accounts[0]
        receipt = self.token.transact(
            alice, "send_to", BOOK_CHAIN, self.book.app.address, alice, amount
        )
        assert receipt.status == 1
        return self.token.node.committed.number

    def post(
        self,
        chain: LocalChain,
        first: int,
        last: int,
        batch: Callable[[Batch], Batch] | None = None,
    ) -> None:
        """Commit blocks first..last of `chain` as one batch, optionally altered."""
        self.post_blocks(chain.node.chain_id, blocks(chain, first, last), batch)

    def post_blocks(
        self,
        chain_id: int,
        blocks: Sequence[Block],
        batch: Callable[[Batch], Batch] | None = None,
        commit_as: int | None = None,
    ) -> None:
        """Commit `blocks` of `chain_id` as one batch (under chain `commit_as`'s name, if
        given: a misplaced batch)."""
        first, last = blocks[0].header.number, blocks[-1].header.number
        made = batch_from_blocks(chain_id, blocks)
        channel = encode_channel(batch(made) if batch else made)
        frames = encode_frames(channel_id_for(chain_id, first, last), channel, 4_000)
        refs = [self.da.submit(encode_payload([frame])) for frame in frames]
        self.inbox.commit(
            commit_as or chain_id,
            first,
            last,
            keccak(channel),
            output_root(blocks[-1].header),
            encode_refs(refs),
        )

    def post_all(self, chain: LocalChain, per_batch: int = 2) -> None:
        first = self.inbox.next_block(chain.node.chain_id)
        head = chain.node.committed.number
        for start in range(first, head + 1, per_batch):
            self.post(chain, start, min(head, start + per_batch - 1))

    def verifier(self, chain_id: int, **sources: Any) -> Verifier:
        _name, replayer = build_replayer(self.dirs[chain_id])
        backends = {"local": LocalDA(self.store, readonly=True)}
        outbox = SourceOutbox(chain_id, self.inbox, backends, 0, **sources) if sources else None
        return Verifier(replayer, self.inbox, backends, 0, 0, outbox)


@pytest.fixture
def pair(tmp_path: Path, memory_inbox: type) -> Iterator[Pair]:
    made = Pair(tmp_path, memory_inbox)
    try:
        yield made
    finally:
        made.close()


def verify(pair: Pair, chain_id: int) -> VerifierStatus:
    verifier = pair.verifier(chain_id)
    try:
        return verifier.verify_until_idle()
    finally:
        verifier.close()


def blocks(chain: LocalChain, first: int, last: int) -> list[Block]:
    found = [chain.node.block(n) for n in range(first, last + 1)]
    assert all(found)
    return found  # type: ignore[return-value]


def inbound_blocks(chain: LocalChain) -> dict[int, tuple[CrossMessage, ...]]:
    everything = blocks(chain, 1, chain.node.committed.number)
    return {b.header.number: b.inbound for b in everything if b.inbound}


def test_each_verifier_checks_what_it_received_against_the_other_chain(pair: Pair) -> None:
    sent_at = pair.deposit(7 * 10**18)
    pair.net.settle()  # the orderbook credits it, and its result runs the token's callback
    ((book_block, (call,)),) = inbound_blocks(pair.book).items()
    ((token_block, (result,)),) = inbound_blocks(pair.token).items()
    assert (call.src_chain, call.src_block, result.ref_id) == (TOKEN_CHAIN, sent_at, call.id)
    pair.post_all(pair.token)
    pair.post_all(pair.book)
    for chain, received in ((pair.book, book_block), (pair.token, token_block)):
        verifier = pair.verifier(chain.node.chain_id)
        status = verifier.verify_until_idle()
        verifier.close()
        head = chain.node.committed.number
        assert status.message == f"in sync at block {head}" and status.waiting is None, status
        assert status.messages_checked == 1 and head >= received
        assert verifier.replayer.head == chain.node.committed


def test_a_source_whose_posted_outbound_list_differs_from_execution_diverges(
    pair: Pair,
) -> None:
    sent_at = pair.deposit(10**18)
    pair.net.settle()
    honest = pair.token.node.block(sent_at)
    assert honest is not None and len(honest.outbound) == 1
    message = honest.outbound[0]
    invented = dataclasses.replace(message, src_index=1, channel_nonce=1, value=10**30)

    def altered(sent: tuple[CrossMessage, ...]) -> Callable[[Batch], Batch]:
        def change(batch: Batch) -> Batch:
            at = sent_at - batch.first_number
            block = dataclasses.replace(batch.blocks[at], outbound=sent)
            return dataclasses.replace(
                batch, blocks=(*batch.blocks[:at], block, *batch.blocks[at + 1 :])
            )

        return change

    for sent in ((), (message, invented)):  # dropped, and one invented beside it
        pair.inbox.items.clear()
        pair.post(pair.token, 1, sent_at, batch=altered(sent))
        status = verify(pair, TOKEN_CHAIN)
        assert status.state == "diverged", status
        assert status.message == (
            f"diverged at block {sent_at}: posted outbound messages differ from execution"
        )


def forge(app_dir: Path, inbound: Sequence[CrossMessage]) -> Block:
    """Block 1 of the app's chain as a dishonest sequencer would build it, with the one STF:
    executing `inbound` as if their sources had sent them."""
    _name, chain = build_replayer(app_dir)
    genesis = chain.head
    env = BlockEnv(
        1, 1_800_000_000, genesis.coinbase, genesis.base_fee, genesis.gas_limit, chain.chain_id
    )
    executed = execute_block(State(DictReader(chain.world)), env, chain.vm, inbound, [], True)
    return executed.seal(genesis, 1_800_000_000_000, chain.tree).block


def mint(pair: Pair, src_block: int, nonce: int = 0, amount: int = 10**30) -> CrossMessage:
    """A deposit of `amount` tokens for mallory, as the token app's call would carry it."""
    mallory = pair.book.accounts[2]
    return CrossMessage(
        src_chain=TOKEN_CHAIN,
        src_block=src_block,
        src_index=0,
        channel_nonce=nonce,
        dst_chain=BOOK_CHAIN,
        sender=pair.token.app.address,
        target=pair.book.app.address,
        kind=CALL,
        gas=500_000,
        expiry=2**40,
        data=pair.book.calldata("receive_tokens", mallory, amount),
    )


def test_a_message_the_source_never_sent_diverges_naming_it(pair: Pair) -> None:
    pair.deposit(10**18)  # the token chain sends nothing to the orderbook in block 1 ...
    pair.token.transfer(pair.token.accounts[0], pair.token.accounts[1], 1)  # ... nor in 2
    pair.post_all(pair.token)
    forged_message = mint(pair, src_block=2)
    forged = forge(pair.dirs[BOOK_CHAIN], [forged_message])
    assert [r.status for r in forged.inbound_receipts] == [1]  # 10^30 tokens minted
    pair.post_blocks(BOOK_CHAIN, [forged])
    status = verify(pair, BOOK_CHAIN)
    assert status.state == "diverged" and status.block == 1, status
    assert status.reason == (
        f"inbound message 0x{forged_message.id.hex()} from chain "
        f"{TOKEN_CHAIN} block 2 index 0 is not in chain {TOKEN_CHAIN}'s "
        "DA data"
    )
    assert status.verified == 0


def test_a_real_message_with_other_fields_or_place_diverges(pair: Pair) -> None:
    sent_at = pair.deposit(10**18)
    real = pair.token.node.block(sent_at)
    assert real is not None
    (honest,) = real.outbound
    pair.post_all(pair.token)
    more = dataclasses.replace(honest, data=honest.data[:-1] + b"\xff")  # a larger amount
    moved = honest.with_index(1)  # the same message, claimed at another index
    cases = [
        (more, "is not in chain 901001's DA data"),
        (moved, "differs from chain 901001's DA data (it has it at index 0)"),
    ]
    for message, reason in cases:
        pair.inbox.items = pair.inbox.of(TOKEN_CHAIN)
        pair.post_blocks(BOOK_CHAIN, [forge(pair.dirs[BOOK_CHAIN], [message])])
        status = verify(pair, BOOK_CHAIN)
        assert status.state == "diverged" and status.block == 1, status
        assert status.reason == (
            f"inbound message 0x{message.id.hex()} from chain "
            f"{TOKEN_CHAIN} block {sent_at} index {message.src_index} "
            f"{reason}"
        )
    # and the honest message itself passes
    pair.inbox.items = pair.inbox.of(TOKEN_CHAIN)
    pair.post_blocks(BOOK_CHAIN, [forge(pair.dirs[BOOK_CHAIN], [honest])])
    status = verify(pair, BOOK_CHAIN)
    assert status.message == "in sync at block 1" and status.messages_checked == 1, status


def test_a_message_from_a_block_not_posted_yet_makes_it_wait_then_pass(pair: Pair) -> None:
    pair.token.transfer(pair.token.accounts[0], pair.token.accounts[1], 1)  # block 1
    sent_at = pair.deposit(10**18)  # block 2
    pair.net.settle()
    ((received, (call,)),) = inbound_blocks(pair.book).items()
    pair.post_all(pair.book, per_batch=1)
    verifier = pair.verifier(BOOK_CHAIN)
    try:
        status = verifier.verify_until_idle()  # the token chain has posted nothing
        assert status.message == f"in sync at block {received - 1}", status
        assert status.waiting == (
            f"source chain {TOKEN_CHAIN} has not posted block {sent_at} yet: it has no batch "
            f"on this inbox (no batcher, or not posting); inbound message 0x{call.id.hex()} of "
            f"block {received} comes from it"
        )
        pair.post(pair.token, 1, 1)  # the block before it
        status = verifier.verify_until_idle()
        assert status.verified == received - 1 and status.waiting is not None
        assert status.waiting.startswith(
            f"source chain {TOKEN_CHAIN} has not posted block "
            f"{sent_at} yet (its newest posted block is 1)"
        )
        pair.post_all(pair.token)
        status = verifier.verify_until_idle()
        head = pair.book.node.committed.number
        assert status.message == f"in sync at block {head}" and status.waiting is None
        assert status.messages_checked == 1
        assert verifier.replayer.head == pair.book.node.committed
    finally:
        verifier.close()


def test_a_source_batch_that_does_not_derive_makes_it_wait(pair: Pair) -> None:
    sent_at = pair.deposit(10**18)
    pair.net.settle()
    pair.post_all(pair.book)
    # the token chain's batcher commits the orderbook's blocks as its own
    pair.post_blocks(BOOK_CHAIN, blocks(pair.book, 1, sent_at), commit_as=TOKEN_CHAIN)
    status = verify(pair, BOOK_CHAIN)
    assert status.state == "in_sync" and status.verified == 0
    assert status.waiting is not None and status.waiting.startswith(
        f"source chain {TOKEN_CHAIN}'s batch 0 (blocks 1-{sent_at}, L1 block "
    )
    assert "does not derive" in status.waiting and f"of chain {BOOK_CHAIN}" in status.waiting


def test_the_cache_of_source_messages_is_bounded_and_refetched(pair: Pair) -> None:
    """Four deposits in four token blocks, one token block a batch; the orderbook executes
    them in one batch. The token chain posts all but the last first: the verifier checks three,
    waits on the fourth, and checks all four again once it is posted. With room for one
    batch's messages it derives the first three again; with room enough it does not."""
    sent = []
    for _ in range(4):
        sent.append(pair.deposit(10**18))
        pair.net.settle()
    pair.post_all(pair.book, per_batch=1_000)  # one batch: four inbound messages
    for block in range(1, sent[-1]):
        pair.post(pair.token, block, block)
    tight, roomy = pair.verifier(BOOK_CHAIN, max_bytes=1), pair.verifier(BOOK_CHAIN)
    try:
        for verifier in (tight, roomy):
            status = verifier.verify_until_idle()
            assert status.verified == 0 and f"block {sent[-1]} yet" in (status.waiting or "")
            assert verifier.sources.derived == 3
        assert tight.sources.cached_batches == 1 and roomy.sources.cached_batches == 3
        pair.post_all(pair.token, per_batch=1)
        for verifier, derived in ((tight, 3 + 4), (roomy, 3 + 1)):
            status = verifier.verify_until_idle()
            assert status.state == "in_sync" and status.messages_checked == 4, status
            assert verifier.sources.derived == derived
            # consumed up to the newest source block: only the batch that holds it stays
            assert verifier.sources.cached_batches == 1
    finally:
        tight.close()
        roomy.close()


def test_source_lookups_hold_under_tight_bounds_and_in_any_order(pair: Pair) -> None:
    """One commitment held a source (beyond what is consumed), no room for messages, and a
    lookup below the consumed block (starting that source over): the answers stay right."""
    sent = []
    for _ in range(3):
        sent.append(pair.deposit(10**18))
        pair.net.settle()
    pair.post_all(pair.token, per_batch=1)
    backends = {"local": LocalDA(pair.store, readonly=True)}
    sources = SourceOutbox(BOOK_CHAIN, pair.inbox, backends, 0, max_bytes=1, max_commitments=1)
    calls = []
    for block in sent:
        sources.new_round()
        (message,) = sources.sent(TOKEN_CHAIN, block).values()
        calls.append(message)
        assert sources.cached_batches == 1
    assert [m.src_block for m in calls] == sent and len({m.id for m in calls}) == 3
    assert sources.sent(TOKEN_CHAIN, sent[-1] + 1) == {}  # a posted block that sent nothing
    sources.consumed(TOKEN_CHAIN, sent[-1])
    sources.new_round()
    assert list(sources.sent(TOKEN_CHAIN, sent[0]).values()) == [calls[0]]  # starts over


def test_a_source_batch_the_inbox_owner_reverted_is_not_used(pair: Pair) -> None:
    """The token chain's batch is replaced by the owner (revertBatches): until the chain posts
    the block again, the orderbook's verifier waits; then it checks against the new batch."""
    sent_at = pair.deposit(10**18)
    pair.net.settle()
    pair.post_all(pair.book)
    real = pair.token.node.block(sent_at)
    assert real is not None
    forged = dataclasses.replace(real.outbound[0], value=10**30)
    pair.post(
        pair.token,
        1,
        sent_at,
        batch=lambda b: dataclasses.replace(
            b, blocks=(*b.blocks[:-1], dataclasses.replace(b.blocks[-1], outbound=(forged,)))
        ),
    )
    verifier = pair.verifier(BOOK_CHAIN)
    try:
        status = verifier.verify_until_idle()  # a bad batch: the message is not in it
        assert status.state == "diverged" and "is not in chain 901001's DA data" in str(status)
        verifier.close()
        pair.inbox.revert(TOKEN_CHAIN, 0)
        verifier = pair.verifier(BOOK_CHAIN)
        assert f"has not posted block {sent_at} yet" in (verifier.verify_until_idle().waiting or "")
        pair.post_all(pair.token)
        status = verifier.verify_until_idle()
        assert status.state == "in_sync" and status.messages_checked == 1, status
    finally:
        verifier.close()
