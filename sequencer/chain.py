"""The node's view of its chain: state at the newest executed block, with history.

`ChainState` answers `get(key)` for the newest executed block from an in-memory map that
reads through to the store's checkpoint, and `reader_at(n)` for any block still inside the
history window, from the value each key had before each later block. Blocks are applied
here when they are built; readers ask only for committed block numbers.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from rollup.errors import StateUnavailable

__all__ = ["ChainState", "HistoryReader"]

Changes = dict[bytes, tuple[bytes | None, bytes | None]]


class ChainState:
    def __init__(self, load: Callable[[bytes], bytes | None], max_history_entries: int = 2_000_000):
        self._load = load
        self._values: dict[bytes, bytes | None] = {}
        self.complete = False  # True once every stored key is in _values: a miss is a zero
        # key -> ([block numbers], [value before that block]) for blocks inside the window
        self._key_history: dict[bytes, tuple[list[int], list[bytes | None]]] = {}
        self._window: deque[tuple[int, list[bytes]]] = deque()
        self._entries = 0
        self._max_entries = max_history_entries
        self.oldest_history = 0  # blocks below this number are outside the window
        self.executed = -1

    def get(self, key: bytes) -> bytes | None:
        values = self._values
        if key in values:
            return values[key]
        if self.complete:
            return None
        value = self._load(key)
        values[key] = value
        return value

    def preload(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Hold the whole checkpointed state in memory, so execution never waits on a read."""
        self._values.update(items)
        self.complete = True

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key with a value (only meaningful once `complete`)."""
        return ((k, v) for k, v in self._values.items() if v is not None)

    def items_at(self, block: int) -> Iterator[tuple[bytes, bytes]]:
        """Every key with a value after `block` (the whole state in memory is required)."""
        if not self.complete:
            raise StateUnavailable("the whole state is not in memory on this node")
        if block < self.oldest_history:
            raise StateUnavailable(f"historical state for block {block} is not available")
        history = self._key_history
        for key, value in list(self._values.items()):
            if key in history and block < self.executed:
                value = self.value_at(key, block)
            if value is not None:
                yield key, value

    def apply(self, number: int, changes: Changes) -> None:
        """Make `changes` (block `number`) current, keeping the prior values as history."""
        values, history = self._values, self._key_history
        for key, (before, after) in changes.items():
            values[key] = after
            entry = history.get(key)
            if entry is None:
                history[key] = ([number], [before])
            else:
                entry[0].append(number)
                entry[1].append(before)
        self._window.append((number, list(changes)))
        self._entries += len(changes)
        self.executed = number
        while self._entries > self._max_entries and len(self._window) > 1:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        number, keys = self._window.popleft()
        for key in keys:
            numbers, befores = self._key_history[key]
            del numbers[0], befores[0]
            if not numbers:
                del self._key_history[key]
        self._entries -= len(keys)
        self.oldest_history = number

    def value_at(self, key: bytes, block: int) -> bytes | None:
        """The value of `key` after block `block` was applied."""
        if block < self.oldest_history:
            raise StateUnavailable(f"historical state for block {block} is not available")
        entry = self._key_history.get(key)
        if entry is not None:
            numbers, befores = entry
            i = bisect.bisect_right(numbers, block)
            if i < len(numbers):
                return befores[i]
        return self.get(key)

    def reader_at(self, block: int) -> HistoryReader:
        if block < self.oldest_history:
            raise StateUnavailable(f"historical state for block {block} is not available")
        return HistoryReader(self, block)


class HistoryReader:
    """A `StateReader` frozen at one block."""

    __slots__ = ("_chain", "_block")

    def __init__(self, chain: ChainState, block: int) -> None:
        self._chain, self._block = chain, block

    def get(self, key: bytes) -> bytes | None:
        chain = self._chain
        if self._block >= chain.executed:
            return chain.get(key)
        return chain.value_at(key, self._block)
