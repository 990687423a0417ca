"""`rollup bench transfers`: pre-signed native transfers in JSON-RPC batches, ours vs Anvil.

The workload is N type-2 value transfers to distinct random recipients from the ten dev
accounts. The senders are dealt into C disjoint groups; each group's transfers (interleaved,
every sender in nonce order) are cut into batches of B and sent over one keep-alive connection.
A connection sends its next batch once the previous batch's receipts are queryable (for our node
the send's answer already means that; the receipt query proves it), so C batches are in flight.
Signing and serializing happen before the clock starts. The clock stops when the receipt of
every sender's last transfer is queryable. Afterwards, off the clock, every send's answer is
checked to be its hash and every receipt is fetched and checked (status 1); any error fails.

With `--scrape-every S`, GET /metrics of our node every S seconds while it runs, as a
Prometheus server would (the cost of the metrics: compare with a run without it).

The peer is Anvil with default automine on chain 31337, sent the same way. Anvil slows down
with the size of its pool and stalls under big batches (see benchmarks/README.md), so
it gets its own, smaller N and its own batch size and concurrency (`--peer-n`, `--peer-batch`,
`--peer-concurrency`), by default the ones where it measured best.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import BenchError, environment, log, nonces
from benchmarks.http import Connection, Nudge, check_send_replies, connect, wait_receipts
from benchmarks.signing import (
    SENDERS,
    SignedTx,
    Stream,
    sender_addresses,
    sign_transfers,
    split_senders,
)
from benchmarks.targets import AnvilUnderTest, NodeUnderTest, Target

__all__ = ["TransfersConfig", "Workload", "run_transfers", "measure_target", "format_transfers"]

WARMUP_PER_SENDER = 20
RECEIPT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Workload:
    n: int
    batch: int
    concurrency: int


@dataclass(frozen=True)
class TransfersConfig:
    n: int = 40_000
    batch: int = 2_000
    concurrency: int = 4
    peer: bool = True
    peer_n: int = 10_000
    peer_batch: int = 250
    peer_concurrency: int = 2
    client: str = "raw"
    profile: Path | None = None  # py-spy output for our node (optional)
    scrape_every: float | None = None  # seconds between two GETs of our node's /metrics

    @property
    def ours(self) -> Workload:
        return Workload(self.n, self.batch, self.concurrency)

    @property
    def theirs(self) -> Workload:
        return Workload(self.peer_n or self.n, self.peer_batch, self.peer_concurrency)


def plan_counts(n: int, groups: list[list[int]]) -> dict[int, int]:
    """How many transfers each sender makes: N split evenly over the groups, then over each
    group's senders, so every connection carries the same load."""
    counts: dict[int, int] = {}
    for g, group in enumerate(groups):
        share = n // len(groups) + (1 if g < n % len(groups) else 0)
        for k, sender in enumerate(group):
            counts[sender] = share // len(group) + (1 if k < share % len(group) else 0)
    return counts


def signing_plan(url: str, counts: dict[int, int]) -> dict[int, tuple[int, int]]:
    """{sender: (its next nonce, how many to sign)}: WARMUP_PER_SENDER warm-up transactions,
    then its share of the measured ones."""
    first = nonces(url, sender_addresses(SENDERS))
    return {s: (first[s], WARMUP_PER_SENDER + counts.get(s, 0)) for s in SENDERS}


def warmup_and_streams(
    signed: dict[int, list[SignedTx]], groups: list[list[int]], batch: int
) -> tuple[dict[int, list[SignedTx]], list[Stream]]:
    """Each sender's first WARMUP_PER_SENDER transactions (sent before the clock starts), and
    the rest as one stream per group of senders."""
    warm = WARMUP_PER_SENDER
    measured = {s: txs[warm:] for s, txs in signed.items()}
    streams = [Stream.build(measured, group, batch) for group in groups]
    return {s: txs[:warm] for s, txs in signed.items()}, streams


async def send_streams(
    conns: list[Connection], streams: list[Stream], nudge: Nudge | None
) -> list[list[Any]]:
    """Send every stream's batches over its connection, each once the previous one's receipts
    are queryable; the raw replies, to be checked off the clock."""

    async def one(conn: Connection, stream: Stream) -> list[Any]:
        replies = []
        for txs, body, first, tails in stream.chunks():
            replies.append((txs, await conn.post(body), first))
            await wait_receipts(conn, tails, RECEIPT_TIMEOUT, poll=0.001, nudge=nudge)
        return replies

    return list(await asyncio.gather(*(one(c, s) for c, s in zip(conns, streams))))


