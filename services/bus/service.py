"""`BusService`: one node's end of the message bus, over any `BusTransport`.

Out: each committed block's outbound messages go to their destinations at once, in MESSAGES
frames. Each destination reports its committed progress (PROGRESS) after every block that
executed some of them; the service re-sends from the durable outbox whatever stays
unacknowledged for `resend_after` seconds, and, after a restart or a reconnection, asks with
HELLO and re-sends from the answer. Acknowledged progress is saved (and the outbox trimmed)
about once a second, so a restarted sender re-sends little.

In: arriving frames are checked whole (services/bus/wire.py) and their messages handed to
`Sequencer.receive`; the inbox orders them and drops what was executed. Progress is always
read from the newest *committed* state: acknowledging a built but unwritten block could lose
messages in a crash.

Everything here runs on the node's event loop (the owner thread of the `Sequencer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rollup.errors import MalformedMessage
from rollup.messages import encode_message
from rollup.types import Block
from sequencer.node import Sequencer
from sequencer.outbox import Outbox
from services.bus.transport import BusTransport
from services.bus.wire import (
    HELLO,
    MAX_FRAME,
    MAX_FRAME_MESSAGES,
    MESSAGES,
    PROGRESS,
    Frame,
    decode_frame,
    encoded_messages_frame,
    hello_frame,
    progress_frame,
)
from vm.bus import inbound_progress

__all__ = ["BusService"]

log = logging.getLogger("bus")

TICK = 0.05
FRAME_BUDGET = MAX_FRAME - 64 * 1024  # room for the frame's own header


@dataclass(slots=True)
class _Channel:
    """What this chain knows of one destination."""

    acked: int = 0  # the destination executed (and committed) our messages below this nonce
    sent: int = 0  # we published up to, not including, this nonce
    last: float = 0.0  # when `acked` last moved or we last re-sent
    saved: int = 0  # `acked` as saved in the outbox
    asked: bool = False  # a HELLO is out: re-send from its answer


class BusService:
    def __init__(self, node: Sequencer, transport: BusTransport,
                 wake: Callable[[], None] = lambda: None, resend_after: float = 0.5,
                 resend_window: int = 2_000, save_every: float = 1.0) -> None:  # fmt: skip
        self.node, self.transport, self.wake = node, transport, wake
        self.chain_id = node.chain_id
        self.resend_after, self.resend_window, self.save_every = (
            resend_after, resend_window, save_every
        )
        self.outbox = Outbox(node.store.engine)
        self.channels: dict[int, _Channel] = {}
        self.rejected = 0  # frames refused as malformed
        self.received = 0  # messages new to the inbox
        self.resent = 0  # messages re-sent from the outbox
        self._task: asyncio.Task[None] | None = None
        self._saved_at = 0.0

    # ---- life cycle ----

    async def start(self) -> None:
        channels, acked = await asyncio.to_thread(
            lambda: (self.outbox.channels(), self.outbox.acked())
        )
        for dst, (low, high) in channels.items():
            done = max(low, acked.get(dst, 0))
            self.channels[dst] = _Channel(acked=done, sent=high + 1, saved=acked.get(dst, 0))
        self.node.on_commit.append(self._on_commit)
        await self.transport.start(self.chain_id, self._on_frame, self._ask)
        for dst in self.channels:
            self._ask(dst)
        self._task = asyncio.get_running_loop().create_task(self._maintain(), name="bus")
        log.info("bus up for chain %d; %d channel(s) with unacknowledged messages",
                 self.chain_id, sum(c.acked < c.sent for c in self.channels.values()))  # fmt: skip

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
        return {
            "chain_id": self.chain_id,
            "channels": {d: {"acked": c.acked, "sent": c.sent} for d, c in self.channels.items()},
            "inbox": len(self.node.inbox),
            "received": self.received,
            "rejected": self.rejected,
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
            by_dst: dict[int, list[bytes]] = {}
            for m in block.outbound:
                by_dst.setdefault(m.dst_chain, []).append(encode_message(m))
                channel = self._channel(m.dst_chain)
                if channel.acked >= channel.sent:
                    channel.last = time.monotonic()  # the resend clock starts with the first
                channel.sent = m.channel_nonce + 1
            for dst, encoded in by_dst.items():
                self._send_messages(dst, encoded)
        if block.inbound:
            for src in {m.src_chain for m in block.inbound}:
                self._report(src)

    def _send_messages(self, dst: int, encoded: Sequence[bytes]) -> None:
        for chunk in _chunks(encoded):
            self.transport.send(dst, encoded_messages_frame(self.chain_id, chunk), True)

    def _ask(self, dst: int) -> None:
        """(Re)connected towards `dst`, or started: ask it how far it got."""
        channel = self._channel(dst)
        channel.asked = True
        self.transport.send(dst, hello_frame(self.chain_id), False)

    def _acknowledged(self, dst: int, next_nonce: int) -> None:
        channel = self._channel(dst)
        if next_nonce > channel.acked:
            channel.acked = next_nonce
            channel.last = time.monotonic()
        if next_nonce > channel.sent:
            channel.sent = next_nonce  # it executed more than this process sent: a restart
        if channel.asked:
            channel.asked = False
            if channel.acked < channel.sent:
                asyncio.get_running_loop().create_task(self._resend(dst, channel))

    async def _resend(self, dst: int, channel: _Channel) -> None:
        channel.last = time.monotonic()
        encoded = await asyncio.to_thread(
            self.outbox.messages, dst, channel.acked, self.resend_window
        )
        if encoded:
            self.resent += len(encoded)
            log.info("re-sending %d message(s) to chain %d from nonce %d",
                     len(encoded), dst, channel.acked)  # fmt: skip
            self._send_messages(dst, encoded)

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
        self.transport.send(src, progress_frame(self.chain_id, progress), False)
        self.transport.settled(src, progress)

    def _on_frame(self, data: bytes) -> tuple[int, int] | None:
        try:
            frame = decode_frame(data)
            self._check(frame)
        except MalformedMessage as exc:
            self.rejected += 1
            log.warning("rejected a bus frame: %s", exc)
            return None
        if frame.kind == MESSAGES:
            return self._on_messages(frame)
        if frame.kind == HELLO:
            progress = self._committed_progress(frame.chain)
            self.transport.send(frame.chain, progress_frame(self.chain_id, progress), False)
        elif frame.kind == PROGRESS:
            self._acknowledged(frame.chain, frame.next_nonce)
        return None

    def _check(self, frame: Frame) -> None:
        if frame.chain == self.chain_id:
            raise MalformedMessage(f"bus frame claims to come from this chain ({frame.chain})")
        if frame.messages and frame.messages[0].dst_chain != self.chain_id:
            raise MalformedMessage(
                f"bus frame from chain {frame.chain} carries messages for chain "
                f"{frame.messages[0].dst_chain}, not {self.chain_id}"
            )

    def _on_messages(self, frame: Frame) -> tuple[int, int] | None:
        if not frame.messages:
            return None
        new = sum(self.node.receive(m) for m in frame.messages)
        self.received += new
        if new:
            self.wake()
        else:  # all known: the sender may be re-sending after a restart; tell it where we are
            self._report(frame.chain)
        return frame.chain, frame.messages[-1].channel_nonce


def _chunks(encoded: Sequence[bytes]) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for item in encoded:
        if chunk and (size + len(item) > FRAME_BUDGET or len(chunk) >= MAX_FRAME_MESSAGES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item)
    if chunk:
        yield chunk
