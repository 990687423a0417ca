"""`rollup bench da`: DA bytes per transfer, and re-derivation speed against sequencing speed.

One node of the token template runs with its DA poster on the local backend, committing to a
BatchInbox on Anvil (the devnet's set-up). Two phases, each N pre-signed transfers from the
ten dev accounts, each to a distinct random recipient, amounts from a small set of round
numbers (da/measure.py's workload), sent as `rollup bench transfers` sends (batches over C
connections, the clock stops when every receipt is queryable):
    native   value transfers
    erc20    the token's transfer(address,uint256) (senders get tokens first, off the clock)
After each phase the poster is let finish. Then:
- bytes per transfer = DA bytes the poster submitted for the phase's blocks (payloads: frames,
  their headers and the version byte; not the ~200 B L1 commitment a batch) / transfers.
  Peers, on the same transactions: the raw signed transactions (a naive batcher), and the raw
  transactions concatenated and brotli-9 compressed (OP's format before span batches).
- verify speed: a verifier process (`python -m services.verifier --once`) re-derives the whole
  chain from the inbox and the local store; its rate counts the time it spent deriving and
  re-executing batches; `verify_speedup` = that rate over the node's tx/s over both phases
  (the node posting as it sequences, as it runs in production).
Both figures move with machine load: the two cores are shared with whatever else runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli

from benchmarks.common import BenchError, environment, log, nonces, rpc
from benchmarks.evm import sign_token_transfer
from benchmarks.http import connect, wait_receipts
from benchmarks.signing import (
    SENDERS,
    SignedTx,
    Stream,
    sender_addresses,
    sign_transfer,
    split_senders,
)
from benchmarks.targets import AnvilUnderTest, render_token_app
from benchmarks.transfers import (
    RECEIPT_TIMEOUT,
    plan_counts,
    raise_on_errors,
    send_streams,
    send_until_received,
)
from rollup.genesis import DEV_KEYS
from rollup.manifest import app_address
from services.l1setup import BatcherSpec, prepare_l1
from services.launch import NodeProcess
from services.waiting import wait_until

__all__ = ["DAConfig", "run_da", "format_da"]

AMOUNTS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000)
APP, CHAIN_ID = "bench", 901_001
TARGET_BYTES, TARGET_SPEEDUP = 90.0, 2.0


@dataclass(frozen=True)
class DAConfig:
    n: int = 20_000
    batch: int = 2_000
    concurrency: int = 4


def _sign(kind: str, sender: int, nonce: int, rng: random.Random) -> SignedTx:
    to, amount = rng.randbytes(20), rng.choice(AMOUNTS)
    if kind == "native":
        return sign_transfer(sender, CHAIN_ID, nonce, to, amount * 10**15)
    return sign_token_transfer(sender, CHAIN_ID, nonce, app_address(APP), to, amount * 10**15)


async def _phase(url: str, kind: str, config: DAConfig, seed: int) -> tuple[list[SignedTx], float]:
    """Send one phase's transfers; (the transfers, seconds until every receipt is there)."""
    rng = random.Random(seed)
    groups = split_senders(SENDERS, config.concurrency)
    counts = plan_counts(config.n, groups)
    first = nonces(url, sender_addresses(SENDERS))
    signed = {
        s: [_sign(kind, s, first[s] + i, rng) for i in range(counts.get(s, 0))] for s in SENDERS
    }
    streams = [Stream.build(signed, group, config.batch) for group in groups]
    conns = [await connect(url) for _ in streams]
    try:
        elapsed, replies = await send_until_received(conns, streams)
        raise_on_errors("node", replies)
        txs = [tx for stream in streams for tx in stream.txs]
        receipts = await wait_receipts(conns[0], [tx.hash_hex for tx in txs], RECEIPT_TIMEOUT)
    finally:
        for conn in conns:
            await conn.close()
    failed = [h for h, r in receipts.items() if r.get("status") != "0x1"]
    if failed:
        raise BenchError(f"{len(failed)} {kind} transfers failed, e.g. {failed[0]}")
    return txs, elapsed


