"""`rollup bench evm-soak`: a million ERC-20 transfers through one sequencer, RSS sampled.

In process, not over JSON-RPC: a `Sequencer` of the `evm` template (SQLite file in a temp dir,
the node's default `SequencerConfig` unless overridden, and the node's GC tuning) is fed raw
signed transactions the way the RPC server feeds it: `decode_many` on the sequencer's recovery
thread, `admit`, then `produce` (build, write, publish) one block of `--block-txs` at a time.
The HTTP layer is left out because it would only make the soak slower; it holds no state
between requests.

The workload: dev accounts 1..9 are first given tokens by dev account 0; then the ten dev
accounts send `transfer(recipient, 1)` round-robin, each transfer to one of a fixed set of
`--recipients` addresses (1,000 by default). The set is bounded on purpose: the whole state is
held in memory by design (NOTES.md), so every new holder costs memory for good; with a bounded
set, the state stops growing after the first pass and flat RSS means no leak.

Signing (coincurve, ~50-100 us a transaction) runs in worker processes, in chunks of
`--chunk`, at most `workers + 1` chunks ahead, so neither the signer's memory nor a backlog of
signed transactions shows in this process's RSS. RSS (VmRSS of this process) is sampled every
`--sample-every` transfers, with the sizes of the sequencer's bounded caches beside it, since
those are what may still grow after warm-up: blocks cached (bounded by `block_cache` blocks),
history entries (`history_entries` changed keys) and the tx index (cleared at each checkpoint).

Checked (any failure fails the run): every transaction lands in a block with receipt status 1,
and at the end every sender's nonce and every holder's balance (eth_call `balanceOf` through
the VM) is what the transfers imply. `--max-seconds` bounds the run; if hit, the result says
how far it got (`completed: false`).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, environment, log
from benchmarks.evm import FUND, Token, balance_of_data, render_evm_app, sign_token_transfer
from benchmarks.signing import SENDERS
from rollup.crypto import keccak
from rollup.errors import RollupError
from rollup.genesis import DEV_ADDRESSES
from rollup.types import Address
from sequencer.admission import decode_many
from sequencer.node import Sequencer, SequencerConfig
from services.waiting import WaitTimeout, wait_until
from vm.interface import Message
from vm.state import get_account
from vm.stf import env_of

__all__ = ["SoakConfig", "format_soak", "run_soak", "rss_mb"]

AMOUNT = 1


@dataclass(frozen=True)
class SoakConfig:
    transfers: int = 1_000_000
    block_txs: int = 2_000  # the node's max_block_txs: what blocks hold under full load
    recipients: int = 1_000
    sample_every: int = 20_000
    chunk: int = 10_000
    workers: int = 1
    max_seconds: float = 3_600.0
    warmup: int = 200_000  # transfers before the slope is measured
    sequencer: SequencerConfig = SequencerConfig()


def rss_mb() -> float:
    """This process's resident set (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise BenchError("no VmRSS in /proc/self/status")


def recipient_set(count: int) -> list[bytes]:
    """`count` fixed addresses that are no dev account."""
    return [keccak(b"soak-recipient" + i.to_bytes(4, "big"))[12:] for i in range(count)]


def sign_chunk(
    chain_id: int, token: bytes, start: int, count: int, first: list[int], recipients: list[bytes]
) -> list[bytes]:
    """Transfers number `start`..`start + count` of the soak (worker process): transfer k is
    sent by dev account k % 10 at nonce first[sender] + k // 10, to recipients[k % len]."""
    senders = len(first)
    out = []
    for k in range(start, start + count):
        sender, nonce = k % senders, first[k % senders] + k // senders
        to = recipients[k % len(recipients)]
        tx = sign_token_transfer(sender, chain_id, nonce, token, to, AMOUNT)
        out.append(bytes.fromhex(tx.raw_hex[2:]))
    return out


