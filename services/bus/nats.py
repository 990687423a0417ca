"""The NATS JetStream bus transport, for chains on many machines.

    stream   ROLLUP_BUS, subjects rollup.bus.msg.>, work-queue retention, file storage,
             bounded (frames per channel, bytes, age; a publish past a bound is refused)
    messages rollup.bus.msg.<dst>.<src>   JetStream; the durable push consumer rollup-bus-<dst>
                                          (filter rollup.bus.msg.<dst>.*) delivers them on
                                          rollup.bus.deliver.<dst>; header Nats-Msg-Id =
                                          <src>-<dst>-<hash of the frame>
    control  rollup.bus.ctl.<dst>.<src>   core NATS (HELLO, PROGRESS: lost ones are re-sent)

Subjects and permissions are in services/bus/nats_auth.py: each chain connects as its own
user (credentials from a 0600 file, never in the URL it logs) and may send only as itself.
The stream and the consumers are created by an admin (`provision`, run by whoever runs the
server: the devnet supervisor, `rollup bench bus`); a node creates them itself only when they
are missing and its user may (an operator's server without permissions, say).

A MESSAGES frame is acknowledged to JetStream only once the receiving chain has committed its
last message (`settled`), so a receiver that crashes gets it again after the ack wait; by then
newer frames may have arrived, which the inbox holds until the channel's gap is filled. A frame
the receiver refuses (malformed, forged) is terminated (never redelivered). JetStream syncs its
files to disk only every two minutes by default: a killed nats-server loses nothing the OS
has, a machine crash may; either way the senders' outboxes re-send what no receiver
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse, urlunparse

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from rollup.crypto import keccak
from services.bus.nats_auth import (
    STREAM,
    STREAM_SUBJECTS,
    NatsCredentials,
    consumer_filter,
    consumer_name,
    ctl_filter,
    ctl_subject,
    deliver_subject,
    inbox_prefix,
    msg_subject,
)
from services.bus.transport import Connected, Deliver
from services.bus.wire import MAX_FRAME

__all__ = ["NatsTransport", "STREAM", "provision", "redact"]

log = logging.getLogger(__name__)

ACK_WAIT = 5.0  # seconds before JetStream redelivers an unacknowledged frame
PUBLISH_TIMEOUT = 2.0
RECONNECT_WAIT = 0.25
MAX_QUEUED = 10_000
# The stream's bounds. A chain may publish to any destination as itself, one that does not
# exist (or never reads) included: without them its frames would stay forever. Past a bound a
# publish is refused (discard new), and the sender's outbox re-sends what no receiver
# acknowledged, so a bound costs a delay, never a message.
MAX_FRAMES_PER_CHANNEL = 10_000  # per subject: one (destination, source) pair
MAX_STREAM_BYTES = 4 * 1024**3
MAX_FRAME_AGE_S = 7 * 24 * 3600.0


def redact(url: str) -> str:
    """`url` without a password, for logs."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def stream_config() -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        subjects=[STREAM_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
        max_msg_size=MAX_FRAME,
        max_msgs_per_subject=MAX_FRAMES_PER_CHANNEL,
        max_bytes=MAX_STREAM_BYTES,
        max_age=MAX_FRAME_AGE_S,
        discard=DiscardPolicy.NEW,
        discard_new_per_subject=True,
    )


def _bounded(config: StreamConfig) -> bool:
    wanted = stream_config()
    return all(
        getattr(config, name) == getattr(wanted, name)
        for name in ("max_msgs_per_subject", "max_bytes", "max_age", "discard")
    )


def consumer_config(chain_id: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=consumer_name(chain_id),
        deliver_subject=deliver_subject(chain_id),
        filter_subject=consumer_filter(chain_id),
        ack_wait=ACK_WAIT,
        max_ack_pending=-1,
    )


