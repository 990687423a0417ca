"""What both benchmarks share: the processes under test, pre-signed transfers, a lean client.

- `NodeUnderTest` / `AnvilUnderTest`: a fresh node of the token template in a temp dir (run by
  `services.launch.NodeProcess`, exactly as an operator runs it) and Anvil with default automine
  (`services.anvil.AnvilProcess`) as the peer.
- `sign_transfers`: plain type-2 value transfers to distinct random recipients from the ten dev
  accounts, each with its own nonce sequence, signed with coincurve outside any timed section.
- `RawHttpConnection`: HTTP/1.1 keep-alive over asyncio streams; the client shares the machine
  with the node, so it must cost as little CPU as possible. `HttpxConnection` is the reference
  (`--client httpx`) to check that the client is not the bottleneck.
- `Stream`: the transfers of a disjoint set of senders, in nonce order, cut into pre-serialized
  JSON-RPC batch bodies; one stream is sent over one connection, one batch at a time, so a
  sender's transactions always arrive in nonce order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from coincurve import PrivateKey

from rollup import rlp
from rollup.crypto import keccak
from rollup.errors import ProcessError
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from services.anvil import AnvilProcess
from services.launch import NodeProcess

__all__ = [
    "ANVIL_CHAIN_ID",
    "AnvilUnderTest",
    "BenchError",
    "Connection",
    "HttpxConnection",
    "NodeUnderTest",
    "Nudge",
    "RawHttpConnection",
    "SignedTx",
    "Stream",
    "Target",
    "batch_body",
    "connect",
    "environment",
    "nonces",
    "percentile",
    "render_token_app",
    "rpc",
    "sign_transfers",
    "split_senders",
    "wait_receipts",
]

ANVIL_CHAIN_ID = 31337
GWEI = 10**9
MAX_FEE = 1_000 * GWEI  # a high cap: Anvil's base fee climbs 12.5% a full block (ours stays 1 gwei)
TIP = 1 * GWEI
TRANSFER_GAS = 21_000
RECEIPT_BATCH = 1_000

_TEMPLATE = Path(__file__).resolve().parent.parent / "rollup" / "templates" / "token"


class BenchError(ProcessError):
    """A benchmark could not run, or a transaction was not accepted or not confirmed."""


# ---------------------------------------------------------------- processes


def render_token_app(app_dir: Path, name: str = "bench", chain_id: int = 901_001) -> Path:
    """The token template rendered into `app_dir` (rollup.toml and app.py)."""
    app_dir.mkdir(parents=True, exist_ok=True)
    manifest = (_TEMPLATE / "rollup.toml.tmpl").read_text()
    manifest = manifest.replace("{{name}}", name).replace("{{chain_id}}", str(chain_id))
    (app_dir / "rollup.toml").write_text(manifest)
    shutil.copyfile(_TEMPLATE / "app.py", app_dir / "app.py")
    return app_dir


@dataclass
class Target:
    """Something that answers JSON-RPC: our node or the Anvil peer."""

    name: str
    url: str
    chain_id: int
    pid: int | None
    nudge: bool = False  # Anvil: mine stuck ready transactions (see `Nudge`)


class NodeUnderTest(contextlib.AbstractContextManager["NodeUnderTest"]):
    """A fresh token-app node in a temp dir; removed on exit unless `keep` is set."""

    def __init__(
        self, keep: bool = False, render: Callable[[Path], Path] = render_token_app
    ) -> None:
        """`render` writes the app into the directory it is given (default: the token
        template) and returns the app directory."""
        self._tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-"))
        self.keep = keep
        self.process = NodeProcess(render(self._tmp / "app"), self._tmp / "data")

    def __enter__(self) -> NodeUnderTest:
        try:
            self.process.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def target(self) -> Target:
        chain_id = int(rpc(self.process.url, "eth_chainId"), 16)
        return Target("node", self.process.url, chain_id, self.process.pid)

    def log_tail(self) -> str:
        return self.process.log_tail()

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self._tmp, ignore_errors=True)


class AnvilUnderTest(contextlib.AbstractContextManager["AnvilUnderTest"]):
    """Anvil on loopback with default automine (every transaction mined as it arrives);
    `hardfork` as Anvil spells it (None: Anvil's default)."""

    def __init__(self, hardfork: str | None = None) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-anvil-"))
        self.hardfork = hardfork
        self.process = AnvilProcess(log_dir=self._tmp)

    def __enter__(self) -> AnvilUnderTest:
        try:
            self.process.start(chain_id=ANVIL_CHAIN_ID, hardfork=self.hardfork)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        return self

    def target(self) -> Target:
        return Target("anvil", self.process.rpc_url, ANVIL_CHAIN_ID, self.process.pid, nudge=True)

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)


def rpc(url: str, method: str, *params: Any) -> Any:
    """One blocking JSON-RPC call (set-up and checks, never in a timed section)."""
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    reply = httpx.post(url, json=body, timeout=30.0, trust_env=False).json()
    if "error" in reply:
        raise BenchError(f"{method} failed: {reply['error']}")
    return reply["result"]


def nonces(url: str, senders: Sequence[bytes]) -> list[int]:
    """The next nonce of each sender (all pending transactions of earlier phases included)."""
    return [
        int(rpc(url, "eth_getTransactionCount", "0x" + s.hex(), "pending"), 16) for s in senders
    ]


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "platform": sys.platform,
    }


# ---------------------------------------------------------------- signing


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw_hex: str  # "0x..." as eth_sendRawTransaction takes it
    hash_hex: str  # "0x..." as the node answers it
    sender: int  # index into DEV_KEYS
    nonce: int


