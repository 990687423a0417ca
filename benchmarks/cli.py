"""`rollup bench ...`: throughput and latency of one app's node, next to Anvil.

    rollup bench transfers [--n N] [--batch B] [--concurrency C] [--scrape-every S] [--no-peer]
                           [--json]
    rollup bench latency [--seconds S] [--rate R] [--no-peer] [--json]
    rollup bench orderbook [--n N] [--batch B] [--concurrency C] [--json]
    rollup bench evm [--n N] [--batch B] [--concurrency C] [--no-peer] [--json]
    rollup bench evm-soak [--transfers N] [--sample-every K] [--max-seconds S] [--json]
    rollup bench bus [--transport embedded|nats] [--probes P] [--messages M] [--json]
    rollup bench da [--n N] [--batch B] [--concurrency C] [--json]
    rollup bench abuse [--seconds S] [--rate R] [--attackers A] [--attack NAME ...] [--json]
    rollup bench bridge [--probes P] [--burst N] [--senders S] [--json]

Each prints a table (or, with --json, one JSON object on stdout) and writes the JSON result to
bench-results/<name>.json in the directory it is run from (--results-dir to change it); the
runs of record are kept in benchmarks/results/. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from benchmarks.common import BenchError
from services.cliargs import OneLineParser

if TYPE_CHECKING:
    from benchmarks.transfers import TransfersConfig

__all__ = ["BENCHMARKS", "Benchmark", "RESULTS_DIR", "main"]

RESULTS_DIR = Path("bench-results")  # relative: where the command is run, never the sources

Result = tuple[dict[str, Any], str]  # the JSON result and its table
T = TypeVar("T")


@dataclass(frozen=True)
class Benchmark:
    """One `rollup bench NAME`: its help line, its own options, and how it runs."""

    help: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Result]
    peer: bool = False  # compared with Anvil: --no-peer, --client and --profile


def _run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's coroutine on uvloop (asyncio's loop if uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        import asyncio

        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# ---------------------------------------------------------------- the benchmarks' options


def _transfers_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=40_000, help="transfers (default 40000)")
    p.add_argument("--batch", type=int, default=2_000, help="requests a batch (2000)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="connections, each with its own senders (default 4, max 10)",
    )
    p.add_argument(
        "--peer-n",
        type=int,
        default=10_000,
        help="transfers for Anvil (default 10000; 0: same as --n)",
    )
    p.add_argument("--peer-batch", type=int, default=250, help="Anvil's batch (250)")
    p.add_argument(
        "--peer-concurrency", type=int, default=2, help="Anvil's connections (default 2)"
    )
    p.add_argument(
        "--scrape-every",
        type=float,
        default=None,
        metavar="S",
        help="GET the node's /metrics every S seconds while it runs (the metrics' cost)",
    )


def _latency_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=15.0, help="probing time (15)")
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="background load in tx/s (default: half the measured peak)",
    )
    p.add_argument(
        "--peak-n",
        type=int,
        default=20_000,
        help="transfers of the peak measurement (default 20000)",
    )


def _orderbook_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=20_000, help="orders (default 20000)")
    p.add_argument("--batch", type=int, default=500, help="requests a batch (500)")
    p.add_argument("--concurrency", type=int, default=2, help="connections (2)")
    p.add_argument(
        "--overhead-orders", type=int, default=4_000, help="in-process metering workload (4000)"
    )


def _evm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=40_000, help="transfers (default 40000)")
    p.add_argument("--batch", type=int, default=2_000, help="requests a batch (2000)")
    p.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")
    p.add_argument("--peer-n", type=int, default=10_000, help="Anvil's transfers (10000)")
    p.add_argument("--peer-batch", type=int, default=250, help="Anvil's batch (250)")
    p.add_argument("--peer-concurrency", type=int, default=2, help="Anvil's connections (2)")


def _soak_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--transfers", type=int, default=1_000_000, help="(default 1000000)")
    p.add_argument("--block-txs", type=int, default=2_000, help="a block's txs (2000)")
    p.add_argument("--recipients", type=int, default=1_000, help="holders reused (1000)")
    p.add_argument("--sample-every", type=int, default=20_000, help="transfers (20000)")
    p.add_argument("--warmup", type=int, default=200_000, help="transfers before the slope")
    p.add_argument("--chunk", type=int, default=10_000, help="signed per worker task")
    p.add_argument("--workers", type=int, default=1, help="signing processes (1)")
    p.add_argument("--max-seconds", type=float, default=3_600.0, help="time bound (3600)")
    p.add_argument("--block-cache", type=int, default=None, help="sequencer: blocks cached")
    p.add_argument("--history-entries", type=int, default=None, help="sequencer: history")
    p.add_argument(
        "--checkpoint-blocks", type=int, default=None, help="sequencer: blocks a checkpoint"
    )


def _bus_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--transport",
        action="append",
        choices=("embedded", "nats"),
        help="transport to measure (repeatable; default: both)",
    )
    p.add_argument("--probes", type=int, default=300, help="latency probes (300)")
    p.add_argument("--messages", type=int, default=20_000, help="calls per throughput run")
    p.add_argument("--per-tx", type=int, default=250, help="calls per transaction (250)")
    p.add_argument(
        "--block-interval-ms", type=int, default=2, help="minimum block interval of both apps (2)"
    )


def _da_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=20_000, help="transfers per workload (20000)")
    p.add_argument("--batch", type=int, default=2_000, help="requests a batch (2000)")
    p.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")


def _abuse_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per phase (5)")
    p.add_argument("--rate", type=float, default=100.0, help="stream transfers/s (100)")
    p.add_argument("--attackers", type=int, default=8, help="attacking connections (8)")
    p.add_argument(
        "--attack",
        action="append",
        default=None,
        help="run only this attack (repeatable; default: all)",
    )
    p.add_argument(
        "--flood-accounts",
        type=int,
        default=300,
        help="pool_flood: fresh accounts, 64 queued transactions each (300)",
    )


def _bridge_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--probes", type=int, default=20, help="deposits timed one by one (20)")
    p.add_argument(
        "--burst",
        type=int,
        default=2_000,
        help="deposits sent at once for the absorption rate (2000)",
    )
    p.add_argument("--senders", type=int, default=8, help="L1 accounts of the burst (8)")


def _peer_options(p: argparse.ArgumentParser) -> None:
    """The options of the benchmarks compared with Anvil."""
    p.add_argument("--no-peer", action="store_true", help="skip the Anvil comparison")
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="HTTP client: raw asyncio streams (default) or httpx",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the node with py-spy into this file (.svg: flame graph, "
        "else collapsed stacks, summarized in the result)",
    )


def _output_options(p: argparse.ArgumentParser) -> None:
    """The options of every benchmark."""
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where <name>.json is written (default: ./bench-results, in the directory the "
        "command is run from)",
    )


# ---------------------------------------------------------------- the benchmarks' runs
# Each imports its module only when it runs: the benchmarks pull in heavy dependencies.


def _transfers_config(args: argparse.Namespace) -> TransfersConfig:
    from benchmarks.transfers import TransfersConfig

    return TransfersConfig(
        n=args.n,
        batch=args.batch,
        concurrency=args.concurrency,
        peer=not args.no_peer,
        peer_n=args.peer_n,
        peer_batch=args.peer_batch,
        peer_concurrency=args.peer_concurrency,
        client=args.client,
        profile=args.profile,
    )


def _run_transfers(args: argparse.Namespace) -> Result:
    from benchmarks.transfers import format_transfers, run_transfers

    if args.scrape_every is not None and args.scrape_every <= 0:
        raise BenchError("--scrape-every takes a number of seconds above 0")
    config = replace(_transfers_config(args), scrape_every=args.scrape_every)
    result = _run_async(run_transfers(config))
    return result, format_transfers(result)


def _run_latency(args: argparse.Namespace) -> Result:
    from benchmarks.latency import LatencyConfig, format_latency, run_latency

    config = LatencyConfig(
        seconds=args.seconds,
        rate=args.rate,
        peak_n=args.peak_n,
        peer=not args.no_peer,
        client=args.client,
        profile=args.profile,
    )
    result = _run_async(run_latency(config))
    return result, format_latency(result)


def _run_orderbook(args: argparse.Namespace) -> Result:
    from benchmarks.orderbook import OrderbookConfig, format_orderbook, run_orderbook

    result = run_orderbook(
        OrderbookConfig(args.n, args.batch, args.concurrency, args.overhead_orders)
    )
    return result, format_orderbook(result)


def _run_evm(args: argparse.Namespace) -> Result:
    from benchmarks.evm import format_evm, run_evm

    result = _run_async(run_evm(_transfers_config(args)))
    return result, format_evm(result)


def _run_soak(args: argparse.Namespace) -> Result:
    from dataclasses import replace

    from benchmarks.evm_soak import SoakConfig, format_soak, run_soak
    from sequencer.node import SequencerConfig

    overrides = {
        name: getattr(args, name)
        for name in ("block_cache", "history_entries", "checkpoint_blocks")
        if getattr(args, name) is not None
    }
    config = SoakConfig(
        transfers=args.transfers,
        block_txs=args.block_txs,
        recipients=args.recipients,
        sample_every=args.sample_every,
        chunk=args.chunk,
        workers=args.workers,
        max_seconds=args.max_seconds,
        warmup=args.warmup,
        sequencer=replace(SequencerConfig(), **overrides),
    )
    result = run_soak(config)
    return result, format_soak(result)


def _run_bus(args: argparse.Namespace) -> Result:
    from benchmarks.bus import BusConfig, format_bus, run_bus

    config = BusConfig(
        transports=tuple(args.transport or ("embedded", "nats")),
        probes=args.probes,
        messages=args.messages,
        per_tx=args.per_tx,
        block_interval_ms=args.block_interval_ms,
    )
    result = run_bus(config)
    return result, format_bus(result)


def _run_da(args: argparse.Namespace) -> Result:
    from benchmarks.da import DAConfig, format_da, run_da

    result = run_da(DAConfig(args.n, args.batch, args.concurrency))
    return result, format_da(result)


def _run_abuse(args: argparse.Namespace) -> Result:
    from benchmarks.abuse import AbuseConfig, format_abuse, run_abuse

    config = AbuseConfig(
        args.seconds, args.rate, args.attackers, tuple(args.attack or ()), args.flood_accounts
    )
    result = _run_async(run_abuse(config))
    return result, format_abuse(result)


def _run_bridge(args: argparse.Namespace) -> Result:
    from benchmarks.bridge import BridgeBenchConfig, format_bridge, run_bridge

    result = run_bridge(BridgeBenchConfig(args.probes, args.burst, args.senders))
    return result, format_bridge(result)


BENCHMARKS: dict[str, Benchmark] = {
    "transfers": Benchmark(
        "batched pre-signed transfers: tx/s vs Anvil", _transfers_options, _run_transfers, peer=True
    ),
    "latency": Benchmark(
        "send-to-receipt latency at half the peak load", _latency_options, _run_latency, peer=True
    ),
    "orderbook": Benchmark(
        "limit orders placed and matched per second", _orderbook_options, _run_orderbook
    ),
    "evm": Benchmark(
        "ERC-20 transfers on an EVM app: tx/s vs Anvil (cancun)", _evm_options, _run_evm, peer=True
    ),
    "evm-soak": Benchmark("1M ERC-20 transfers in process, RSS sampled", _soak_options, _run_soak),
    "bus": Benchmark("cross-app call->callback round trip and messages/s", _bus_options, _run_bus),
    "da": Benchmark("DA bytes per transfer; verifier speed vs sequencing", _da_options, _run_da),
    "abuse": Benchmark(
        "latency of a steady stream while the node is attacked", _abuse_options, _run_abuse
    ),
    "bridge": Benchmark(
        "L1 bridge on a devnet: deposit latency and rate, withdrawal to final, L1 gas beside OP's",
        _bridge_options,
        _run_bridge,
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="rollup bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, bench in BENCHMARKS.items():
        p = sub.add_parser(name, help=bench.help)
        bench.options(p)
        if bench.peer:
            _peer_options(p)
        _output_options(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the node and Anvil (own sessions) are stopped too.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main_thread else None
    try:
        result, text = BENCHMARKS[args.benchmark].run(args)
    except BenchError as exc:
        print(f"bench {args.benchmark} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    encoded = orjson.dumps(result, option=orjson.OPT_INDENT_2)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{args.benchmark}.json").write_bytes(encoded + b"\n")
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
