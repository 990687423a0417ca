"""The embedded bus transport: Unix domain sockets between the node processes of one machine.

Every chain listens on `DIR/<chain_id>.sock`; a node sends to a chain by connecting to its
socket (and reconnecting when it restarts). A stream carries frames as u32 BE length ++ frame.

DIR is private: created with mode 0700, and an existing DIR that other users may enter is
made 0700 (with a warning) when it is ours and refused when it is not. A connection from a
process of another user is closed unread (SO_PEERCRED), in case DIR's mode is changed later.
Neither keeps out the owner's other processes: what they send is checked like any frame
(services/bus/service.py), and only the source sequencer's signature makes it count.
Frames written while a peer is away are queued (up to MAX_QUEUED) or dropped: the sender's
durable outbox re-sends whatever the receiver does not acknowledge, so losing frames here only
delays them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from collections import deque
from pathlib import Path

from services.bus.transport import BusConfigError, Connected, Deliver
from services.bus.wire import MAX_FRAME

__all__ = ["EmbeddedTransport", "MAX_SOCKET_PATH", "private_directory"]

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the terminating NUL on Linux
MAX_QUEUED = 10_000
MAX_BUFFERED = 64 * 1024 * 1024  # bytes written but not yet taken by a slow peer
RECONNECT = (0.02, 1.0)  # first and longest wait between connection attempts


class EmbeddedTransport:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._server: asyncio.AbstractServer | None = None
        self._peers: dict[int, _Peer] = {}
        self._deliver: Deliver | None = None
        self._connected: Connected | None = None
        self._readers: dict[asyncio.StreamWriter, asyncio.Task[None] | None] = {}

    def socket_path(self, chain_id: int) -> Path:
        path = self.directory / f"{chain_id}.sock"
        if len(str(path)) > MAX_SOCKET_PATH:
            raise BusConfigError(f"bus socket path {path} is longer than {MAX_SOCKET_PATH} bytes")
        return path

    async def start(self, chain_id: int, deliver: Deliver, connected: Connected) -> None:
        self._deliver, self._connected = deliver, connected
        private_directory(self.directory)
        path = self.socket_path(chain_id)
        if path.exists():
            if await _answers(path):
                raise BusConfigError(f"another node of chain {chain_id} listens on {path}")
            path.unlink()  # left by a node that was killed
        self._server = await asyncio.start_unix_server(self._serve, path=str(path))

    def send(self, dst_chain: int, frame: bytes, durable: bool) -> None:
        peer = self._peers.get(dst_chain)
        if peer is None:
            peer = self._peers[dst_chain] = _Peer(self, dst_chain)
        peer.send(frame)

    def settled(self, src_chain: int, next_nonce: int) -> None:
        """Nothing to acknowledge: sockets keep no messages."""

    async def close(self) -> None:
        for peer in self._peers.values():
            await peer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        # Closing the connections ends their readers normally (cancelling them would make
        # asyncio's stream server log the CancelledError).
        for writer in list(self._readers):
            writer.close()
        tasks = [t for t in self._readers.values() if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._readers[writer] = asyncio.current_task()
        try:
            uid = _peer_uid(writer)
            if uid is not None and uid != os.getuid():
                log.warning("closing a bus connection from user id %d (not ours)", uid)
                return
            while True:
                header = await reader.readexactly(4)
                size = int.from_bytes(header, "big")
                if size > MAX_FRAME:
                    log.warning("closing a bus connection: frame of %d bytes announced", size)
                    return
                frame = await reader.readexactly(size)
                assert self._deliver is not None
                self._deliver(frame)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._readers.pop(writer, None)
            writer.close()


def private_directory(directory: Path) -> None:
    """Make sure `directory` exists and only its owner, us, can enter it (mode 0700)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise BusConfigError(
            f"bus directory {directory} belongs to user id {info.st_uid}, "
            f"not to this process's ({os.getuid()})"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        os.chmod(directory, 0o700)
        log.warning(
            "bus directory %s was mode %04o: other users could reach the sockets; made it 0700",
            directory,
            mode,
        )


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None  # not Linux: the directory's mode is the guard
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


async def _answers(path: Path) -> bool:
    try:
        _reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    return True


class _Peer:
    """The connection towards one chain, re-established by its own task whenever it breaks."""

    def __init__(self, transport: EmbeddedTransport, chain_id: int) -> None:
        self.transport, self.chain_id = transport, chain_id
        self.writer: asyncio.StreamWriter | None = None
        self.queue: deque[bytes] = deque()
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"bus-{chain_id}")

    def send(self, frame: bytes) -> None:
        writer = self.writer
        if writer is not None and not writer.is_closing():
            if writer.transport.get_write_buffer_size() > MAX_BUFFERED:
                return  # a stalled peer: drop, the outbox re-sends
            writer.write(len(frame).to_bytes(4, "big") + frame)
            return
        if len(self.queue) < MAX_QUEUED:
            self.queue.append(frame)

    async def _run(self) -> None:
        delay = RECONNECT[0]
        while True:
            try:
                path = self.transport.socket_path(self.chain_id)
                reader, writer = await asyncio.open_unix_connection(str(path))
            except (OSError, BusConfigError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT[1])
                continue
            delay = RECONNECT[0]
            _tune(writer)
            while self.queue:
                frame = self.queue.popleft()
                writer.write(len(frame).to_bytes(4, "big") + frame)
            self.writer = writer
            if self.transport._connected is not None:
                self.transport._connected(self.chain_id)
            # The peer never writes to us on this connection: EOF means it went away.
            with contextlib.suppress(ConnectionError):
                await reader.read()
            self.writer = None
            writer.close()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.writer is not None:
            self.writer.close()


def _tune(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