_KEYS = [PrivateKey(bytes.fromhex(key[2:])) for key in DEV_KEYS]


def sign_transfer(sender: int, chain_id: int, nonce: int, to: bytes, value: int,
                  data: bytes = b"", gas: int = TRANSFER_GAS) -> SignedTx:  # fmt: skip
    """One EIP-1559 transaction (a value transfer unless `data` is given), signed (coincurve
    signs with low s, as Ethereum needs)."""
    enc = rlp.encode_int
    fields: list[rlp.RLPItem] = [
        enc(chain_id),
        enc(nonce),
        enc(TIP),
        enc(MAX_FEE),
        enc(gas),
        to,
        enc(value),
        data,
        [],
    ]
    signature = _KEYS[sender].sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    raw = b"\x02" + rlp.encode([*fields, enc(signature[64]), enc(r), enc(s)])
    return SignedTx("0x" + raw.hex(), "0x" + keccak(raw).hex(), sender, nonce)


def sign_transfers(
    chain_id: int, plan: dict[int, tuple[int, int]], threads: int = 2
) -> dict[int, list[SignedTx]]:
    """For each sender index: `count` transfers from nonce `first`, plan = {sender: (first,
    count)}, each to a fresh random address with a small random value."""

    def one_sender(item: tuple[int, tuple[int, int]]) -> tuple[int, list[SignedTx]]:
        sender, (first, count) = item
        return sender, [
            sign_transfer(
                sender, chain_id, first + i, secrets.token_bytes(20), 1 + secrets.randbelow(10**15)
            )
            for i in range(count)
        ]

    with ThreadPoolExecutor(threads) as pool:  # coincurve drops the GIL while it signs
        return dict(pool.map(one_sender, plan.items()))


def split_senders(senders: Sequence[int], groups: int) -> list[list[int]]:
    """`senders` dealt round-robin into `groups` disjoint, non-empty groups."""
    if not 1 <= groups <= len(senders):
        raise BenchError(f"need 1..{len(senders)} groups of senders, got {groups}")
    return [list(senders[g::groups]) for g in range(groups)]


def batch_body(txs: Sequence[SignedTx], first_id: int = 0) -> bytes:
    return orjson.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": first_id + i,
                "method": "eth_sendRawTransaction",
                "params": [tx.raw_hex],
            }
            for i, tx in enumerate(txs)
        ]
    )


@dataclass
class Stream:
    """The transfers of some senders, interleaved so that each keeps nonce order, in batches."""

    txs: list[SignedTx]
    batch: int
    bodies: list[bytes] = field(default_factory=list)
    tails: list[list[str]] = field(default_factory=list)

    @classmethod
    def build(cls, signed: dict[int, list[SignedTx]], senders: Sequence[int], batch: int) -> Stream:
        lists = [signed[s] for s in senders]
        txs = [tx for row in _zip_longest(lists) for tx in row]
        stream = cls(txs, batch)
        for i in range(0, len(txs), batch):
            part = txs[i : i + batch]
            stream.bodies.append(batch_body(part, i))
            stream.tails.append([tx.hash_hex for tx in _last_per_sender(part)])
        return stream

    def chunks(self) -> Iterator[tuple[list[SignedTx], bytes, int, list[str]]]:
        """(transactions, request body, JSON-RPC id of the first, hashes of each sender's last
        transaction) of each batch."""
        for index, body in enumerate(self.bodies):
            first = index * self.batch
            yield self.txs[first : first + self.batch], body, first, self.tails[index]

    def last_per_sender(self) -> list[SignedTx]:
        return _last_per_sender(self.txs)


def _last_per_sender(txs: Sequence[SignedTx]) -> list[SignedTx]:
    last: dict[int, SignedTx] = {}
    for tx in txs:
        last[tx.sender] = tx
    return list(last.values())


def _zip_longest(lists: list[list[SignedTx]]) -> Iterator[list[SignedTx]]:
    for i in range(max((len(x) for x in lists), default=0)):
        yield [x[i] for x in lists if i < len(x)]


def sender_addresses(indexes: Sequence[int]) -> list[bytes]:
    return [DEV_ADDRESSES[i] for i in indexes]


# ---------------------------------------------------------------- HTTP


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
    conn: RawHttpConnection | HttpxConnection
    if client == "raw":
        conn = RawHttpConnection(url)
    elif client == "httpx":
        conn = HttpxConnection(url)
    else:
        raise BenchError(f"unknown client {client!r} (raw or httpx)")
    await conn.open()
    return conn


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
        body = b'{"jsonrpc":"2.0","id":0,"method":"evm_mine","params":[]}'
        reply = orjson.loads(await conn.post(body))
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
            body = orjson.dumps(
                [
                    {
                        "jsonrpc": "2.0",
                        "id": j,
                        "method": "eth_getTransactionReceipt",
                        "params": [h],
                    }
                    for j, h in enumerate(part)
                ]
            )
            replies = _by_id(orjson.loads(await conn.post(body)), len(part))
            for j, h in enumerate(part):
                reply = replies[j]
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


def _by_id(replies: Any, count: int) -> list[dict[str, Any]]:
    if not isinstance(replies, list) or len(replies) != count:
        raise BenchError(f"expected a batch reply of {count}, got {str(replies)[:300]}")
    out: list[dict[str, Any]] = [{}] * count
    for reply in replies:
        out[reply["id"]] = reply
    return out


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


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[min(int(rank), len(sorted_values)) - 1]
