"""`BusService`: one node's end of the message bus, over any `BusTransport`.

Out: each committed block's outbound messages go to their destinations at once, in MESSAGES
frames that carry the block's header signed with this sequencer's key and a Merkle multiproof
of the messages against the header's messages_root (services/bus/wire.py). Each destination
reports its committed progress (PROGRESS, signed by its sequencer) after every block that
executed some of them; the service re-sends from the durable outbox whatever stays
unacknowledged for `resend_after` seconds, rebuilding headers and proofs from the stored
blocks (signatures are deterministic, RFC 6979), and, after a restart or a reconnection, asks
with HELLO and re-sends from the answer. Acknowledged progress is saved (and the outbox
trimmed) about once a second, so a restarted sender re-sends little.

In: an arriving frame is decoded and checked whole (wire.py: structure, limits, the proofs)
and then authenticated (trust.py: the source chain is trusted and its sequencer signed every
header, HELLO and PROGRESS) before anything of it reaches the node; a frame that fails is
counted and dropped and changes nothing, in particular no channel nonce. Accepted messages go
to `Sequencer.receive`; the inbox orders them and drops what was executed. Progress is always
read from the newest *committed* state: acknowledging a built but unwritten block could lose
messages in a crash.

Everything here runs on the node's event loop (the owner thread of the `Sequencer`), except
the outbox and block reads of a re-send, which run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rollup.blocks import header_digest, message_leaves
from rollup.crypto import key_address, sign_digest
from rollup.merkle import merkle_levels, merkle_multiproof
from rollup.messages import CrossMessage, encode_message
from rollup.types import Block
from sequencer.node import Sequencer
from sequencer.outbox import Outbox
from services.bus.transport import BusTransport
from services.bus.trust import FrameAuthenticator, SequencerTrust
from services.bus.wire import (
    HELLO,
    MAX_FRAME,
    MAX_FRAME_MESSAGES,
    MAX_PROOF_PER_MESSAGE,
    MESSAGES,
    PROGRESS,
    BlockMessages,
    Frame,
    FrameRejected,
    decode_frame,
    frame_size,
    hello_frame,
    messages_frame,
    progress_frame,
)
from services.metrics import ROUND_TRIP_BUCKETS, Durations
from vm.bus import inbound_progress

__all__ = ["BusService"]

log = logging.getLogger(__name__)

TICK = 0.05
FRAME_BUDGET = MAX_FRAME - 64 * 1024  # room for the frame's own header
SIGNATURES_KEPT = 1024  # recent block signatures, for re-sends
SUMMARY_EVERY = 60.0  # seconds between summaries of rejected frames
ROUND_TRIPS_KEPT = 4096  # blocks' sends per destination awaiting acknowledgement, timed


@dataclass(slots=True)
class _Channel:
    """What this chain knows of one destination."""

    acked: int = 0  # the destination executed (and committed) our messages below this nonce
    sent: int = 0  # we published up to, not including, this nonce
    last: float = 0.0  # when `acked` last moved or we last re-sent
    saved: int = 0  # `acked` as saved in the outbox
    asked: bool = False  # a HELLO is out: re-send from its answer


class BusService:
    def __init__(
        self,
        node: Sequencer,
        transport: BusTransport,
        key: bytes,
        trust: SequencerTrust,
        wake: Callable[[], None] = lambda: None,
        resend_after: float = 0.5,
        resend_window: int = 2_000,
        save_every: float = 1.0,
    ) -> None:
        """`key`: this chain's sequencer key (signs what we send); `trust`: the other chains'
        sequencer addresses (what we accept)."""
        self.node, self.transport, self.wake = node, transport, wake
        self.chain_id = node.chain_id
        self.key, self.address = key, key_address(key)
        self.auth = FrameAuthenticator(trust)
        self.resend_after, self.resend_window, self.save_every = (
            resend_after,
            resend_window,
            save_every,
        )
        self.outbox = Outbox(node.store.engine)
        self.channels: dict[int, _Channel] = {}
        self.rejected = 0  # frames refused
        self.rejections: Counter[str] = Counter()  # by the rule they broke
        self.received = 0  # messages new to the inbox
        self.resent = 0  # messages re-sent from the outbox
        self.executed = 0  # inbound messages in the blocks committed since start
        # send-to-acknowledgement times (services/metrics.py): per destination, each block's
        # sends as (the nonce after them, how many, when); the oldest go past the bound
        self.round_trip = Durations(ROUND_TRIP_BUCKETS)
        self._unacked: dict[int, deque[tuple[int, int, float]]] = {}
        self._signatures: OrderedDict[bytes, bytes] = OrderedDict()  # block hash -> signature
        self._task: asyncio.Task[None] | None = None
        self._saved_at = 0.0
        self._summary = (0.0, 0)  # when we last summed up rejections, and the count then

    # ---- life cycle ----

    async def start(self) -> None:
        channels, acked = await asyncio.to_thread(
            lambda: (self.outbox.channels(), self.outbox.acked())
        )
        for dst, (low, high) in channels.items():
            done = max(low, acked.get(dst, 0))
            self.channels[dst] = _Channel(acked=done, sent=high + 1, saved=acked.get(dst, 0))
        self._check_own_address()
        self.node.on_commit.append(self._on_commit)
        await self.transport.start(self.chain_id, self._on_frame, self._ask)
        for dst in self.channels:
            self._ask(dst)
        self._task = asyncio.get_running_loop().create_task(self._maintain(), name="bus")
        log.info(
            "bus up for chain %d, sequencer 0x%s; %d channel(s) with unacknowledged messages",
            self.chain_id,
            self.address.hex(),
            sum(c.acked < c.sent for c in self.channels.values()),
        )

    def _check_own_address(self) -> None:
        listed = self.auth.trust.address(self.chain_id)
        if listed is not None and listed != self.address:
            log.error(
                "the sequencers file lists 0x%s for chain %d but this node signs as 0x%s:"
                " other chains will refuse its messages",
                listed.hex(),
                self.chain_id,
                self.address.hex(),
            )

    async def stop(self) -> None:
        if self._on_commit in self.node.on_commit:
            self.node.on_commit.remove(self._on_commit)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._save_acks()
        await self.transport.close()

    def status(self) -> dict[str, object]:
        inbox = self.node.inbox
        return {
            "chain_id": self.chain_id,
            "sequencer": "0x" + self.address.hex(),
            "channels": {d: {"acked": c.acked, "sent": c.sent} for d, c in self.channels.items()},
            "inbox": len(inbox),
            "inbox_refused": inbox.refused,
            "inbox_evicted": inbox.evicted,
            "received": self.received,
            "rejected": self.rejected,
            "rejections": dict(self.rejections),
            "resent": self.resent,
        }

    # ---- out ----

    def _channel(self, dst: int) -> _Channel:
        channel = self.channels.get(dst)
        if channel is None:
            channel = self.channels[dst] = _Channel(last=time.monotonic())
        return channel

    def _on_commit(self, block: Block) -> None:
        if block.outbound:
            by_dst: dict[int, list[CrossMessage]] = {}
            for m in block.outbound:
                by_dst.setdefault(m.dst_chain, []).append(m)
                channel = self._channel(m.dst_chain)
                if channel.acked >= channel.sent:
                    channel.last = time.monotonic()  # the resend clock starts with the first
                channel.sent = m.channel_nonce + 1
            for dst, parts in _prove(block, by_dst, self._signature(block)).items():
                self._send_parts(dst, parts)
            self._time_sends(by_dst)
        if block.inbound:
            self.executed += len(block.inbound)
            for src in {m.src_chain for m in block.inbound}:
                self._report(src)

    def _time_sends(self, by_dst: dict[int, list[CrossMessage]]) -> None:
        now = time.monotonic()
        for dst, messages in by_dst.items():
            sends = self._unacked.get(dst)
            if sends is None:
                sends = self._unacked[dst] = deque(maxlen=ROUND_TRIPS_KEPT)
            sends.append((messages[-1].channel_nonce + 1, len(messages), now))

    def _time_acks(self, dst: int, next_nonce: int) -> None:
        """Observe the round trip of every timed send to `dst` below `next_nonce`."""
        sends = self._unacked.get(dst)
        now = time.monotonic()
        while sends and sends[0][0] <= next_nonce:
            _, count, sent_at = sends.popleft()
            self.round_trip.observe(now - sent_at, count)

    def _signature(self, block: Block) -> bytes:
        signature = self._signatures.get(block.hash)
        if signature is None:
            digest = header_digest(self.chain_id, block.hash)
            signature = self._signatures[block.hash] = sign_digest(self.key, digest)
            if len(self._signatures) > SIGNATURES_KEPT:
                self._signatures.popitem(last=False)
        return signature

    def _send_parts(self, dst: int, parts: Sequence[BlockMessages]) -> None:
        frame: list[BlockMessages] = []
        size = count = 0
        for part in parts:
            part_size = frame_size(part)
            if frame and (
                size + part_size > FRAME_BUDGET or count + len(part.messages) > MAX_FRAME_MESSAGES
            ):
                self.transport.send(dst, messages_frame(self.chain_id, dst, frame), True)
                frame, size, count = [], 0, 0
            frame.append(part)
            size += part_size
            count += len(part.messages)
        if frame:
            self.transport.send(dst, messages_frame(self.chain_id, dst, frame), True)

    def _ask(self, dst: int) -> None:
        """(Re)connected towards `dst`, or started: ask it how far it got."""
        channel = self._channel(dst)
        channel.asked = True
        self.transport.send(dst, hello_frame(self.key, self.chain_id, dst), False)

    def _acknowledged(self, dst: int, next_nonce: int) -> None:
        channel = self._channel(dst)
        if next_nonce > channel.acked:
            channel.acked = next_nonce
            channel.last = time.monotonic()
            self._time_acks(dst, next_nonce)
        if next_nonce > channel.sent:
            channel.sent = next_nonce  # it executed more than this process sent: a restart
        if channel.asked:
            channel.asked = False
            if channel.acked < channel.sent:
                asyncio.get_running_loop().create_task(self._resend(dst, channel))

    async def _resend(self, dst: int, channel: _Channel) -> None:
        channel.last = time.monotonic()
        parts = await asyncio.to_thread(self._reproved, dst, channel.acked)
        if parts:
            count = sum(len(p.messages) for p in parts)
            self.resent += count
            log.info(
                "re-sending %d message(s) to chain %d from nonce %d",
                count,
                dst,
                parts[0].messages[0].channel_nonce,
            )
            self._send_parts(dst, parts)

    def _reproved(self, dst: int, from_nonce: int) -> list[BlockMessages]:
        """Unacknowledged messages to `dst` from the outbox, proved again from their stored
        blocks (a worker thread: reads only the database and this chain's key)."""
        rows = self.outbox.messages(dst, from_nonce, self.resend_window)
        numbers = list(dict.fromkeys(number for number, _ in rows))
        parts: list[BlockMessages] = []
        for number in numbers:
            stored = self.node.store.get_block(number)
            if stored is None:
                log.error(
                    "block %d of the outbox is not in the store; re-sending stops there", number
                )
                break
            block = stored.block
            mine = [
                m for m in block.outbound if m.dst_chain == dst and m.channel_nonce >= from_nonce
            ]
            if mine:  # (the last block's may go past the window: they come along)
                signature = sign_digest(self.key, header_digest(self.chain_id, block.hash))
                parts += _prove(block, {dst: mine}, signature)[dst]
        return parts

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for dst, channel in list(self.channels.items()):
                if channel.acked < channel.sent and now - channel.last >= self.resend_after:
                    await self._resend(dst, channel)
            if now - self._saved_at >= self.save_every:
                self._saved_at = now
                await self._save_acks()
            if now - self._summary[0] >= SUMMARY_EVERY:
                if self.rejected > self._summary[1]:
                    log.warning(
                        "rejected %d bus frame(s) in all: %s", self.rejected, dict(self.rejections)
                    )
                self._summary = (now, self.rejected)

    async def _save_acks(self) -> None:
        moved = [(d, c.acked) for d, c in self.channels.items() if c.acked > c.saved]
        if moved:
            await asyncio.to_thread(self.outbox.acknowledge, moved)
            for dst, acked in moved:
                self.channels[dst].saved = acked

    # ---- in ----

    def _committed_progress(self, src: int) -> int:
        return inbound_progress(self.node.state_at(self.node.committed.number), src)

    def _report(self, src: int) -> None:
        progress = self._committed_progress(src)
        self.transport.send(src, progress_frame(self.key, self.chain_id, src, progress), False)
        self.transport.settled(src, progress)

    def _on_frame(self, data: bytes) -> tuple[int, int] | None:
        try:
            frame = decode_frame(data)
            self._check(frame)
            if self._idle_progress(frame):
                return None  # it could move nothing: no need to check its signature
            self.auth.check(frame)
        except FrameRejected as exc:
            self._reject(exc)
            return None
        if frame.kind == MESSAGES:
            return self._on_messages(frame)
        if frame.kind == HELLO:
            progress = self._committed_progress(frame.chain)
            reply = progress_frame(self.key, self.chain_id, frame.chain, progress)
            self.transport.send(frame.chain, reply, False)
        elif frame.kind == PROGRESS:
            self._acknowledged(frame.chain, frame.next_nonce)
        return None

    def _check(self, frame: Frame) -> None:
        if frame.chain == self.chain_id:
            raise FrameRejected("self", f"bus frame claims to come from this chain ({frame.chain})")
        if frame.dst != self.chain_id:
            raise FrameRejected(
                "destination",
                f"bus frame from chain {frame.chain} is for chain {frame.dst}, not {self.chain_id}",
            )

    def _idle_progress(self, frame: Frame) -> bool:
        """A PROGRESS no higher than what we know, while no HELLO waits for an answer."""
        if frame.kind != PROGRESS:
            return False
        channel = self.channels.get(frame.chain)
        return channel is not None and not channel.asked and frame.next_nonce <= channel.acked

    def _reject(self, exc: FrameRejected) -> None:
        self.rejected += 1
        self.rejections[exc.rule] += 1
        if self.rejections[exc.rule] == 1:  # once per rule; `_maintain` sums up the rest
            log.warning("rejected a bus frame (%s): %s", exc.rule, exc)
        else:
            log.debug("rejected a bus frame (%s): %s", exc.rule, exc)

    def _on_messages(self, frame: Frame) -> tuple[int, int] | None:
        messages = frame.messages
        new = sum(self.node.receive(m) for m in messages)
        self.received += new
        if new:
            self.wake()
        else:  # all known: the sender may be re-sending after a restart; tell it where we are
            self._report(frame.chain)
        return frame.chain, messages[-1].channel_nonce


def _prove(
    block: Block, by_dst: dict[int, list[CrossMessage]], signature: bytes
) -> dict[int, list[BlockMessages]]:
    """Each destination's messages of `block` with the signed header and their multiproofs, in
    parts small enough for a frame."""
    leaves = message_leaves(block.outbound, block.inbound, block.inbound_receipts)
    levels = merkle_levels(leaves)
    return {
        dst: [
            BlockMessages(
                block.header,
                signature,
                len(leaves),
                tuple(chunk),
                tuple(merkle_multiproof(levels, [m.src_index for m in chunk])),
                block.hash,
            )
            for chunk in _chunks(messages)
        ]
        for dst, messages in by_dst.items()
    }


def _chunks(messages: Sequence[CrossMessage]) -> Iterator[list[CrossMessage]]:
    """Runs of messages that each fit a frame with their header and their proof (at most
    MAX_PROOF_PER_MESSAGE hashes a message, however the block's leaves fall)."""
    chunk: list[CrossMessage] = []
    size = 0
    budget = FRAME_BUDGET - 64 * 1024  # the header and the signature
    for m in messages:
        item = len(encode_message(m)) + 33 * MAX_PROOF_PER_MESSAGE
        if chunk and (size + item > budget or len(chunk) >= MAX_FRAME_MESSAGES):
            yield chunk
            chunk, size = [], 0
        chunk.append(m)
        size += item
    if chunk:
        yield chunk
