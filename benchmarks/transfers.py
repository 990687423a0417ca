"""`rollup bench transfers`: pre-signed native transfers in JSON-RPC batches, ours vs Anvil.

The workload is N type-2 value transfers to distinct random recipients from the ten dev
accounts. The senders are dealt into C disjoint groups; each group's transfers (interleaved,
every sender in nonce order) are cut into batches of B and sent over one keep-alive connection,
one batch at a time, so C batches are in flight. Signing and serializing happen before the clock
starts. The clock stops when the receipt of every sender's last transfer is queryable: with every
send answered by its hash and nonces in order, that means all N are in blocks. Afterwards, off
the clock, every receipt is fetched and checked (present, status 1); any error fails the run.

The peer is Anvil with default automine (one block per transaction) on chain 31337, given the
same workload, sent the same way, and measured the same way.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    AnvilUnderTest,
    BenchError,
    Connection,
    NodeUnderTest,
    SignedTx,
    Stream,
    Target,
    check_send_replies,
    connect,
    environment,
    nonces,
    sender_addresses,
    sign_transfers,
    split_senders,
    wait_receipts,
)
from rollup.genesis import DEV_KEYS

__all__ = ["TransfersConfig", "run_transfers", "measure_target", "format_transfers"]

SENDERS = tuple(range(len(DEV_KEYS)))
WARMUP_PER_SENDER = 20


@dataclass(frozen=True)
class TransfersConfig:
    n: int = 40_000
    batch: int = 2_000
    concurrency: int = 4
    peer: bool = True
    client: str = "raw"
    profile: Path | None = None  # py-spy output for our node (optional)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def plan_counts(n: int, groups: list[list[int]]) -> dict[int, int]:
    """How many transfers each sender makes: N split evenly over the groups, then over each
    group's senders, so every connection carries the same load."""
    counts: dict[int, int] = {}
    for g, group in enumerate(groups):
        share = n // len(groups) + (1 if g < n % len(groups) else 0)
        for k, sender in enumerate(group):
            counts[sender] = share // len(group) + (1 if k < share % len(group) else 0)
    return counts


async def _send_streams(conns: list[Connection], streams: list[Stream]) -> list[list[Any]]:
    """Send every stream's batches over its connection; the raw replies, checked later."""

    async def one(conn: Connection, stream: Stream) -> list[Any]:
        replies = []
        for txs, body, first in stream.chunks():
            replies.append((txs, await conn.post(body), first))
        return replies

    return list(await asyncio.gather(*(one(c, s) for c, s in zip(conns, streams))))