async def _fund_token_holders(url: str) -> None:
    """Dev account 0 (which holds the supply) gives every other dev account tokens."""
    nonce = nonces(url, sender_addresses([0]))[0]
    txs = [
        sign_token_transfer(0, CHAIN_ID, nonce + i, app_address(APP), holder, 10**24 // 20)
        for i, holder in enumerate(sender_addresses(SENDERS[1:]))
    ]
    conn = await connect(url)
    try:
        stream = Stream.build({0: txs}, [0], len(txs))
        raise_on_errors("node", await send_streams([conn], [stream], None))
    finally:
        await conn.close()


def _wait_posted(url: str, timeout: float = 120.0) -> int:
    """The head, once the DA poster has posted it (the `safe` block)."""

    def posted() -> int | None:
        latest = int(rpc(url, "eth_blockNumber"), 16)
        safe = int(rpc(url, "eth_getBlockByNumber", "safe", False)["number"], 16)
        return latest if safe == latest else None

    return wait_until(posted, timeout, "the DA poster to catch up", interval=0.1, error=BenchError)


def _posted_bytes(store: Path, first: int, last: int) -> tuple[int, int, int]:
    """(DA bytes, transactions, batches) of the poster's batches within blocks first..last."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        query = (
            "SELECT SUM(bytes), SUM(txs), COUNT(*) FROM batches "
            "WHERE first_block >= ? AND last_block <= ?"
        )
        row = db.execute(query, (first, last)).fetchone()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def _peers(txs: list[SignedTx]) -> tuple[float, float]:
    raws = [bytes.fromhex(tx.raw_hex[2:]) for tx in txs]
    joined = b"".join(raws)
    return len(joined) / len(raws), len(brotli.compress(joined, quality=9)) / len(raws)


async def _sequence(
    url: str, data_dir: Path, kind: str, config: DAConfig, start: int
) -> dict[str, Any]:
    """One workload through the node, then its DA bytes once the poster has posted it."""
    txs, elapsed = await _phase(url, kind, config, len(kind))
    end = _wait_posted(url)
    size, carried, batches = _posted_bytes(data_dir / "da-poster.sqlite", start, end)
    if carried != len(txs):
        raise BenchError(f"{kind}: the poster's batches carry {carried} of {len(txs)}")
    raw, raw_brotli = _peers(txs)
    log(
        f"[{kind}] {len(txs)} transfers in {elapsed:.2f} s ({len(txs) / elapsed:.0f} tx/s); "
        f"{size / len(txs):.1f} DA bytes each in {batches} batches"
    )
    return {
        "n": len(txs),
        "seconds": round(elapsed, 3),
        "tx_per_s": round(len(txs) / elapsed, 1),
        "first_block": start,
        "last_block": end,
        "batches": batches,
        "da_bytes": size,
        "bytes_per_transfer": round(size / len(txs), 2),
        "raw_bytes_per_transfer": round(raw, 2),
        "raw_brotli_bytes_per_transfer": round(raw_brotli, 2),
    }


def _verify(app_dir: Path, data_dir: Path, l1_rpc: str, inbox: bytes, block: int) -> dict[str, Any]:
    """Run the verifier process as an operator does (`--once`); its time is what it spent
    deriving and re-executing batches (start-up and the L1 log scan are not counted)."""
    command = [
        sys.executable,
        "-m",
        "services.verifier",
        "--app-dir",
        str(app_dir),
        "--l1-rpc",
        l1_rpc,
        "--inbox",
        "0x" + inbox.hex(),
        "--from-l1-block",
        str(block),
        "--da-dir",
        str(data_dir / "da"),
        "--once",
        "--json",
    ]
    env = dict(os.environ, ETH_HASH_BACKEND=os.environ.get("ETH_HASH_BACKEND", "pysha3"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    try:
        status = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise BenchError(f"the verifier failed:\n{done.stderr[-2000:]}") from None
    if status["status"] != "in_sync" or status["waiting"]:
        raise BenchError(
            f"the verifier did not re-derive the chain: {status['message']} "
            f"{status['waiting'] or ''}"
        )
    seconds = status["seconds_replaying"]
    return {
        "txs": status["txs"],
        "blocks": status["blocks"],
        "batches": status["batches"],
        "seconds": seconds,
        "tx_per_s": round(status["txs"] / seconds, 1),
        "head": status["block"],
        "head_hash": status["head_hash"],
    }


def run_da(config: DAConfig) -> dict[str, Any]:
    """Native transfers, then ERC-20 ones; after each, a verifier re-derives the chain so far
    (the ERC-20 workload's verify time is the second run's less the first's)."""
    if config.n < 10 or not 1 <= config.concurrency <= len(SENDERS):
        raise BenchError(f"need n >= 10 and 1 <= concurrency <= {len(SENDERS)}")
    tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-da-"))
    phases: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    try:
        with AnvilUnderTest() as anvil:
            l1_rpc = anvil.target().url
            setup = prepare_l1(
                l1_rpc,
                [BatcherSpec(APP, CHAIN_ID, tmp / "batcher.key")],
                tmp / "l1",
                fund_owner_from=DEV_KEYS[0],
            )
            app_dir = render_token_app(tmp / "app", APP, CHAIN_ID)
            args = [
                "--da",
                "local",
                "--l1-rpc",
                l1_rpc,
                "--inbox",
                "0x" + setup.inbox.hex(),
                "--inbox-from-block",
                str(setup.from_block),
            ]
            key_file = {"ROLLUP_BATCHER_KEY_FILE": str(setup.batchers[APP])}
            node = NodeProcess(app_dir, tmp / "data", extra_args=args, env=key_file)
            with node:
                log(f"[node] pid {node.pid} at {node.url}, DA poster on the local backend")
                asyncio.run(_fund_token_holders(node.url))
                start = _wait_posted(node.url) + 1
                for kind in ("native", "erc20"):
                    phases[kind] = asyncio.run(
                        _sequence(node.url, tmp / "data", kind, config, start)
                    )
                    start = phases[kind]["last_block"] + 1
                    log(f"[verifier] re-deriving the chain up to the {kind} workload")
                    runs.append(
                        _verify(app_dir, tmp / "data", l1_rpc, setup.inbox, setup.from_block)
                    )
                head = rpc(node.url, "eth_getBlockByNumber", "latest", False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if runs[-1]["head_hash"] != head["hash"]:
        raise BenchError(f"the verifier's head {runs[-1]['head_hash']} is not the node's")
    return _result(config, phases, runs)


def _result(config: DAConfig, phases: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    native_run, all_run = runs
    verify = {
        "native": native_run["txs"] / native_run["seconds"],
        "erc20": (all_run["txs"] - native_run["txs"])
        / max(all_run["seconds"] - native_run["seconds"], 1e-9),
    }
    for kind, phase in phases.items():
        phase["verify_tx_per_s"] = round(verify[kind], 1)
        phase["verify_speedup"] = round(verify[kind] / phase["tx_per_s"], 2)
    sequencing = sum(p["n"] for p in phases.values()) / sum(p["seconds"] for p in phases.values())
    return {
        "benchmark": "da",
        "n": config.n,
        "batch": config.batch,
        "concurrency": config.concurrency,
        "bytes_per_native_transfer": phases["native"]["bytes_per_transfer"],
        "bytes_per_erc20_transfer": phases["erc20"]["bytes_per_transfer"],
        "sequencing_tx_per_s": round(sequencing, 1),
        "verify_tx_per_s": all_run["tx_per_s"],
        "verify_speedup": round(all_run["tx_per_s"] / sequencing, 2),
        "targets": {"bytes_per_transfer": TARGET_BYTES, "verify_speedup": TARGET_SPEEDUP},
        "phases": phases,
        "verifier": all_run,
        "environment": environment(),
    }


def format_da(result: dict[str, Any]) -> str:
    head = (
        f"{'workload':<10}{'txs':>8}{'tx/s':>9}{'verify/s':>10}{'ratio':>7}{'batches':>9}"
        f"{'DA B/tx':>9}{'raw B/tx':>10}{'raw+brotli':>12}"
    )
    lines = ["da (poster on the local backend, commitments on Anvil)", head, "-" * len(head)]
    for kind, p in result["phases"].items():
        lines.append(
            f"{kind:<10}{p['n']:>8}{p['tx_per_s']:>9.0f}{p['verify_tx_per_s']:>10.0f}"
            f"{p['verify_speedup']:>6.2f}x{p['batches']:>9}"
            f"{p['bytes_per_transfer']:>9.1f}{p['raw_bytes_per_transfer']:>10.1f}"
            f"{p['raw_brotli_bytes_per_transfer']:>12.1f}"
        )
    v = result["verifier"]
    lines.append(
        f"verifier: {v['txs']} txs in {v['blocks']} blocks, {v['batches']} batches, "
        f"{v['seconds']:.2f} s: {v['tx_per_s']:.0f} tx/s = "
        f"{result['verify_speedup']:.2f}x the sequencing rate "
        f"({result['sequencing_tx_per_s']:.0f} tx/s)"
    )
    lines.append(f"targets: <= {TARGET_BYTES:g} B a transfer, verify >= {TARGET_SPEEDUP:g}x")
    return "\n".join(lines)
