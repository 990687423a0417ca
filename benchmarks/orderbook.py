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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, environment, rpc
from benchmarks.http import check_send_replies, connect, wait_receipts
from benchmarks.signing import SENDERS, SignedTx, Stream, batch_body, sign_transfer, split_senders
from benchmarks.transfers import RECEIPT_TIMEOUT
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import parse_manifest
from rollup.types import Address, BlockEnv
from services.launch import NodeProcess
from services.scaffold import TEMPLATE_DIR, scaffold
from vm.interface import Message
from vm.native import AppRuntime
from vm.native.abi import encode_values, selector
from vm.native.loader import load_app_class
from vm.native.upgrades import install_app
from vm.state import DictReader, State

__all__ = ["OrderbookConfig", "run_orderbook", "format_orderbook", "metering_overhead"]

CHAIN_ID = 901_777
ORDER_GAS = 2_500_000  # above the 64-fill ceiling of the app (~1.9M)
MAX_FEE = 2 * 10**9
FILL_TOPIC = keccak(b"Fill(uint256,uint256,uint256,uint256,address,address)")


@dataclass(frozen=True, slots=True)
class OrderbookConfig:
    n: int = 20_000
    batch: int = 500
    concurrency: int = 2
    overhead_orders: int = 4_000  # in-process workload of the metering measurement


def render_app(app_dir: Path, template: str = "orderbook") -> Path:
    return scaffold(app_dir, template, "bench-" + template, CHAIN_ID)


def sign_call(sender: int, nonce: int, to: bytes, data: bytes, gas: int = ORDER_GAS) -> SignedTx:
    """A type-2 call of dev account `sender` (no tip, fee cap MAX_FEE), signed outside any
    timed section."""
    return sign_transfer(sender, CHAIN_ID, nonce, to, 0, data, gas, tip=0, max_fee=MAX_FEE)


def order_calldata(sender: int, index: int) -> bytes:
    side = (sender + index) % 2
    price = 1_000 + (index * 7 + sender * 3) % 11 - 5
    quantity = 1 + index % 5
    return selector("place_limit(uint8,uint256,uint256)") + encode_values(
        ["uint8", "uint256", "uint256"], [side, price, quantity]
    )


def deposits(app: bytes) -> list[tuple[int, bytes]]:
    amount = encode_values(["uint256"], [10**30])
    return [
        (s, selector(f"deposit_{asset}(uint256)") + amount)
        for s in SENDERS
        for asset in ("base", "quote")
    ]


async def _send_all(url: str, streams: list[Stream]) -> None:
    """Each stream over a connection of its own, a batch as soon as the previous one is
    answered; any send not answered with its hash fails the run."""

    async def one_stream(stream: Stream) -> None:
        conn = await connect(url)
        try:
            for txs, body, first, _tails in stream.chunks():
                errors = check_send_replies(await conn.post(body), txs, first)
                if errors:
                    raise BenchError("; ".join(errors[:5]))
        finally:
            await conn.close()

    await asyncio.gather(*(one_stream(s) for s in streams))


async def _receipts(url: str, hashes: list[str]) -> list[dict[str, Any]]:
    conn = await connect(url)
    try:
        receipts = await wait_receipts(conn, hashes, RECEIPT_TIMEOUT)
    finally:
        await conn.close()
    return [receipts[h] for h in hashes]


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
        errors = check_send_replies(await _post_once(node.url, batch_body(setup)), setup, 0)
        if errors:
            raise BenchError("; ".join(errors[:5]))
        per_sender = config.n // len(SENDERS)
        signed = {
            s: [sign_call(s, 2 + i, app, order_calldata(s, i)) for i in range(per_sender)]
            for s in SENDERS
        }
        groups = split_senders(SENDERS, config.concurrency)
        streams = [Stream.build(signed, group, config.batch) for group in groups]
        hashes = [tx.hash_hex for s in SENDERS for tx in signed[s]]
        head_before = int(rpc(node.url, "eth_blockNumber"), 16)
        start = time.perf_counter()
        await _send_all(node.url, streams)
        receipts = await _receipts(node.url, hashes)
        elapsed = time.perf_counter() - start
        failed = sum(1 for r in receipts if r["status"] != "0x1")
        if failed:
            raise BenchError(f"{failed} of {len(receipts)} orders failed")
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
    source = (TEMPLATE_DIR / template / "app.py").read_text()
    address = Address(b"\xab" * 20)
    runtime = AppRuntime(load_app_class(source, metered=metered), address, source)
    env = BlockEnv(1, 1, Address(b"\xcc" * 20), 0, 10**12, CHAIN_ID)
    state = State(DictReader())
    install_app(state, address, source, DEV_ADDRESSES[0])
    runtime.run_init(state, env, DEV_ADDRESSES[0], {})
    state.commit()
    messages = [
        Message(DEV_ADDRESSES[s], address, 0, data, 10**8, DEV_ADDRESSES[s], 0) for s, data in calls
    ]
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
    return "\n".join(
        [
            f"orders:            {result['orders']} in {result['seconds']} s",
            f"orders/s:          {result['orders_per_s']}",
            f"fills:             {result['fills']} ({result['fills_per_s']}/s)",
            f"blocks:            {result['blocks']}",
            f"gas per order:     {result['mean_gas_per_order']}",
            f"metering overhead: {result['metering_overhead'] * 100:.1f}% on orders, "
            f"{result['metering_overhead_token_transfer'] * 100:.1f}% on token transfers",
        ]
    )
