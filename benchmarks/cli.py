"""`rollup bench ...`: throughput and latency of one app's node, next to Anvil.

    rollup bench transfers [--n N] [--batch B] [--concurrency C] [--no-peer] [--json]
    rollup bench latency [--seconds S] [--rate R] [--no-peer] [--json]
    rollup bench orderbook [--n N] [--batch B] [--concurrency C] [--json]
    rollup bench evm [--n N] [--batch B] [--concurrency C] [--no-peer] [--json]
    rollup bench evm-soak [--transfers N] [--sample-every K] [--max-seconds S] [--json]
    rollup bench bus [--transport embedded|nats] [--probes P] [--messages M] [--json]
    rollup bench da [--n N] [--batch B] [--concurrency C] [--json]
    rollup bench abuse [--seconds S] [--rate R] [--attackers A] [--attack NAME ...] [--json]
    rollup bench bridge [--probes P] [--burst N] [--senders S] [--json]

Each prints a table (or, with --json, one JSON object on stdout) and writes the JSON result to
benchmarks/results/<name>.json. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import BenchError

__all__ = ["main", "RESULTS_DIR"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollup bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="benchmark", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-peer", action="store_true", help="skip the Anvil comparison")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument(
            "--client",
            choices=("raw", "httpx"),
            default="raw",
            help="HTTP client: raw asyncio streams (default) or httpx",
        )
        p.add_argument(
            "--results-dir",
            type=Path,
            default=RESULTS_DIR,
            help="where <name>.json is written (default: benchmarks/results)",
        )
        p.add_argument(
            "--profile",
            type=Path,
            default=None,
            help="record the node with py-spy into this file (.svg: flame graph, "
            "else collapsed stacks, summarized in the result)",
        )

    transfers = sub.add_parser("transfers", help="batched pre-signed transfers: tx/s vs Anvil")
    transfers.add_argument("--n", type=int, default=40_000, help="transfers (default 40000)")
    transfers.add_argument("--batch", type=int, default=2_000, help="requests a batch (2000)")
    transfers.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="connections, each with its own senders (default 4, max 10)",
    )
    transfers.add_argument(
        "--peer-n",
        type=int,
        default=10_000,
        help="transfers for Anvil (default 10000; 0: same as --n)",
    )
    transfers.add_argument("--peer-batch", type=int, default=250, help="Anvil's batch (250)")
    transfers.add_argument(
        "--peer-concurrency", type=int, default=2, help="Anvil's connections (default 2)"
    )
    common(transfers)

    latency = sub.add_parser("latency", help="send-to-receipt latency at half the peak load")
    latency.add_argument("--seconds", type=float, default=15.0, help="probing time (15)")
    latency.add_argument(
        "--rate",
        type=float,
        default=None,
        help="background load in tx/s (default: half the measured peak)",
    )
    latency.add_argument(
        "--peak-n",
        type=int,
        default=20_000,
        help="transfers of the peak measurement (default 20000)",
    )
    common(latency)

    orderbook = sub.add_parser("orderbook", help="limit orders placed and matched per second")
    orderbook.add_argument("--n", type=int, default=20_000, help="orders (default 20000)")
    orderbook.add_argument("--batch", type=int, default=500, help="requests a batch (500)")
    orderbook.add_argument("--concurrency", type=int, default=2, help="connections (2)")
    orderbook.add_argument(
        "--overhead-orders", type=int, default=4_000, help="in-process metering workload (4000)"
    )
    orderbook.add_argument("--json", action="store_true", help="print one JSON object")
    orderbook.add_argument("--results-dir", type=Path, default=RESULTS_DIR)

    evm = sub.add_parser("evm", help="ERC-20 transfers on an EVM app: tx/s vs Anvil (cancun)")
    evm.add_argument("--n", type=int, default=40_000, help="transfers (default 40000)")
    evm.add_argument("--batch", type=int, default=2_000, help="requests a batch (2000)")
    evm.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")
    evm.add_argument("--peer-n", type=int, default=10_000, help="Anvil's transfers (10000)")
    evm.add_argument("--peer-batch", type=int, default=250, help="Anvil's batch (250)")
    evm.add_argument("--peer-concurrency", type=int, default=2, help="Anvil's connections (2)")
    common(evm)

    soak = sub.add_parser("evm-soak", help="1M ERC-20 transfers in process, RSS sampled")
    soak.add_argument("--transfers", type=int, default=1_000_000, help="(default 1000000)")
    soak.add_argument("--block-txs", type=int, default=2_000, help="a block's txs (2000)")
    soak.add_argument("--recipients", type=int, default=1_000, help="holders reused (1000)")
    soak.add_argument("--sample-every", type=int, default=20_000, help="transfers (20000)")
    soak.add_argument("--warmup", type=int, default=200_000, help="transfers before the slope")
    soak.add_argument("--chunk", type=int, default=10_000, help="signed per worker task")
    soak.add_argument("--workers", type=int, default=1, help="signing processes (1)")
    soak.add_argument("--max-seconds", type=float, default=3_600.0, help="time bound (3600)")
    soak.add_argument("--block-cache", type=int, default=None, help="sequencer: blocks cached")
    soak.add_argument("--history-entries", type=int, default=None, help="sequencer: history")
    soak.add_argument(
        "--checkpoint-blocks", type=int, default=None, help="sequencer: blocks a checkpoint"
    )
    soak.add_argument("--json", action="store_true", help="print one JSON object")
    soak.add_argument("--results-dir", type=Path, default=RESULTS_DIR)

    bus = sub.add_parser("bus", help="cross-app call->callback round trip and messages/s")
    bus.add_argument("--transport", action="append", choices=("embedded", "nats"),
                     help="transport to measure (repeatable; default: both)")  # fmt: skip
    bus.add_argument("--probes", type=int, default=300, help="latency probes (300)")
    bus.add_argument("--messages", type=int, default=20_000, help="calls per throughput run")
    bus.add_argument("--per-tx", type=int, default=250, help="calls per transaction (250)")
    bus.add_argument("--block-interval-ms", type=int, default=2,
                     help="minimum block interval of both apps (2)")  # fmt: skip
    bus.add_argument("--json", action="store_true", help="print one JSON object")
    bus.add_argument("--results-dir", type=Path, default=RESULTS_DIR)

    da = sub.add_parser("da", help="DA bytes per transfer; verifier speed vs sequencing")
    da.add_argument("--n", type=int, default=20_000, help="transfers per workload (20000)")
    da.add_argument("--batch", type=int, default=2_000, help="requests a batch (2000)")
    da.add_argument("--concurrency", type=int, default=4, help="connections (default 4)")
    da.add_argument("--json", action="store_true", help="print one JSON object")
    da.add_argument("--results-dir", type=Path, default=RESULTS_DIR)

    abuse = sub.add_parser("abuse", help="latency of a steady stream while the node is attacked")
    abuse.add_argument("--seconds", type=float, default=5.0, help="seconds per phase (5)")
    abuse.add_argument("--rate", type=float, default=100.0, help="stream transfers/s (100)")
    abuse.add_argument("--attackers", type=int, default=8, help="attacking connections (8)")
    abuse.add_argument("--attack", action="append", default=None,
                       help="run only this attack (repeatable; default: all)")  # fmt: skip
    abuse.add_argument(
        "--flood-accounts",
        type=int,
        default=300,
        help="pool_flood: fresh accounts, 64 queued transactions each (300)",
    )
    abuse.add_argument("--json", action="store_true", help="print one JSON object")
    abuse.add_argument("--results-dir", type=Path, default=RESULTS_DIR)

    bridge = sub.add_parser("bridge", help="L1 bridge on a devnet: deposit latency and rate, "
                            "withdrawal to final, L1 gas beside OP's")  # fmt: skip
    bridge.add_argument("--probes", type=int, default=20, help="deposits timed one by one (20)")
    bridge.add_argument("--burst", type=int, default=2_000,
                        help="deposits sent at once for the absorption rate (2000)")  # fmt: skip
    bridge.add_argument("--senders", type=int, default=8, help="L1 accounts of the burst (8)")
    bridge.add_argument("--json", action="store_true", help="print one JSON object")
    bridge.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser


def _soak_config(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from benchmarks.evm_soak import SoakConfig
    from sequencer.node import SequencerConfig

    overrides = {
        name: getattr(args, name)
        for name in ("block_cache", "history_entries", "checkpoint_blocks")
        if getattr(args, name) is not None
    }
    return SoakConfig(
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        runner = asyncio.run
    # SIGTERM unwinds like Ctrl-C, so the node and Anvil (own sessions) are stopped too.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main_thread else None
    try:
        if args.benchmark in ("transfers", "evm"):
            from benchmarks.evm import format_evm, run_evm
            from benchmarks.transfers import TransfersConfig, format_transfers, run_transfers

            config = TransfersConfig(
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
            if args.benchmark == "transfers":
                result = runner(run_transfers(config))
                text = format_transfers(result)
            else:
                result = runner(run_evm(config))
                text = format_evm(result)
        elif args.benchmark == "evm-soak":
            from benchmarks.evm_soak import format_soak, run_soak

            result = run_soak(_soak_config(args))
            text = format_soak(result)
        elif args.benchmark == "da":
            from benchmarks.da import DAConfig, format_da, run_da

            result = run_da(DAConfig(args.n, args.batch, args.concurrency))
            text = format_da(result)
        elif args.benchmark == "bus":
            from benchmarks.bus import BusConfig, format_bus, run_bus

            bconfig = BusConfig(
                transports=tuple(args.transport or ("embedded", "nats")),
                probes=args.probes,
                messages=args.messages,
                per_tx=args.per_tx,
                block_interval_ms=args.block_interval_ms,
            )
            result = run_bus(bconfig)
            text = format_bus(result)
        elif args.benchmark == "abuse":
            from benchmarks.abuse import AbuseConfig, format_abuse, run_abuse

            aconfig = AbuseConfig(args.seconds, args.rate, args.attackers,
                                  tuple(args.attack or ()), args.flood_accounts)  # fmt: skip
            result = runner(run_abuse(aconfig))
            text = format_abuse(result)
        elif args.benchmark == "bridge":
            from benchmarks.bridge import BridgeBenchConfig, format_bridge, run_bridge

            result = run_bridge(BridgeBenchConfig(args.probes, args.burst, args.senders))
            text = format_bridge(result)
        elif args.benchmark == "orderbook":
            from benchmarks.orderbook import OrderbookConfig, format_orderbook, run_orderbook

            oconfig = OrderbookConfig(args.n, args.batch, args.concurrency, args.overhead_orders)
            result = run_orderbook(oconfig)
            text = format_orderbook(result)
        else:
            from benchmarks.latency import LatencyConfig, format_latency, run_latency

            lconfig = LatencyConfig(
                seconds=args.seconds,
                rate=args.rate,
                peak_n=args.peak_n,
                peer=not args.no_peer,
                client=args.client,
                profile=args.profile,
            )
            result = runner(run_latency(lconfig))
            text = format_latency(result)
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
