"""The inbox: cross-app messages received from other chains, not yet in a block.

Transports deliver at least once and in any order (JetStream redelivers after its ack timeout,
behind newer messages). The inbox keeps each source channel's messages by nonce and hands the
builder only the run that starts at the chain's progress (`vm.bus.inbound_progress`, read
from the newest built state), so a duplicate or an early arrival never reaches a block. It
lives in memory: after a restart the senders re-send what the chain's state has not executed.
"""

from __future__ import annotations

from collections.abc import Callable

from rollup.messages import CrossMessage

__all__ = ["Inbox"]

Progress = Callable[[int], int]  # source chain -> next nonce the chain will execute


class Inbox:
    def __init__(self, max_ahead: int = 200_000) -> None:
        self._pending: dict[int, dict[int, CrossMessage]] = {}
        self.max_ahead = max_ahead  # how far past the progress a message may arrive

    def __len__(self) -> int:
        return sum(len(channel) for channel in self._pending.values())

    def add(self, message: CrossMessage, progress: int) -> bool:
        """Keep `message` unless it is executed already, held already, or too far ahead."""
        nonce = message.channel_nonce
        if nonce < progress or nonce >= progress + self.max_ahead:
            return False
        channel = self._pending.setdefault(message.src_chain, {})
        if nonce in channel:
            return False
        channel[nonce] = message
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
                taken.append(channel.pop(nonce))
                nonce += 1
            if not channel:
                del self._pending[src]
        return taken