def signed_chunks(
    config: SoakConfig, chain_id: int, token: bytes, first: list[int], recipients: list[bytes]
) -> Generator[list[bytes], None, None]:
    """The soak's raw transactions, chunk by chunk, signed ahead by worker processes."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(config.workers, mp_context=context) as pool:
        ahead: deque[Future[list[bytes]]] = deque()
        starts = iter(range(0, config.transfers, config.chunk))
        for start in starts:
            count = min(config.chunk, config.transfers - start)
            ahead.append(pool.submit(sign_chunk, chain_id, token, start, count, first, recipients))
            if len(ahead) > config.workers:
                break
        while ahead:
            chunk = ahead.popleft().result()
            following = next(starts, None)
            if following is not None:
                count = min(config.chunk, config.transfers - following)
                ahead.append(
                    pool.submit(sign_chunk, chain_id, token, following, count, first, recipients)
                )
            yield chunk


class Soak:
    """One sequencer in a temp dir and the clock of its blocks."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.tmp = Path(tempfile.mkdtemp(prefix="rollup-soak-"))
        app_dir = render_evm_app(self.tmp / "app", name="soak-evm")
        self.token = Token.of(app_dir)
        db_url = f"sqlite:///{self.tmp / 'chain.db'}"
        self.node = Sequencer(self.token.manifest, self.token.artifact, db_url, config.sequencer)
        self.chain_id = self.node.chain_id
        self.clock_ms = time.time_ns() // 1_000_000
        self.blocks = 0

    def close(self) -> None:
        # Sequencer.close shuts the writer down even while a chunked checkpoint still has
        # chunks to queue (they then fail with "cannot schedule new futures after shutdown"):
        # let a running checkpoint finish first.
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: not self.node.checkpoints.running, 60, "the checkpoint")
        self.node.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def feed(self, raws: list[bytes]) -> int:
        """Admit `raws` as the RPC server does and build them into blocks; the count that
        landed with status 1 (all of them, or BenchError)."""
        node = self.node
        landed = 0
        for result in decode_many(raws, self.chain_id, node.decoder):
            if isinstance(result, RollupError):
                raise BenchError(f"a signed transfer did not decode: {result}")
            node.admit(result)
        while node.has_work():
            self.clock_ms = max(self.clock_ms + 1, time.time_ns() // 1_000_000)
            sealed = node.produce(self.clock_ms)
            if sealed is None:
                raise BenchError("the pool has work but no block was built")
            self.blocks += 1
            for receipt in sealed.block.receipts:
                if receipt.status != 1:
                    raise BenchError(f"a transfer failed in block {sealed.block.header.number}")
            landed += len(sealed.block.receipts)
        if node.mempool.ready_count or len(node.mempool.by_hash):
            raise BenchError(f"{len(node.mempool.by_hash)} transactions stayed in the pool")
        return landed

    def balance_of(self, holder: bytes) -> int:
        node = self.node
        head = node.committed
        sender = Address(DEV_ADDRESSES[0])
        msg = Message(
            sender, Address(self.token.address), 0, balance_of_data(holder), 10**7, sender, 0
        )
        result = node.vm.call(node.state_at(head.number), env_of(head), msg)
        if not result.success:
            raise BenchError(f"balanceOf(0x{holder.hex()}) reverted")
        return int.from_bytes(result.output, "big")

    def nonce(self, address: bytes) -> int:
        return get_account(self.node.state, address)[0]

    def caches(self) -> dict[str, int]:
        """Sizes of what the sequencer holds that may grow after warm-up (diagnostics: these
        read private fields on purpose, to explain the RSS curve)."""
        node = self.node
        return {
            "blocks_cached": node.cached()[0],
            "cached_txs": node.cached()[1],
            "history_entries": node.state._entries,
            "tx_index": node.checkpoints.held_transactions,
            "state_keys": len(node.state._values),
        }


def _sample(soak: Soak, transfers: int, started: float) -> dict[str, Any]:
    return {
        "transfers": transfers,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_mb": round(rss_mb(), 1),
        "blocks": soak.blocks,
        **soak.caches(),
    }


def _fund(soak: Soak) -> None:
    """Dev account 0 gives every other sender FUND tokens (one block)."""
    first = soak.nonce(DEV_ADDRESSES[0])
    token = soak.token.address
    txs = [
        sign_token_transfer(0, soak.chain_id, first + i, token, DEV_ADDRESSES[s], FUND)
        for i, s in enumerate(SENDERS[1:])
    ]
    soak.feed([bytes.fromhex(tx.raw_hex[2:]) for tx in txs])


def slope_per_100k(samples: list[dict[str, Any]], after: int) -> float | None:
    """Least-squares slope of RSS (MiB per 100k transfers) over the samples past `after`."""
    points = [(s["transfers"], s["rss_mb"]) for s in samples if s["transfers"] >= after]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return round(cov / var * 100_000, 2) if var else None


def run_soak(config: SoakConfig) -> dict[str, Any]:
    if config.transfers < 1 or config.block_txs < 1 or config.recipients < 1:
        raise BenchError("need --transfers, --block-txs and --recipients of at least 1")
    if config.block_txs > config.sequencer.max_block_txs:
        config = replace(
            config, sequencer=replace(config.sequencer, max_block_txs=config.block_txs)
        )
    soak = Soak(config)
    try:
        return _run(soak, config)
    finally:
        soak.close()


def _run(soak: Soak, config: SoakConfig) -> dict[str, Any]:
    from services.node import tune_gc

    _fund(soak)
    recipients = recipient_set(config.recipients)
    first = [soak.nonce(DEV_ADDRESSES[s]) for s in SENDERS]
    before = {s: soak.balance_of(DEV_ADDRESSES[s]) for s in SENDERS}
    tune_gc()  # as the node process does after start-up
    log(
        f"[soak] {config.transfers} transfers, blocks of {config.block_txs}, "
        f"{config.recipients} recipients; RSS {rss_mb():.0f} MiB"
    )
    started = time.perf_counter()
    samples = [_sample(soak, 0, started)]
    done, next_sample, completed = 0, config.sample_every, True
    chunks = signed_chunks(config, soak.chain_id, soak.token.address, first, recipients)
    for chunk in chunks:
        for i in range(0, len(chunk), config.block_txs):
            done += soak.feed(chunk[i : i + config.block_txs])
            if done >= next_sample or done == config.transfers:
                samples.append(_sample(soak, done, started))
                next_sample += config.sample_every
                s = samples[-1]
                log(
                    f"[soak] {done:>8} transfers {s['seconds']:>8.1f} s "
                    f"RSS {s['rss_mb']:>7.1f} MiB  blocks cached {s['blocks_cached']}, "
                    f"history {s['history_entries']}, tx index {s['tx_index']}"
                )
        del chunk
        if time.perf_counter() - started > config.max_seconds and done < config.transfers:
            completed = False
            log(f"[soak] stopped after {config.max_seconds:g} s at {done} transfers")
            break
    elapsed = time.perf_counter() - started
    chunks.close()  # stops the signers when the run was cut short
    _check_final(soak, done, first, before, recipients)
    gc.collect()
    warm = min(config.warmup, done // 2)
    at_warm = next((s for s in samples if s["transfers"] >= warm), samples[-1])
    return {
        "benchmark": "evm-soak",
        "path": "in process: decode_many + Sequencer.admit + Sequencer.produce (no HTTP)",
        "transfers": done,
        "completed": completed,
        "block_txs": config.block_txs,
        "recipients": config.recipients,
        "sample_every": config.sample_every,
        "sequencer_config": {
            "block_cache": config.sequencer.block_cache,
            "history_entries": config.sequencer.history_entries,
            "checkpoint_blocks": config.sequencer.checkpoint_blocks,
            "checkpoint_keys": config.sequencer.checkpoint_keys,
        },
        "elapsed_s": round(elapsed, 1),
        "tx_per_s": round(done / elapsed, 1),
        "blocks": soak.blocks,
        "rss_start_mb": samples[0]["rss_mb"],
        "warmup_transfers": at_warm["transfers"],
        "rss_after_warmup_mb": at_warm["rss_mb"],
        "rss_end_mb": samples[-1]["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "slope_mb_per_100k_after_warmup": slope_per_100k(samples, at_warm["transfers"]),
        "checked": {
            "receipts_status_1": done,
            "nonces": len(SENDERS),
            "balances": len(SENDERS) + len(recipients),
        },
        "samples": samples,
        "environment": environment(),
    }


def _check_final(
    soak: Soak, done: int, first: list[int], before: dict[int, int], recipients: list[bytes]
) -> None:
    """Nonces and token balances are what `done` transfers (k = 0..done-1) imply."""
    senders = len(SENDERS)
    received = [0] * len(recipients)
    for s in SENDERS:
        sent = len(range(s, done, senders))
        if soak.nonce(DEV_ADDRESSES[s]) != first[s] + sent:
            raise BenchError(
                f"sender {s} has nonce {soak.nonce(DEV_ADDRESSES[s])}, expected {first[s] + sent}"
            )
        if soak.balance_of(DEV_ADDRESSES[s]) != before[s] - sent * AMOUNT:
            raise BenchError(f"sender {s} holds the wrong token balance")
    for k in range(min(done, len(recipients))):
        received[k] = len(range(k, done, len(recipients))) * AMOUNT
    for holder, expected in zip(recipients, received, strict=True):
        got = soak.balance_of(holder)
        if got != expected:
            raise BenchError(f"recipient 0x{holder.hex()} holds {got}, expected {expected}")


def format_soak(result: dict[str, Any]) -> str:
    lines = [
        f"evm-soak: {result['transfers']} ERC-20 transfers in {result['elapsed_s']} s "
        f"({result['tx_per_s']:.0f} tx/s, {result['blocks']} blocks of {result['block_txs']}, "
        f"{result['recipients']} recipients; {result['path']})",
        f"{'transfers':>10}{'seconds':>9}{'RSS MiB':>9}{'blocks':>8}{'cached':>8}"
        f"{'history':>10}{'tx index':>10}{'state keys':>11}",
    ]
    for s in result["samples"]:
        lines.append(
            f"{s['transfers']:>10}{s['seconds']:>9.1f}{s['rss_mb']:>9.1f}{s['blocks']:>8}"
            f"{s['blocks_cached']:>8}{s['history_entries']:>10}{s['tx_index']:>10}"
            f"{s['state_keys']:>11}"
        )
    lines.append(
        f"RSS start {result['rss_start_mb']} MiB, after warm-up ({result['warmup_transfers']} "
        f"transfers) {result['rss_after_warmup_mb']}, end {result['rss_end_mb']}, max "
        f"{result['rss_max_mb']}; slope after warm-up "
        f"{result['slope_mb_per_100k_after_warmup']} MiB per 100k transfers"
        + ("" if result["completed"] else " (stopped early by --max-seconds)")
    )
    return "\n".join(lines)
