"""The NATS JetStream bus transport, for chains on many machines.

    stream   ROLLUP_BUS, subjects rollup.bus.msg.>, work-queue retention, file storage
    messages rollup.bus.msg.<dst_chain>   JetStream, one durable push consumer per chain
                                          (rollup-bus-<chain>), header Nats-Msg-Id =
                                          <src>-<dst>-<first nonce>-<last nonce>
    control  rollup.bus.ctl.<dst_chain>   core NATS (HELLO, PROGRESS: lost ones are re-sent)

A MESSAGES frame is acknowledged to JetStream only once the receiving chain has committed its
last message (`settled`), so a receiver that crashes gets it again after the ack wait; by then
newer frames may have arrived, which the inbox holds until the channel's gap is filled. A frame
that does not decode is terminated (never redelivered). JetStream syncs its files to disk only
every two minutes by default: a killed nats-server loses nothing the OS has, a machine crash
may; either way the senders' outboxes re-send what no receiver acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from rollup.crypto import keccak
from services.bus.transport import Connected, Deliver
from services.bus.wire import MAX_FRAME

__all__ = ["NatsTransport", "STREAM"]

log = logging.getLogger("bus.nats")

STREAM = "ROLLUP_BUS"
ACK_WAIT = 5.0  # seconds before JetStream redelivers an unacknowledged frame
PUBLISH_TIMEOUT = 2.0
RECONNECT_WAIT = 0.25
MAX_QUEUED = 10_000


def msg_subject(chain_id: int) -> str:
    return f"rollup.bus.msg.{chain_id}"


def ctl_subject(chain_id: int) -> str:
    return f"rollup.bus.ctl.{chain_id}"


class NatsTransport:
    def __init__(self, url: str) -> None:
        self.url = url
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._deliver: Deliver | None = None
        self._connected: Connected | None = None
        self._chain_id = 0
        self._queues: dict[int, asyncio.Queue[bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._held: dict[int, list[tuple[int, Msg]]] = {}  # src -> (last nonce, unacked msg)
        self._ready = asyncio.Event()
        self._closing = False

    async def start(self, chain_id: int, deliver: Deliver, connected: Connected) -> None:
        self._chain_id, self._deliver, self._connected = chain_id, deliver, connected
        self._tasks.append(asyncio.get_running_loop().create_task(self._connect_loop()))

    async def _connect_loop(self) -> None:
        """Connect, retrying until the server answers; nats-py reconnects by itself after."""
        while True:
            try:
                self._nc = await nats.connect(
                    self.url, name=f"rollup-bus-{self._chain_id}", connect_timeout=2,
                    reconnect_time_wait=RECONNECT_WAIT, max_reconnect_attempts=-1,
                    reconnected_cb=self._reconnected, error_cb=self._error,
                    disconnected_cb=self._disconnected,
                )  # fmt: skip
                await self._subscribe(self._nc)
                break
            except Exception as exc:  # noqa: BLE001 - any failure: try again
                log.warning("NATS at %s not usable yet: %s", self.url, exc)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(RECONNECT_WAIT)
        self._ready.set()
        log.info("bus on NATS %s as chain %d", self.url, self._chain_id)
        await self._reconnected()

    async def _subscribe(self, nc: Client) -> None:
        js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        config = StreamConfig(
            name=STREAM, subjects=["rollup.bus.msg.>"], retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE, duplicate_window=120.0, max_msg_size=MAX_FRAME,
        )  # fmt: skip
        try:
            await js.add_stream(config)
        except BadRequestError as exc:  # exists with other settings: use it as it is
            log.warning("using the existing stream %s: %s", STREAM, exc)
        await nc.subscribe(ctl_subject(self._chain_id), cb=self._on_control)
        await js.subscribe(
            msg_subject(self._chain_id), durable=f"rollup-bus-{self._chain_id}", stream=STREAM,
            cb=self._on_message, manual_ack=True,
            config=ConsumerConfig(ack_wait=ACK_WAIT, max_ack_pending=-1),
        )  # fmt: skip
        self._js = js

    async def _reconnected(self) -> None:
        """Ask every chain we talk to for its progress again."""
        if self._connected is not None:
            for dst in list(self._queues):
                self._connected(dst)

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS %s", self.url)

    async def _error(self, exc: Exception) -> None:
        log.debug("NATS: %s", exc)

    # ---- sending ----

    def send(self, dst_chain: int, frame: bytes, durable: bool) -> None:
        if not durable:
            if self._nc is not None and self._nc.is_connected:
                asyncio.get_running_loop().create_task(self._publish_control(dst_chain, frame))
            return
        queue = self._queues.get(dst_chain)
        if queue is None:
            queue = self._queues[dst_chain] = asyncio.Queue(MAX_QUEUED)
            task = asyncio.get_running_loop().create_task(self._publisher(dst_chain, queue))
            self._tasks.append(task)
        with contextlib.suppress(asyncio.QueueFull):  # dropped: the outbox re-sends it
            queue.put_nowait(frame)

    async def _publish_control(self, dst_chain: int, frame: bytes) -> None:
        with contextlib.suppress(Exception):
            assert self._nc is not None
            await self._nc.publish(ctl_subject(dst_chain), frame)

    async def _publisher(self, dst_chain: int, queue: asyncio.Queue[bytes]) -> None:
        """Publish one destination's frames in order, each acknowledged by JetStream."""
        await self._ready.wait()
        while True:
            frame = await queue.get()
            msg_id = _dedupe_id(self._chain_id, dst_chain, frame)
            try:
                assert self._js is not None
                await self._js.publish(msg_subject(dst_chain), frame, timeout=PUBLISH_TIMEOUT,
                                       headers={"Nats-Msg-Id": msg_id})  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - lost: the outbox re-sends it
                log.debug("publish to chain %d failed: %s", dst_chain, exc)

    # ---- receiving ----

    async def _on_control(self, msg: Msg) -> None:
        assert self._deliver is not None
        self._deliver(msg.data)

    async def _on_message(self, msg: Msg) -> None:
        assert self._deliver is not None
        position = self._deliver(msg.data)
        if position is None:
            with contextlib.suppress(Exception):
                await msg.term()
            return
        src, last = position
        self._held.setdefault(src, []).append((last, msg))

    def settled(self, src_chain: int, next_nonce: int) -> None:
        held = self._held.get(src_chain)
        if not held:
            return
        done = [m for last, m in held if last < next_nonce]
        if not done:
            return
        self._held[src_chain] = [(last, m) for last, m in held if last >= next_nonce]
        asyncio.get_running_loop().create_task(_ack_all(done))

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()


async def _ack_all(msgs: list[Msg]) -> None:
    for msg in msgs:
        with contextlib.suppress(Exception):  # a lost ack means one harmless redelivery
            await msg.ack()


def _dedupe_id(src: int, dst: int, frame: bytes) -> str:
    """Same id for a re-sent identical frame, so JetStream stores it once (within 2 minutes)."""
    return f"{src}-{dst}-{keccak(frame)[:12].hex()}"