async def measure_target(target: Target, config: TransfersConfig, warmup: bool = True,
                         profile_pid: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the workload against one target; raise BenchError on any rejected or lost tx."""
    groups = split_senders(SENDERS, config.concurrency)
    counts = plan_counts(config.n, groups)
    warm = WARMUP_PER_SENDER if warmup else 0
    first = nonces(target.url, sender_addresses(SENDERS))
    started = time.perf_counter()
    signed = sign_transfers(
        target.chain_id, {s: (first[s], warm + counts.get(s, 0)) for s in SENDERS}
    )
    warm_part = {s: txs[:warm] for s, txs in signed.items()}
    main_part = {s: txs[warm:] for s, txs in signed.items()}
    streams = [Stream.build(main_part, group, config.batch) for group in groups]
    log(f"[{target.name}] signed and serialized {sum(len(v) for v in signed.values())} "
        f"transfers in {time.perf_counter() - started:.1f} s")  # fmt: skip

    conns = [await connect(target.url, config.client) for _ in streams]
    try:
        if warm:
            warm_stream = Stream.build(warm_part, SENDERS, config.batch)
            warm_replies = await _send_streams(conns[:1], [warm_stream])
            _raise_on_errors(target, warm_replies)
            await wait_receipts(conns[0], [tx.hash_hex for tx in warm_stream.last_per_sender()])
        profiler = _profiler(config.profile, profile_pid)
        if profiler is not None:
            profiler.__enter__()
            await asyncio.sleep(0.5)  # let py-spy attach before the clock starts
        try:
            t0 = time.perf_counter()
            replies = await _send_streams(conns, streams)
            t_sent = time.perf_counter()
            last = [tx.hash_hex for stream in streams for tx in stream.last_per_sender()]
            await wait_receipts(conns[0], last, timeout=120.0)
            t_end = time.perf_counter()
        finally:
            if profiler is not None:
                profiler.__exit__(None, None, None)
        errors = _raise_on_errors(target, replies)
        all_txs = [tx for stream in streams for tx in stream.txs]
        receipts = await wait_receipts(conns[0], [tx.hash_hex for tx in all_txs], timeout=120.0)
        failed = [h for h, r in receipts.items() if r.get("status") != "0x1"]
        if failed:
            raise BenchError(f"[{target.name}] {len(failed)} transfers failed, e.g. {failed[0]}")
        blocks = {r["blockNumber"] for r in receipts.values()}
    finally:
        for conn in conns:
            await conn.close()
    elapsed = t_end - t0
    return {
        "target": target.name,
        "n": len(all_txs),
        "confirmed": len(receipts),
        "errors": errors,
        "blocks": len(blocks),
        "elapsed_s": round(elapsed, 4),
        "send_s": round(t_sent - t0, 4),
        "tx_per_s": round(len(all_txs) / elapsed, 1),
    }


def _profiler(out: Path | None, pid: int | None) -> Any:
    if out is None or pid is None:
        return None
    from benchmarks.profiling import PySpy

    return PySpy(pid, out)


def _raise_on_errors(target: Target, stream_replies: list[list[Any]]) -> int:
    errors: list[str] = []
    for replies in stream_replies:
        for txs, body, first in replies:
            errors += check_send_replies(body, txs, first)
    if errors:
        shown = "\n  ".join(errors[:10])
        raise BenchError(f"[{target.name}] {len(errors)} sends failed:\n  {shown}")
    return 0


def _with_failure_context(under: NodeUnderTest | AnvilUnderTest, exc: BenchError) -> BenchError:
    if isinstance(under, NodeUnderTest):
        return BenchError(f"{exc}\nnode log tail:\n{under.log_tail()}")
    return exc


async def _measure_node(config: TransfersConfig) -> dict[str, Any]:
    with NodeUnderTest() as node:
        target = node.target()
        log(f"[node] pid {target.pid} at {target.url} (chain {target.chain_id})")
        try:
            result = await measure_target(target, config, profile_pid=target.pid)
        except BenchError as exc:
            raise _with_failure_context(node, exc) from None
    return result


async def _measure_anvil(config: TransfersConfig) -> dict[str, Any]:
    with AnvilUnderTest() as anvil:
        target = anvil.target()
        log(f"[anvil] pid {target.pid} at {target.url} (chain {target.chain_id}, automine)")
        return await measure_target(target, config)


async def run_transfers(config: TransfersConfig) -> dict[str, Any]:
    if config.n < 1 or not 1 <= config.batch <= 2_000:
        raise BenchError("need --n >= 1 and 1 <= --batch <= 2000 (the node's batch limit)")
    ours = await _measure_node(config)
    log(f"[node] {ours['n']} transfers in {ours['elapsed_s']:.2f} s: {ours['tx_per_s']:.0f} tx/s")
    peer = await _measure_anvil(config) if config.peer else None
    if peer is not None:
        log(f"[anvil] {peer['n']} transfers in {peer['elapsed_s']:.2f} s: "
            f"{peer['tx_per_s']:.0f} tx/s")  # fmt: skip
    result: dict[str, Any] = {
        "benchmark": "transfers",
        "n": ours["n"],
        "batch": config.batch,
        "concurrency": config.concurrency,
        "client": config.client,
        "tx_per_s": ours["tx_per_s"],
        "peer_tx_per_s": peer["tx_per_s"] if peer else None,
        "ratio": round(ours["tx_per_s"] / peer["tx_per_s"], 2) if peer else None,
        "confirmed": ours["confirmed"],
        "errors": ours["errors"],
        "ours": ours,
        "peer": peer,
        "environment": environment(),
    }
    if config.profile is not None and config.profile.suffix != ".svg":
        from benchmarks.profiling import summarize

        result["profile"] = summarize(config.profile)
    return result


def format_transfers(result: dict[str, Any]) -> str:
    rows = [result["ours"]] + ([result["peer"]] if result["peer"] else [])
    head = (
        f"{'target':<8}{'txs':>8}{'blocks':>8}{'send s':>9}{'total s':>9}{'tx/s':>10}{'errors':>8}"
    )
    lines = [
        f"transfers: batch {result['batch']}, concurrency {result['concurrency']}, "
        f"client {result['client']}",
        head,
        "-" * len(head),
    ]
    for row in rows:
        lines.append(
            f"{row['target']:<8}{row['n']:>8}{row['blocks']:>8}{row['send_s']:>9.2f}"
            f"{row['elapsed_s']:>9.2f}{row['tx_per_s']:>10.0f}{row['errors']:>8}"
        )
    if result["ratio"] is not None:
        lines.append(f"ratio ours/anvil: {result['ratio']:.2f}x")
    if "profile" in result:
        from benchmarks.profiling import format_summary

        lines.append(format_summary(result["profile"]))
    return "\n".join(lines)
