"""`rollup bench latency`: soft-confirmation latency under about half the peak load.

1. Peak: a short `transfers` run on the same node (skipped with `--rate`); the background rate
   is half its tx/s.
2. Background: the dev accounts 1..9, dealt over three connections, send their pre-signed
   transfers in small batches paced to the rate: every tick a connection sends what it is behind
   schedule (each connection waits for its previous batch's answer, so a sender's nonces arrive
   in order). It runs alone for a second before the probes start and stops after them.
3. Probes: dev account 0 sends one transfer per request (no batch), one at a time, at random
   gaps of 5..25 ms. A probe's latency runs from the start of its eth_sendRawTransaction request
   until eth_getTransactionReceipt returns the receipt (queried right after the send's answer,
   and again until present). p50/p90/p99/max over all probes.

The peer is Anvil with default automine under the same procedure (its own peak and rate).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import BenchError, environment, log, nonces, percentile
from benchmarks.http import (
    Connection,
    Nudge,
    check_send_replies,
    connect,
    request_body,
    wait_receipts,
)
from benchmarks.signing import (
    SENDERS,
    SignedTx,
    batch_body,
    interleave,
    sender_addresses,
    sign_transfers,
    split_senders,
)
from benchmarks.targets import AnvilUnderTest, NodeUnderTest, Target
from benchmarks.transfers import Workload, measure_target

__all__ = ["LatencyConfig", "run_latency", "measure_latency", "format_latency"]

PROBE_SENDER = 0
LOAD_SENDERS = SENDERS[1:]
LOAD_CONNECTIONS = 3
TICK = 0.01
RAMP = 1.0
PROBE_GAP = (0.005, 0.025)


@dataclass(frozen=True)
class LatencyConfig:
    seconds: float = 15.0
    rate: float | None = None
    load_fraction: float = 0.5
    peak_n: int = 20_000
    peak: Workload = Workload(20_000, 2_000, 4)
    peer: bool = True
    peer_rate: float | None = None
    peer_peak: Workload = Workload(10_000, 250, 2)
    client: str = "raw"
    profile: Path | None = None


async def _load(
    conn: Connection, txs: list[SignedTx], rate: float, stop: asyncio.Event, errors: list[str]
) -> tuple[int, float]:
    """Send `txs` at `rate` tx/s in small batches until `stop`; (sent, seconds)."""
    sent = 0
    start = time.perf_counter()
    next_tick = start
    while not stop.is_set() and sent < len(txs):
        due = min(int((time.perf_counter() - start) * rate) + 1, len(txs))
        if due > sent:
            part = txs[sent : min(due, sent + 2_000)]
            reply = await conn.post(batch_body(part, sent))
            errors += check_send_replies(reply, part, sent)
            sent += len(part)
        next_tick += TICK
        delay = next_tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_tick = time.perf_counter()
    if sent >= len(txs) and not stop.is_set():
        errors.append("the background load ran out of signed transactions")
    return sent, time.perf_counter() - start


async def _probe(conn: Connection, tx: SignedTx, nudge: Nudge | None) -> tuple[float, float]:
    """(send seconds, send-to-receipt seconds) of one probe."""
    body = request_body("eth_sendRawTransaction", tx.raw_hex)
    t0 = time.perf_counter()
    reply = orjson.loads(await conn.post(body))
    t_sent = time.perf_counter()
    if reply.get("result") != tx.hash_hex:
        raise BenchError(f"probe nonce {tx.nonce}: {reply}")
    await wait_receipts(conn, [tx.hash_hex], timeout=30.0, poll=0.0005, nudge=nudge)
    return t_sent - t0, time.perf_counter() - t0


async def measure_latency(
    target: Target, seconds: float, rate: float, client: str = "raw", profile: Path | None = None
) -> dict[str, Any]:
    groups = split_senders(LOAD_SENDERS, LOAD_CONNECTIONS)
    total = int(rate * (seconds + RAMP + 5)) + 100
    per_group = [total // len(groups) + 1 for _ in groups]
    plan: dict[int, tuple[int, int]] = {}
    first = nonces(target.url, sender_addresses(SENDERS))
    for group, count in zip(groups, per_group):
        for k, sender in enumerate(group):
            plan[sender] = (first[sender], count // len(group) + (k < count % len(group)))
    max_probes = int(seconds / PROBE_GAP[0]) + 10
    plan[PROBE_SENDER] = (first[PROBE_SENDER], max_probes)
    started = time.perf_counter()
    signed = sign_transfers(target.chain_id, plan)
    streams = [interleave([signed[s] for s in group]) for group in groups]
    probes = signed[PROBE_SENDER]
    log(
        f"[{target.name}] signed {sum(len(v) for v in signed.values())} transfers in "
        f"{time.perf_counter() - started:.1f} s; load {rate:.0f} tx/s for {seconds:g} s"
    )

    # Anvil under load can leave a probe unmined for good (see `Nudge`); a probe waits 100 ms
    # before its evm_mine, and the result counts those.
    nudge = Nudge() if target.nudge else None
    load_conns = [await connect(target.url, client) for _ in groups]
    probe_conn = await connect(target.url, client)
    stop = asyncio.Event()
    errors: list[str] = []
    share = rate / sum(len(s) for s in streams)
    tasks = [
        asyncio.create_task(_load(conn, txs, share * len(txs), stop, errors))
        for conn, txs in zip(load_conns, streams)
    ]
    latencies: list[float] = []
    sends: list[float] = []
    profiler = None
    try:
        await asyncio.sleep(RAMP)
        if profile is not None and target.pid is not None:
            from benchmarks.profiling import PySpy

            profiler = PySpy(target.pid, profile).__enter__()
        rng = random.Random(1)
        deadline = time.perf_counter() + seconds
        for tx in probes:
            if time.perf_counter() >= deadline or any(t.done() for t in tasks):
                break
            send_s, total_s = await _probe(probe_conn, tx, nudge)
            sends.append(send_s)
            latencies.append(total_s)
            await asyncio.sleep(rng.uniform(*PROBE_GAP))
    finally:
        if profiler is not None:
            profiler.__exit__(None, None, None)
        stop.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for conn in [*load_conns, probe_conn]:
            await conn.close()
    for item in done:
        if isinstance(item, BaseException):
            raise BenchError(f"[{target.name}] background load failed: {item!r}") from item
    if errors:
        shown = "\n  ".join(errors[:10])
        raise BenchError(f"[{target.name}] {len(errors)} background sends failed:\n  {shown}")
    load_sent = sum(sent for sent, _ in done)  # type: ignore[misc]
    load_seconds = max(secs for _, secs in done)  # type: ignore[misc]
    latencies.sort()
    sends.sort()
    ms = 1000.0
    return {
        "target": target.name,
        "rate": round(rate, 1),
        "achieved_rate": round(load_sent / load_seconds, 1),
        "probes": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * ms, 3),
        "p90_ms": round(percentile(latencies, 90) * ms, 3),
        "p99_ms": round(percentile(latencies, 99) * ms, 3),
        "max_ms": round(latencies[-1] * ms, 3) if latencies else 0.0,
        "mean_ms": round(statistics.fmean(latencies) * ms, 3) if latencies else 0.0,
        "send_p50_ms": round(percentile(sends, 50) * ms, 3),
        "send_p99_ms": round(percentile(sends, 99) * ms, 3),
        "nudges": nudge.count if nudge else 0,
    }


async def _one_target(
    target: Target,
    config: LatencyConfig,
    rate: float | None,
    peak_work: Workload,
    profile: Path | None,
) -> dict[str, Any]:
    peak = None
    if rate is None:
        peak = await measure_target(target, peak_work, config.client)
        rate = peak["tx_per_s"] * config.load_fraction
        log(f"[{target.name}] peak {peak['tx_per_s']:.0f} tx/s; load at {rate:.0f} tx/s")
    result = await measure_latency(target, config.seconds, rate, config.client, profile)
    result["peak_tx_per_s"] = peak["tx_per_s"] if peak else None
    log(
        f"[{target.name}] {result['probes']} probes: p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms"
    )
    return result


async def run_latency(config: LatencyConfig) -> dict[str, Any]:
    if config.seconds <= 0 or (config.rate is not None and config.rate <= 0):
        raise BenchError("need --seconds > 0 and --rate > 0")
    peak_work = Workload(config.peak_n, config.peak.batch, config.peak.concurrency)
    with NodeUnderTest() as node:
        target = node.target()
        log(f"[node] pid {target.pid} at {target.url} (chain {target.chain_id})")
        with node.log_tail_on_failure():
            ours = await _one_target(target, config, config.rate, peak_work, config.profile)
    peer = None
    if config.peer:
        with AnvilUnderTest() as anvil:
            target = anvil.target()
            log(f"[anvil] pid {target.pid} at {target.url} (automine)")
            peer = await _one_target(target, config, config.peer_rate, config.peer_peak, None)
    result: dict[str, Any] = {
        "benchmark": "latency",
        "seconds": config.seconds,
        "rate": ours["rate"],
        "probes": ours["probes"],
        "p50_ms": ours["p50_ms"],
        "p99_ms": ours["p99_ms"],
        "max_ms": ours["max_ms"],
        "peer_p50_ms": peer["p50_ms"] if peer else None,
        "peer_p99_ms": peer["p99_ms"] if peer else None,
        "ours": ours,
        "peer": peer,
        "client": config.client,
        "environment": environment(),
    }
    if config.profile is not None and config.profile.suffix != ".svg":
        from benchmarks.profiling import summarize

        result["profile"] = summarize(config.profile)
    return result


def format_latency(result: dict[str, Any]) -> str:
    rows = [result["ours"]] + ([result["peer"]] if result["peer"] else [])
    head = (
        f"{'target':<8}{'peak/s':>8}{'load/s':>8}{'probes':>8}{'p50 ms':>9}{'p90 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'send p50':>10}"
    )
    lines = [
        f"latency: send to queryable receipt, {result['seconds']:g} s of probes",
        head,
        "-" * len(head),
    ]
    for row in rows:
        peak = f"{row['peak_tx_per_s']:.0f}" if row["peak_tx_per_s"] else "-"
        lines.append(
            f"{row['target']:<8}{peak:>8}{row['achieved_rate']:>8.0f}{row['probes']:>8}"
            f"{row['p50_ms']:>9.2f}{row['p90_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['max_ms']:>9.2f}{row['send_p50_ms']:>10.2f}"
        )
    if "profile" in result:
        from benchmarks.profiling import format_summary

        lines.append(format_summary(result["profile"]))
    return "\n".join(lines)
