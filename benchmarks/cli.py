"""`rollup bench ...`: throughput and latency of one app's node, next to Anvil.

    rollup bench transfers [--n N] [--batch B] [--concurrency C] [--no-peer] [--json]
    rollup bench latency [--seconds S] [--rate R] [--no-peer] [--json]
    rollup bench orderbook [--n N] [--batch B] [--concurrency C] [--json]

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
    return parser


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
        if args.benchmark == "transfers":
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
            result = runner(run_transfers(config))
            text = format_transfers(result)
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
