"""The benchmarks' lean JSON-RPC connection for timed sends, and the receipt waits and reply
checks around it.

- `RawHttpConnection`: HTTP/1.1 keep-alive over asyncio streams; the client shares the machine
  with the node, so it must cost as little CPU as possible. `HttpxConnection` is the reference
  (`--client httpx`) to check that the client is not the bottleneck. `connect` opens either.
- `wait_receipts`: polls eth_getTransactionReceipt in batches until every hash has one;
  `Nudge` mines what Anvil's automine leaves stuck (the peer only, counted).
- `check_send_replies`: which sends of a batch were not answered with their hash.

Set-up and checks outside the timed sections use `benchmarks.common.rpc` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from benchmarks.common import BenchError
from benchmarks.signing import SignedTx
from services.rpcclient import request

__all__ = [
    "Connection",
    "HttpxConnection",
    "Nudge",
    "RawHttpConnection",
    "batch_replies",
    "batch_request_body",
    "check_send_replies",
    "connect",
    "request_body",
    "wait_receipts",
]

RECEIPT_BATCH = 1_000


class Connection(Protocol):
    async def post(self, body: bytes) -> bytes: ...

    async def close(self) -> None: ...


class RawHttpConnection:
    """One keep-alive HTTP/1.1 connection; POSTs a JSON body and returns the response body."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nConnection: keep-alive\r\nContent-Length: "
        ).encode()

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=16 * 1024 * 1024
        )

    async def post(self, body: bytes) -> bytes:
        if self._writer is None or self._writer.is_closing():
            await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length, chunked, close = -1, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            data = await self._read_chunked()
        elif length >= 0:
            data = await self._reader.readexactly(length)
        else:
            data = await self._reader.read()
            close = True
        if close:
            await self.close()
        if status != b"200":
            raise BenchError(f"HTTP {status.decode()}: {data[:200]!r}")
        return data

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = self._reader = None


class HttpxConnection:
    """The same over httpx.AsyncClient (one keep-alive connection), for comparison."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self._client = httpx.AsyncClient(
            trust_env=False,
            timeout=120.0,
            limits=httpx.Limits(max_connections=1),
            headers={"content-type": "application/json"},
        )

    async def open(self) -> None:
        return None

    async def post(self, body: bytes) -> bytes:
        response = await self._client.post(self.url, content=body)
        if response.status_code != 200:
            raise BenchError(f"HTTP {response.status_code}: {response.content[:200]!r}")
        return response.content

    async def close(self) -> None:
        await self._client.aclose()


async def connect(url: str, client: str = "raw") -> Connection:
    """An open connection to `url`: "raw" (RawHttpConnection) or "httpx"."""
    conn: RawHttpConnection | HttpxConnection
    if client == "raw":
        conn = RawHttpConnection(url)
    elif client == "httpx":
        conn = HttpxConnection(url)
    else:
        raise BenchError(f"unknown client {client!r} (raw or httpx)")
    await conn.open()
    return conn


def request_body(method: str, *params: Any) -> bytes:
    """One JSON-RPC request, serialized."""
    return orjson.dumps(request(method, params))


def batch_request_body(method: str, params: Iterable[Sequence[Any]], first_id: int = 0) -> bytes:
    """A JSON-RPC batch: `method` with each of `params`, ids counted from `first_id`."""
    return orjson.dumps([request(method, p, first_id + i) for i, p in enumerate(params)])


def batch_replies(reply_body: bytes, count: int) -> list[dict[str, Any]]:
    """The answers to a batch of `count` requests with ids 0..count-1, in id order."""
    replies = orjson.loads(reply_body)
    if not isinstance(replies, list) or len(replies) != count:
        raise BenchError(f"expected a batch reply of {count}, got {str(replies)[:300]}")
    out: list[dict[str, Any]] = [{}] * count
    for reply in replies:
        out[reply["id"]] = reply
    return out


# ---------------------------------------------------------------- checks


@dataclass
class Nudge:
    """Anvil's automine can leave ready transactions unmined until another one arrives
    (foundry-rs/foundry#10122); when receipts make no progress for `after` seconds, `evm_mine`
    mines them. Used for the peer only, and every use is counted in the result."""

    after: float = 0.1
    count: int = 0

    async def __call__(self, conn: Connection) -> None:
        self.count += 1
        reply = orjson.loads(await conn.post(request_body("evm_mine")))
        if "error" in reply:
            raise BenchError(f"evm_mine: {reply['error']}")


async def wait_receipts(
    conn: Connection,
    hashes: Sequence[str],
    timeout: float = 60.0,
    poll: float = 0.002,
    nudge: Nudge | None = None,
) -> dict[str, Any]:
    """Poll eth_getTransactionReceipt (in batches) until every hash has a receipt."""
    receipts: dict[str, Any] = {}
    pending = list(hashes)
    start = progress = time.monotonic()
    while pending:
        missing: list[str] = []
        for i in range(0, len(pending), RECEIPT_BATCH):
            part = pending[i : i + RECEIPT_BATCH]
            body = batch_request_body("eth_getTransactionReceipt", ([h] for h in part))
            replies = batch_replies(await conn.post(body), len(part))
            for h, reply in zip(part, replies, strict=True):
                if "error" in reply:
                    raise BenchError(f"eth_getTransactionReceipt({h}): {reply['error']}")
                if reply["result"] is None:
                    missing.append(h)
                else:
                    receipts[h] = reply["result"]
        now = time.monotonic()
        if len(missing) < len(pending):
            progress = now
        pending = missing
        if pending:
            if now - start > timeout:
                raise BenchError(f"{len(pending)} transactions have no receipt after {timeout} s")
            if nudge is not None and now - progress > nudge.after:
                await nudge(conn)
                progress = now
            await asyncio.sleep(poll)
    return receipts


def check_send_replies(reply_body: bytes, txs: Sequence[SignedTx], first_id: int) -> list[str]:
    """Error strings for every send of the batch whose answer is not its hash."""
    replies = orjson.loads(reply_body)
    if not isinstance(replies, list):
        return [f"batch failed: {str(replies)[:300]}"] * len(txs)
    errors: list[str] = []
    seen = 0
    for reply in replies:
        i = reply.get("id")
        if not isinstance(i, int) or not 0 <= i - first_id < len(txs):
            errors.append(f"unexpected reply {str(reply)[:200]}")
            continue
        seen += 1
        tx = txs[i - first_id]
        if "error" in reply:
            errors.append(f"sender {tx.sender} nonce {tx.nonce}: {reply['error']}")
        elif reply.get("result") != tx.hash_hex:
            errors.append(f"sender {tx.sender} nonce {tx.nonce}: result {reply.get('result')}")
    if seen != len(txs):
        errors.append(f"{len(txs) - seen} sends of the batch got no answer")
    return errors