async def send_until_received(
    conns: list[Connection], streams: list[Stream], nudge: Nudge | None = None
) -> tuple[float, list[list[Any]]]:
    """The timed part: send the streams until every sender's last transaction has a receipt;
    (seconds, the raw replies to check off the clock)."""
    t0 = time.perf_counter()
    replies = await send_streams(conns, streams, nudge)
    last = [tx.hash_hex for stream in streams for tx in stream.last_per_sender()]
    await wait_receipts(conns[0], last, RECEIPT_TIMEOUT, nudge=nudge)
    return time.perf_counter() - t0, replies


def raise_on_errors(name: str, stream_replies: list[list[Any]]) -> None:
    """BenchError listing the sends of `name` (a target) that were not answered with their hash."""
    errors: list[str] = []
    for replies in stream_replies:
        for txs, body, first in replies:
            errors += check_send_replies(body, txs, first)
    if errors:
        shown = "\n  ".join(errors[:10])
        raise BenchError(f"[{name}] {len(errors)} sends failed:\n  {shown}")


async def measure_target(
    target: Target, work: Workload, client: str = "raw", profile: Path | None = None
) -> dict[str, Any]:
    """Run the workload against one target; raise BenchError on any rejected or lost tx."""
    groups = split_senders(SENDERS, work.concurrency)
    plan = signing_plan(target.url, plan_counts(work.n, groups))
    started = time.perf_counter()
    signed = sign_transfers(target.chain_id, plan)
    warm_part, streams = warmup_and_streams(signed, groups, work.batch)
    log(
        f"[{target.name}] signed and serialized {sum(len(v) for v in signed.values())} "
        f"transfers in {time.perf_counter() - started:.1f} s"
    )
    conns = [await connect(target.url, client) for _ in streams]
    try:
        elapsed, nudges = await timed_send(target, conns, warm_part, streams, work.batch, profile)
        all_txs = [tx for stream in streams for tx in stream.txs]
        receipts = await wait_receipts(conns[0], [tx.hash_hex for tx in all_txs], RECEIPT_TIMEOUT)
        failed = [h for h, r in receipts.items() if r.get("status") != "0x1"]
        if failed:
            raise BenchError(f"[{target.name}] {len(failed)} transfers failed, e.g. {failed[0]}")
        blocks = {r["blockNumber"] for r in receipts.values()}
    finally:
        for conn in conns:
            await conn.close()
    return {
        "target": target.name,
        "n": len(all_txs),
        "batch": work.batch,
        "concurrency": work.concurrency,
        "confirmed": len(receipts),
        "errors": 0,
        "blocks": len(blocks),
        "nudges": nudges,
        "elapsed_s": round(elapsed, 4),
        "tx_per_s": round(len(all_txs) / elapsed, 1),
    }


async def timed_send(
    target: Target,
    conns: list[Connection],
    warm_part: dict[int, list[SignedTx]],
    streams: list[Stream],
    batch: int,
    profile: Path | None,
) -> tuple[float, int]:
    """Send the warm-up, then the measured streams until each sender's last transaction has a
    receipt (py-spy attached to the target if asked); (seconds, evm_mine nudges meanwhile).
    Raises BenchError if the target rejected anything."""
    nudge = Nudge() if target.nudge else None
    warm_stream = Stream.build(warm_part, SENDERS, batch)
    raise_on_errors(target.name, await send_streams(conns[:1], [warm_stream], nudge))
    warm_nudges = nudge.count if nudge else 0
    profiler = None
    if profile is not None and target.pid is not None:
        from benchmarks.profiling import PySpy

        profiler = PySpy(target.pid, profile)
        profiler.__enter__()
        await asyncio.sleep(1.0)  # let py-spy attach before the clock starts
    try:
        elapsed, replies = await send_until_received(conns, streams, nudge)
    finally:
        if profiler is not None:
            profiler.__exit__(None, None, None)
    raise_on_errors(target.name, replies)
    return elapsed, (nudge.count - warm_nudges) if nudge else 0


async def measure_node(
    work: Workload,
    client: str = "raw",
    profile: Path | None = None,
    scrape_every: float | None = None,
) -> dict[str, Any]:
    with NodeUnderTest() as node:
        target = node.target()
        log(f"[node] pid {target.pid} at {target.url} (chain {target.chain_id})")
        with node.log_tail_on_failure():
            async with scraping(target.url, scrape_every) as scrapes:
                row = await measure_target(target, work, client, profile)
            return row | ({"scrapes": scrapes[0]} if scrape_every is not None else {})