async def provision(url: str, credentials: NatsCredentials | None, chains: Iterable[int]) -> None:
    """As the admin: create the stream and each chain's consumer, or fix ones whose filter or
    delivery subject is not ours (left by an older version)."""
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0, **_auth(credentials))
    try:
        js = nc.jetstream(timeout=5.0)
        try:
            stream = await js.stream_info(STREAM)
        except NotFoundError:
            await js.add_stream(stream_config())
        else:
            if not _bounded(stream.config):  # made by a version without the bounds
                await js.update_stream(stream_config())
        for chain_id in chains:
            wanted = consumer_config(chain_id)
            try:
                info = await js.consumer_info(STREAM, consumer_name(chain_id))
            except NotFoundError:
                info = None
            if info is not None and (info.config.filter_subject, info.config.deliver_subject) != (
                wanted.filter_subject,
                wanted.deliver_subject,
            ):
                await js.delete_consumer(STREAM, consumer_name(chain_id))
                info = None
            if info is None:
                await js.add_consumer(STREAM, config=wanted)
    finally:
        await nc.close()


def _auth(credentials: NatsCredentials | None) -> dict[str, Any]:
    if credentials is None:
        return {}
    return {"user": credentials.user, "password": credentials.password}


class NatsTransport:
    def __init__(self, url: str, credentials: NatsCredentials | None = None) -> None:
        self.url, self.credentials = url, credentials
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
                    self.url,
                    name=f"rollup-bus-{self._chain_id}",
                    connect_timeout=2,
                    reconnect_time_wait=RECONNECT_WAIT,
                    max_reconnect_attempts=-1,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                    disconnected_cb=self._disconnected,
                    inbox_prefix=inbox_prefix(self._chain_id),
                    **_auth(self.credentials),
                )
                await self._subscribe(self._nc)
                break
            except Exception as exc:  # noqa: BLE001 - any failure: try again
                log.warning("NATS at %s not usable yet: %s", redact(self.url), exc)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(RECONNECT_WAIT)
        self._ready.set()
        log.info(
            "bus on NATS %s as chain %d (user %s)",
            redact(self.url),
            self._chain_id,
            self.credentials.user if self.credentials else "from the URL or none",
        )
        await self._reconnected()

    async def _subscribe(self, nc: Client) -> None:
        js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        try:
            await js.stream_info(STREAM)
        except NotFoundError:  # nobody provisioned this server: try to, as the devnet did
            try:
                await js.add_stream(stream_config())
            except BadRequestError as exc:  # created meanwhile with other settings: use it
                log.warning("using the existing stream %s: %s", STREAM, exc)
        chain = self._chain_id
        with contextlib.suppress(NotFoundError):  # (missing: js.subscribe creates it)
            info = await js.consumer_info(STREAM, consumer_name(chain))
            if info.config.filter_subject != consumer_filter(chain):
                log.error(
                    "consumer %s filters %s, not %s: this chain will receive nothing; "
                    "delete it, or let the admin provision it again",
                    consumer_name(chain),
                    info.config.filter_subject,
                    consumer_filter(chain),
                )
        await nc.subscribe(ctl_filter(chain), cb=self._on_control)
        await js.subscribe(
            consumer_filter(chain),
            durable=consumer_name(chain),
            stream=STREAM,
            cb=self._on_message,
            manual_ack=True,
            config=consumer_config(chain),
        )
        self._js = js

    async def _reconnected(self) -> None:
        """Ask every chain we talk to for its progress again."""
        if self._connected is not None:
            for dst in list(self._queues):
                self._connected(dst)

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS %s", redact(self.url))

    async def _error(self, exc: Exception) -> None:
        if "ermission" in str(exc) or "uthorization" in str(exc):
            log.warning("NATS refused: %s", exc)
        else:
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
            await self._nc.publish(ctl_subject(dst_chain, self._chain_id), frame)

    async def _publisher(self, dst_chain: int, queue: asyncio.Queue[bytes]) -> None:
        """Publish one destination's frames in order, each acknowledged by JetStream."""
        await self._ready.wait()
        while True:
            frame = await queue.get()
            msg_id = _dedupe_id(self._chain_id, dst_chain, frame)
            try:
                assert self._js is not None
                await self._js.publish(
                    msg_subject(dst_chain, self._chain_id),
                    frame,
                    timeout=PUBLISH_TIMEOUT,
                    headers={"Nats-Msg-Id": msg_id},
                )
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
