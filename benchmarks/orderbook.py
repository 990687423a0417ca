"""`rollup bench orderbook`: limit orders placed and matched per second on one orderbook app.

Workload: the ten dev accounts each deposit base and quote (not timed), then send pre-signed
`place_limit` orders in JSON-RPC batches, one stream of senders per connection. Sides
alternate and prices wander over 11 ticks around a mid price, so most orders cross and fill
against resting ones (price-time priority), the rest rest on the book. The clock stops when
every order's receipt is queryable; every receipt must have status 0x1.

`metering_overhead` is measured in process on the same order flow (and on token transfers):
the same app code loaded with and without the sandbox's metering instrumentation, executed by
the runtime directly, so only what metering adds is compared.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from coincurve import PrivateKey

from benchmarks.common import BenchError, connect, environment, rpc
from rollup import rlp
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.manifest import parse_manifest
from rollup.types import Address, BlockEnv
from services.launch import NodeProcess
from vm.interface import Message
from vm.native import AppRuntime
from vm.native.abi import encode_values, selector
from vm.native.loader import load_app_class
from vm.native.upgrades import install_app
from vm.state import DictReader, State

__all__ = ["OrderbookConfig", "run_orderbook", "format_orderbook", "metering_overhead"]

_TEMPLATES = Path(__file__).resolve().parent.parent / "rollup" / "templates"
CHAIN_ID = 901_777
ORDER_GAS = 2_500_000  # above the 64-fill ceiling of the app (~1.9M)
MAX_FEE = 2 * 10**9
FILL_TOPIC = keccak(b"Fill(uint256,uint256,uint256,uint256,address,address)")
_KEYS = [PrivateKey(bytes.fromhex(key[2:])) for key in DEV_KEYS]


@dataclass(frozen=True, slots=True)
class OrderbookConfig:
    n: int = 20_000
    batch: int = 500
    concurrency: int = 2
    overhead_orders: int = 4_000  # in-process workload of the metering measurement


def render_app(app_dir: Path, template: str = "orderbook") -> Path:
    app_dir.mkdir(parents=True, exist_ok=True)
    source = _TEMPLATES / template
    manifest = (source / "rollup.toml.tmpl").read_text()
    manifest = manifest.replace("{{name}}", "bench-" + template).replace(
        "{{chain_id}}", str(CHAIN_ID)
    )
    (app_dir / "rollup.toml").write_text(manifest)
    shutil.copyfile(source / "app.py", app_dir / "app.py")
    return app_dir


def sign_call(
    sender: int, nonce: int, to: bytes, data: bytes, gas: int = ORDER_GAS
) -> tuple[str, str]:
    """(raw hex, hash hex) of a type-2 call, signed outside any timed section."""
    enc = rlp.encode_int
    fields: list[rlp.RLPItem] = [
        enc(CHAIN_ID), enc(nonce), b"", enc(MAX_FEE), enc(gas), to, b"", data, [],
    ]  # fmt: skip
    sig = _KEYS[sender].sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
    raw = b"\x02" + rlp.encode(
        [
            *fields,
            enc(sig[64]),
            enc(int.from_bytes(sig[:32], "big")),
            enc(int.from_bytes(sig[32:64], "big")),
        ]
    )
    return "0x" + raw.hex(), "0x" + keccak(raw).hex()


def order_calldata(sender: int, index: int) -> bytes:
    side = (sender + index) % 2
    price = 1_000 + (index * 7 + sender * 3) % 11 - 5
    quantity = 1 + index % 5
    return selector("place_limit(uint8,uint256,uint256)") + encode_values(
        ["uint8", "uint256", "uint256"], [side, price, quantity]
    )


def deposits(app: bytes) -> list[tuple[int, bytes]]:
    amount = encode_values(["uint256"], [10**30])
    return [(s, selector(f"deposit_{asset}(uint256)") + amount)
            for s in range(len(DEV_KEYS)) for asset in ("base", "quote")]  # fmt: skip


async def _send_all(url: str, bodies: list[list[tuple[bytes, list[str]]]]) -> None:
    async def one_stream(stream: list[tuple[bytes, list[str]]]) -> None:
        conn = await connect(url)
        try:
            for body, hashes in stream:
                reply = await conn.post(body)
                errors = check_send_replies_hashes(reply, hashes)
                if errors:
                    raise BenchError("; ".join(errors[:5]))
        finally:
            await conn.close()

    await asyncio.gather(*(one_stream(s) for s in bodies))


def check_send_replies_hashes(reply: bytes, hashes: list[str]) -> list[str]:
    replies = orjson.loads(reply)
    if not isinstance(replies, list):
        return [f"batch failed: {str(replies)[:300]}"]
    by_id = {r.get("id"): r for r in replies}
    return [
        f"order {i}: {by_id.get(i, {}).get('error', 'no answer')}"
        for i, h in enumerate(hashes)
        if by_id.get(i, {}).get("result") != h
    ]


def _bodies(signed: dict[int, list[tuple[str, str]]], groups: list[list[int]],
            batch: int) -> list[list[tuple[bytes, list[str]]]]:  # fmt: skip
    streams = []
    for senders in groups:
        txs = [tx for row in zip(*(signed[s] for s in senders), strict=True) for tx in row]
        stream = []
        for i in range(0, len(txs), batch):
            part = txs[i : i + batch]
            body = orjson.dumps([
                {"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [raw]}
                for j, (raw, _h) in enumerate(part)
            ])  # fmt: skip
            stream.append((body, [h for _raw, h in part]))
        streams.append(stream)
    return streams


async def _receipts(url: str, hashes: Sequence[str]) -> list[dict[str, Any]]:
    conn = await connect(url)
    try:
        out: list[dict[str, Any]] = []
        for i in range(0, len(hashes), 1_000):
            part = hashes[i : i + 1_000]
            body = orjson.dumps([
                {"jsonrpc": "2.0", "id": j, "method": "eth_getTransactionReceipt", "params": [h]}
                for j, h in enumerate(part)
            ])  # fmt: skip
            replies = {r["id"]: r for r in orjson.loads(await conn.post(body))}
            out.extend(replies[j].get("result") for j in range(len(part)))
        return out
    finally:
        await conn.close()


async def _measure(config: OrderbookConfig) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-ob-"))
    app_dir = render_app(tmp / "app")
    app = parse_manifest((app_dir / "rollup.toml").read_text()).address
    node = NodeProcess(app_dir, tmp / "data")
    try:
        node.start()
        setup = [
            sign_call(s, i % 2, app, data, 200_000) for i, (s, data) in enumerate(deposits(app))
        ]
        body = orjson.dumps([{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction",
                              "params": [raw]} for j, (raw, _) in enumerate(setup)])  # fmt: skip
        errors = check_send_replies_hashes(await _post_once(node.url, body), [h for _, h in setup])
        if errors:
            raise BenchError("; ".join(errors[:5]))
        per_sender = config.n // len(DEV_KEYS)
        signed = {
            s: [sign_call(s, 2 + i, app, order_calldata(s, i)) for i in range(per_sender)]
            for s in range(len(DEV_KEYS))
        }
        groups = [
            list(range(len(DEV_KEYS)))[g :: config.concurrency] for g in range(config.concurrency)
        ]
        streams = _bodies(signed, groups, config.batch)
        hashes = [h for s in range(len(DEV_KEYS)) for _raw, h in signed[s]]
        head_before = int(rpc(node.url, "eth_blockNumber"), 16)
        start = time.perf_counter()
        await _send_all(node.url, streams)
        receipts = await _receipts(node.url, hashes)
        elapsed = time.perf_counter() - start
        missing = sum(r is None for r in receipts)
        failed = sum(1 for r in receipts if r is not None and r["status"] != "0x1")
        if missing or failed:
            raise BenchError(f"{missing} orders without receipt, {failed} failed")
        fills = sum(
            1 for r in receipts for log in r["logs"] if log["topics"][0] == "0x" + FILL_TOPIC.hex()
        )
        blocks = int(rpc(node.url, "eth_blockNumber"), 16) - head_before
        gas = sum(int(r["gasUsed"], 16) for r in receipts)
        return {
            "orders": len(hashes),
            "seconds": round(elapsed, 3),
            "orders_per_s": round(len(hashes) / elapsed, 1),
            "fills": fills,
            "fills_per_s": round(fills / elapsed, 1),
            "blocks": blocks,
            "mean_gas_per_order": gas // len(hashes),
        }
    finally:
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def _post_once(url: str, body: bytes) -> bytes:
    conn = await connect(url)
    try:
        return await conn.post(body)
    finally:
        await conn.close()


def _execute_all(template: str, metered: bool, calls: list[tuple[int, bytes]]) -> float:
    source = (_TEMPLATES / template / "app.py").read_text()
    address = Address(b"\xab" * 20)
    runtime = AppRuntime(load_app_class(source, metered=metered), address, source)
    env = BlockEnv(1, 1, Address(b"\xcc" * 20), 0, 10**12, CHAIN_ID)
    state = State(DictReader())
    install_app(state, address, source, DEV_ADDRESSES[0])
    runtime.run_init(state, env, DEV_ADDRESSES[0], {})
    state.commit()
    messages = [Message(DEV_ADDRESSES[s], address, 0, data, 10**8, DEV_ADDRESSES[s], 0)
                for s, data in calls]  # fmt: skip
    start = time.perf_counter()
    for msg in messages:
        if not runtime.execute(state, env, msg).success:
            raise BenchError(f"{template}: a call failed in the metering measurement")
        state.commit()
    return time.perf_counter() - start


def metering_overhead(orders: int = 4_000, rounds: int = 3) -> dict[str, float]:
    """Best-of-`rounds` time with metering over time without, minus one, per workload."""
    order_calls = [(s, data) for s, data in deposits(b"")]
    order_calls += [(i % 10, order_calldata(i % 10, i // 10)) for i in range(orders)]
    transfer = selector("transfer(address,uint256)")
    token_calls = [
        (
            0,
            transfer
            + encode_values(["address", "uint256"], [keccak(i.to_bytes(4, "big"))[:20], 1]),
        )
        for i in range(orders)
    ]
    out = {}
    for name, template, calls in (
        ("orderbook", "orderbook", order_calls),
        ("token", "token", token_calls),
    ):
        plain = min(_execute_all(template, False, calls) for _ in range(rounds))
        metered = min(_execute_all(template, True, calls) for _ in range(rounds))
        out[name] = round(metered / plain - 1, 4)
    return out


def run_orderbook(config: OrderbookConfig) -> dict[str, Any]:
    result = asyncio.run(_measure(config))
    overhead = metering_overhead(config.overhead_orders)
    return {
        "bench": "orderbook",
        **result,
        "metering_overhead": overhead["orderbook"],
        "metering_overhead_token_transfer": overhead["token"],
        "config": {"n": config.n, "batch": config.batch, "concurrency": config.concurrency},
        "environment": environment(),
    }


def format_orderbook(result: dict[str, Any]) -> str:
    return "\n".join([
        f"orders:            {result['orders']} in {result['seconds']} s",
        f"orders/s:          {result['orders_per_s']}",
        f"fills:             {result['fills']} ({result['fills_per_s']}/s)",
        f"blocks:            {result['blocks']}",
        f"gas per order:     {result['mean_gas_per_order']}",
        f"metering overhead: {result['metering_overhead'] * 100:.1f}% on orders, "
        f"{result['metering_overhead_token_transfer'] * 100:.1f}% on token transfers",
    ])  # fmt: skip