@contextlib.asynccontextmanager
async def scraping(url: str, every: float | None) -> AsyncIterator[list[int]]:
    """GET `url`/metrics every `every` s (none if None) until the block ends; yields a list
    holding the count of scrapes so far. BenchError if one is not answered with 200."""
    scrapes = [0]
    if every is None:
        yield scrapes
        return

    async def scrape() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            while True:
                answer = await http.get(url.rstrip("/") + "/metrics")
                if answer.status_code != 200:
                    raise BenchError(f"GET /metrics answered {answer.status_code}")
                scrapes[0] += 1
                await asyncio.sleep(every)

    task = asyncio.create_task(scrape())
    try:
        yield scrapes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def measure_anvil(work: Workload, client: str = "raw") -> dict[str, Any]:
    with AnvilUnderTest() as anvil:
        target = anvil.target()
        log(f"[anvil] pid {target.pid} at {target.url} (chain {target.chain_id}, automine)")
        return await measure_target(target, work, client)


def check_config(config: TransfersConfig, what: str) -> None:
    """BenchError unless our workload (and the peer's, if it runs) fits the node's limits."""
    for work, name in [(config.ours, what)] + ([(config.theirs, "peer")] if config.peer else []):
        if work.n < 1 or not 1 <= work.batch <= 2_000 or not 1 <= work.concurrency <= len(SENDERS):
            raise BenchError(
                f"{name}: need n >= 1, 1 <= batch <= 2000 (the node's batch limit) and "
                f"1 <= concurrency <= {len(SENDERS)} (one dev account at least per connection)"
            )


def log_rate(row: dict[str, Any]) -> None:
    """The progress line of one target's measured run."""
    nudges = f" ({row['nudges']} evm_mine nudges)" if row["target"] == "anvil" else ""
    log(
        f"[{row['target']}] {row['n']} transfers in {row['elapsed_s']:.2f} s: "
        f"{row['tx_per_s']:.0f} tx/s{nudges}"
    )


async def run_transfers(config: TransfersConfig) -> dict[str, Any]:
    check_config(config, "transfers")
    ours = await measure_node(config.ours, config.client, config.profile, config.scrape_every)
    log_rate(ours)
    peer = await measure_anvil(config.theirs, config.client) if config.peer else None
    if peer is not None:
        log_rate(peer)
    return throughput_result(
        "transfers",
        ours,
        peer,
        config.batch,
        config.concurrency,
        config.client,
        config.profile,
        scrape_every=config.scrape_every,
    )


def throughput_result(
    name: str,
    ours: dict[str, Any],
    peer: dict[str, Any] | None,
    batch: int,
    concurrency: int,
    client: str,
    profile: Path | None,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON of a throughput benchmark run against Anvil (transfers, evm)."""
    result: dict[str, Any] = {
        "benchmark": name,
        **extra,
        "n": ours["n"],
        "batch": batch,
        "concurrency": concurrency,
        "client": client,
        "tx_per_s": ours["tx_per_s"],
        "peer_tx_per_s": peer["tx_per_s"] if peer else None,
        "ratio": round(ours["tx_per_s"] / peer["tx_per_s"], 2) if peer else None,
        "confirmed": ours["confirmed"],
        "errors": ours["errors"],
        "ours": ours,
        "peer": peer,
        "environment": environment(),
    }
    if profile is not None and profile.suffix != ".svg":
        from benchmarks.profiling import summarize

        result["profile"] = summarize(profile)
    return result


def format_transfers(result: dict[str, Any]) -> str:
    table = format_throughput(result, f"transfers (client {result['client']})", with_gas=False)
    if result.get("scrape_every") is None:
        return table
    scrapes = result["ours"]["scrapes"]
    return f"{table}\nnode's /metrics scraped every {result['scrape_every']} s ({scrapes} scrapes)"


def format_throughput(result: dict[str, Any], title: str, with_gas: bool) -> str:
    rows = [result["ours"]] + ([result["peer"]] if result["peer"] else [])
    gas = f"{'gas/tx':>8}" if with_gas else ""
    head = (
        f"{'target':<8}{'txs':>8}{'batch':>7}{'conns':>6}{'blocks':>8}{gas}{'seconds':>9}"
        f"{'tx/s':>9}{'errors':>7}{'nudges':>7}"
    )
    lines = [title, head, "-" * len(head)]
    for row in rows:
        cell = f"{row['gas_per_tx']:>8}" if with_gas else ""
        lines.append(
            f"{row['target']:<8}{row['n']:>8}{row['batch']:>7}{row['concurrency']:>6}"
            f"{row['blocks']:>8}{cell}{row['elapsed_s']:>9.2f}{row['tx_per_s']:>9.0f}"
            f"{row['errors']:>7}{row['nudges']:>7}"
        )
    if result["ratio"] is not None:
        lines.append(f"ratio ours/anvil: {result['ratio']:.2f}x")
    if "profile" in result:
        from benchmarks.profiling import format_summary

        lines.append(format_summary(result["profile"]))
    return "\n".join(lines)
