"""The inbox: cross-app messages received from other chains, not yet in a block.

Transports deliver at least once and in any order (JetStream redelivers after its ack timeout,
behind newer messages). The inbox keeps each source channel's messages by nonce and hands the
builder only the run that starts at the chain's progress (`vm.bus.inbound_progress`, read
from the newest built state), so a duplicate or an early arrival never reaches a block. It
lives in memory: after a restart the senders re-send what the chain's state has not executed.

It is bounded in total, across channels: at most `max_messages` messages and `max_bytes`
encoded bytes (and no message more than `max_ahead` past its channel's progress). When full,
an arrival is refused (its sender re-sends it later from its outbox), unless it continues its
channel's run from the progress, i.e. could execute in the next block: then the message
furthest ahead of all, one that cannot execute before a gap is filled, is let go to make room
(the sender re-sends that one too). So messages waiting on a gap can never crowd out the ones
that fill it, and nothing next to execute is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from rollup.messages import CrossMessage, encode_message

__all__ = ["Inbox", "MAX_MESSAGES", "MAX_BYTES", "MAX_AHEAD"]

Progress = Callable[[int], int]  # source chain -> next nonce the chain will execute

MAX_AHEAD = 200_000
MAX_MESSAGES = 200_000
MAX_BYTES = 128 * 1024 * 1024


class Inbox:
    def __init__(
        self,
        max_ahead: int = MAX_AHEAD,
        max_messages: int = MAX_MESSAGES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._pending: dict[int, dict[int, CrossMessage]] = {}
        self.max_ahead = max_ahead  # how far past the progress a message may arrive
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self.count = 0
        self.bytes = 0
        self.refused = 0  # arrivals turned away because the inbox was full
        self.evicted = 0  # held messages let go for ones that could execute sooner

    def __len__(self) -> int:
        return self.count

    def add(self, message: CrossMessage, progress: int) -> bool:
        """Keep `message` unless it is executed already, held already, too far ahead, or the
        inbox is full (see the module's docstring)."""
        nonce = message.channel_nonce
        if nonce < progress or nonce >= progress + self.max_ahead:
            return False
        channel = self._pending.get(message.src_chain)
        if channel is not None and nonce in channel:
            return False
        size = len(encode_message(message))
        if not self._room(size) and not self._make_room(message, progress, size):
            self.refused += 1
            return False
        self._pending.setdefault(message.src_chain, {})[nonce] = message  # (room may evict)
        self.count += 1
        self.bytes += size
        return True

    def ready(self, progress: Progress) -> bool:
        """Whether some channel's next message is here."""
        return any(progress(src) in channel for src, channel in self._pending.items())

    def take(self, progress: Progress, limit: int) -> list[CrossMessage]:
        """Up to `limit` messages that may execute next, each channel's in nonce order."""
        taken: list[CrossMessage] = []
        for src in list(self._pending):
            channel = self._pending[src]
            nonce = progress(src)  # nothing below it is held: `add` refuses it, `take` pops it
            while nonce in channel and len(taken) < limit:
                message = channel.pop(nonce)
                self.count -= 1
                self.bytes -= len(encode_message(message))
                taken.append(message)
                nonce += 1
            if not channel:
                del self._pending[src]
        return taken

    # ---- when full ----

    def _room(self, size: int) -> bool:
        return self.count < self.max_messages and self.bytes + size <= self.max_bytes

    def _make_room(self, message: CrossMessage, progress: int, size: int) -> bool:
        """Evict messages waiting behind a gap, furthest ahead first, if `message` continues
        its channel's run from `progress`; False (nothing evicted) otherwise. Frees at least
        1/64 of the capacity (count or bytes) when it can, so a full inbox is not searched at
        every arrival."""
        channel = self._pending.get(message.src_chain, {})
        if message.channel_nonce != _run_end(channel, progress):
            return False
        victims = self._behind_gaps(message.src_chain, progress)
        sizes = [len(encode_message(self._pending[src][nonce])) for src, nonce in victims]
        need_count = self.count + 1 - self.max_messages
        need_bytes = self.bytes + size - self.max_bytes
        if need_count > len(victims) or need_bytes > sum(sizes):
            return False
        batch_count, batch_bytes = self.max_messages // 64, self.max_bytes // 64
        freed_count, freed_bytes = 0, 0
        for (src, nonce), freed in zip(victims, sizes, strict=True):
            if (
                freed_count >= need_count
                and freed_bytes >= need_bytes
                and (freed_count >= batch_count or freed_bytes >= batch_bytes)
            ):
                break
            held = self._pending[src]
            del held[nonce]
            if not held:
                del self._pending[src]
            freed_count += 1
            freed_bytes += freed
        self.count -= freed_count
        self.bytes -= freed_bytes
        self.evicted += freed_count
        return True

    def _behind_gaps(self, arriving_src: int, arriving_progress: int) -> list[tuple[int, int]]:
        """Held messages that cannot execute before a gap is filled, furthest ahead first.

        The progress of channels other than the arriving one is not known here; a message is
        behind a gap if a lower nonce of its channel is missing above the channel's lowest
        held nonce (a channel's lowest held message is kept: it may well be its next)."""
        found: list[tuple[int, int, int]] = []  # (distance ahead, src, nonce)
        for src, channel in self._pending.items():
            start = arriving_progress if src == arriving_src else min(channel)
            end = _run_end(channel, start)
            found += [(nonce - start, src, nonce) for nonce in channel if nonce > end]
        found.sort(reverse=True)
        return [(src, nonce) for _, src, nonce in found]


def _run_end(channel: dict[int, CrossMessage], start: int) -> int:
    """The first nonce from `start` on that `channel` does not hold."""
    nonce = start
    while nonce in channel:
        nonce += 1
    return nonce
