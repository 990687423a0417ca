"""Continuous block production on the event loop.

A block is built as soon as there is executable work and at least `interval` has passed since
the previous one; its write runs in the store's writer thread while the next block is built
(at most `max_in_flight` writes queued). A write that fails stops the node: it restarts from
its database and loses nothing it acknowledged, because only written blocks were answered.

With a `heartbeat`, a chain with nothing to do still makes an empty block that often: a node
that posts to the L1 must keep committing output roots, or anyone could open the bridge's
escape hatch (bridge/README.md) of a live but idle chain.

Block production goes before JSON-RPC work on the loop they share: once a block is due (work
waiting and its interval passed), request handlers that reach `turn()` wait for that build
instead of running ahead of it, so a flood of requests delays a block by at most the one
handler already running (and the parsing of what arrived), never by the flood. A handler
waits for one build at most, so requests are never starved either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from sequencer.node import Sequencer
from services.metrics import BUILD_BUCKETS, Durations
from vm.stf import SealedBlock

__all__ = ["BlockProducer"]

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BlockProducer:
    def __init__(
        self,
        node: Sequencer,
        interval_ms: int,
        max_in_flight: int = 2,
        heartbeat_s: float | None = None,
    ) -> None:
        self.node = node
        self.interval = interval_ms / 1000
        self.heartbeat = heartbeat_s
        self.max_in_flight = max_in_flight
        self._wake = asyncio.Event()
        self._in_flight: deque[tuple[SealedBlock, asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._due_at: float | None = None  # monotonic time the next build is due, once known
        self._turn: asyncio.Future[None] | None = None  # what waiting handlers await
        self.failed: BaseException | None = None
        # what the metrics read (services/metrics.py): counted per block, never per transaction
        self.blocks = 0  # built and made durable by this process
        self.transactions = 0  # in those blocks
        self.build_seconds = Durations(BUILD_BUCKETS)

    def wake(self) -> None:
        self._wake.set()

    async def turn(self) -> None:
        """Let a due block go first: wait until it is built (see the module docstring)."""
        if self._due_at is None or time.monotonic() < self._due_at:
            return
        if self._turn is None:
            self._turn = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._turn)

    def _built(self) -> None:
        self._due_at = None
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.set_result(None)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="block-producer")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A producer that died of a bug must not leave a node that answers but never builds:
        stop the process, so the supervisor restarts it from its database."""
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())  # type: ignore[arg-type]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._built()  # nothing is due any more: let waiting handlers go
        while self._in_flight:
            await self._finish_oldest()

    async def _run(self) -> None:
        last = 0.0
        while True:
            idle = not self.node.has_work() and not await self._wait_for_work()
            self._due_at = last + self.interval
            delay = self._due_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            last = time.monotonic()
            try:
                sealed = self.node.build_block(now_ms(), empty_ok=idle)
            finally:
                self._built()
            if sealed is not None:
                self.build_seconds.observe(time.monotonic() - last)
                await self._commit(sealed)
            else:
                await asyncio.sleep(0)

    async def _wait_for_work(self) -> bool:
        """Sleep until woken (True), or until the heartbeat is due (False: build empty). Its
        clock is the newest block's age: wake-ups that bring nothing (the L1 follower's, each
        L1 block) must not put it off."""
        self._wake.clear()
        if self.heartbeat is None:
            await self._wake.wait()
            return True
        due = self._last_block_time() + self.heartbeat - time.monotonic()
        # not asyncio.wait_for: on 3.11 it can swallow a cancellation (stop) that arrives as
        # the wake-up does, and the producer would never stop
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            done, _ = await asyncio.wait({waiter}, timeout=max(due, 0.0))
        finally:
            waiter.cancel()
        return bool(done)

    def _last_block_time(self) -> float:
        """When the newest block was sealed, on the monotonic clock."""
        age_s = now_ms() / 1000 - self.node.head.timestamp_ms / 1000
        return time.monotonic() - max(age_s, 0.0)

    async def _commit(self, sealed: SealedBlock) -> None:
        while len(self._in_flight) >= self.max_in_flight:
            await self._finish_oldest()
        future = asyncio.wrap_future(self.node.commit(sealed))
        future.add_done_callback(lambda _f: self._publish_ready())
        self._in_flight.append((sealed, future))

    def _publish_ready(self) -> None:
        """Publish written blocks in order, as soon as their writes finish."""
        while self._in_flight and self._in_flight[0][1].done():
            sealed, future = self._in_flight.popleft()
            error = future.exception()
            if error is not None:
                self._fail(error)
                return
            self.node.mark_committed(sealed)
            self.blocks += 1
            self.transactions += len(sealed.block.transactions)

    async def _finish_oldest(self) -> None:
        _sealed, future = self._in_flight[0]
        with contextlib.suppress(Exception):  # a failed write is handled by _publish_ready
            await asyncio.shield(future)
        self._publish_ready()

    def _fail(self, error: BaseException) -> None:
        self.failed = error
        log.critical("block write failed, stopping: %s", error)
        raise SystemExit(70)
