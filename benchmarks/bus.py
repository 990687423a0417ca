"""`rollup bench bus`: cross-app call -> callback round trips and messages per second.

Two node processes, `pinger` (chain 910001) and `ponger` (chain 910002) from
benchmarks/apps/, on each transport: `embedded` (Unix sockets) and `nats` (a local
`nats-server -js` started for the run). Both apps run with `--block-interval-ms` (default 2).

1. Latency: dev account 0 sends one `ping(ponger, k, 1)` at a time (`--probes` of them). A
   probe runs from the start of its eth_sendRawTransaction until an `eth_call` of
   `pinger.stats()` shows its callback ran, polled every 0.5 ms: the pinger's block with the
   call, the message to the ponger, the ponger's block, the result back, and the pinger's block
   running the callback, every one of them committed to its database. p50/p99/max.
2. Throughput: pre-signed `ping` transactions of `--per-tx` calls each (all with callbacks),
   sent in JSON-RPC batches; the clock runs from the first send until every callback has run.
   `msgs_per_s` is calls completed per second: each of the two channels (calls one way,
   results back) carries that many messages a second. `oneway_msgs_per_s` is the same
   without callbacks, until the ponger has executed every call.
Afterwards every call must have run exactly once and every callback exactly once.

The pair runs as a devnet does: each node signs with its own random sequencer key and trusts
the other's (a sequencers file), and the NATS server admits each chain as its own user.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, environment, log, percentile, rpc
from benchmarks.signing import sign_transfer
from rollup.crypto import key_address
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import Manifest, parse_manifest
from services.bus.embedded import private_directory
from services.bus.nats_server import NatsServerProcess
from services.bus.trust import write_sequencers
from services.keys import load_or_create_key
from services.launch import NodeProcess
from services.rpcclient import RpcClient, RpcUnavailable
from services.waiting import wait_until
from vm.native.abi import decode_args, encode_values, selector

__all__ = ["BusConfig", "BusPair", "run_bus", "format_bus", "APPS"]

APPS = Path(__file__).resolve().parent / "apps"
TRANSPORTS = ("embedded", "nats")
MAX_FEE = 2 * 10**9
POLL = 0.0005


@dataclass(frozen=True)
class BusConfig:
    transports: tuple[str, ...] = TRANSPORTS
    probes: int = 300
    messages: int = 20_000
    per_tx: int = 250
    batch: int = 4  # transactions per JSON-RPC request
    block_interval_ms: int = 2
    timeout: float = 120.0


def render_app(src: Path, dest: Path, block_interval_ms: int | None) -> Path:
    """A copy of an app directory, with another minimum block interval if asked."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "app.py", dest / "app.py")
    manifest = (src / "rollup.toml").read_text()
    if block_interval_ms is not None:
        manifest = manifest.replace(
            "block_interval_ms = 10", f"block_interval_ms = {block_interval_ms}"
        )
    (dest / "rollup.toml").write_text(manifest)
    return dest


def sign_call(manifest: Manifest, sender: int, nonce: int, data: bytes, gas: int) -> str:
    """A signed type-2 call to the app of `manifest` (no tip, fee cap MAX_FEE), as raw hex."""
    return sign_transfer(
        sender, manifest.chain_id, nonce, manifest.address, 0, data, gas, tip=0, max_fee=MAX_FEE
    ).raw_hex


class BusPair:
    """The pinger and ponger node processes on one transport, under `root`.

    Nodes keep their ports and data directories across `kill`/`start`, as a supervisor
    restarting them would; the NATS server (transport "nats") keeps its port and store.
    """

    def __init__(self, root: Path, transport: str, block_interval_ms: int | None = None) -> None:
        if transport not in TRANSPORTS:
            raise BenchError(f"unknown transport {transport!r}; expected one of {TRANSPORTS}")
        self.root, self.transport = Path(root), transport
        apps = self.root / "apps"
        pinger_dir = render_app(APPS / "pinger", apps / "pinger", block_interval_ms)
        ponger_dir = render_app(APPS / "ponger", apps / "ponger", block_interval_ms)
        self.pinger = parse_manifest((pinger_dir / "rollup.toml").read_text())
        self.ponger = parse_manifest((ponger_dir / "rollup.toml").read_text())
        self.bus_dir = self.root / "bus"
        private_directory(self.bus_dir)
        self.sequencers = self.bus_dir / "sequencers.json"
        data = {
            self.pinger.chain_id: self.root / "pinger",
            self.ponger.chain_id: self.root / "ponger",
        }
        keys = {c: load_or_create_key(d / "sequencer.key") for c, d in data.items()}
        write_sequencers(self.sequencers, {c: key_address(k) for c, k in keys.items()})
        self.nats = (
            NatsServerProcess(self.root / "nats", chains=list(data), credentials_dir=self.bus_dir)
            if transport == "nats"
            else None
        )
        bus = self.nats.url if self.nats else f"unix://{self.bus_dir}"
        self.a = NodeProcess(
            pinger_dir,
            data[self.pinger.chain_id],
            bus=bus,
            extra_args=self._bus_args(self.pinger.chain_id),
        )
        self.b = NodeProcess(
            ponger_dir,
            data[self.ponger.chain_id],
            bus=bus,
            extra_args=self._bus_args(self.ponger.chain_id),
        )
        self._clients = {node.url: RpcClient(node.url, 30.0) for node in (self.a, self.b)}

    def _bus_args(self, chain_id: int) -> list[str]:
        args = ["--sequencers", str(self.sequencers)]
        if self.nats is not None:
            args += ["--bus-credentials", str(self.nats.credentials_path(chain_id))]
        return args

    def start(self) -> None:
        """Start all; if one fails, stop those already running (no process is left behind)."""
        try:
            if self.nats is not None:
                self.nats.start()
            self.a.start()
            self.b.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in (self.a, self.b):
            process.stop()
        if self.nats is not None:
            self.nats.stop()
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> BusPair:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- JSON-RPC ----

    def rpc(self, node: NodeProcess, method: str, *params: Any) -> Any:
        return rpc(self._clients[node.url], method, *params)

    def batch(self, node: NodeProcess, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """The answer objects of a batch of calls (each a result or an error), in call order."""
        try:
            return self._clients[node.url].batch(calls)
        except RpcUnavailable as exc:
            raise BenchError(str(exc)) from None

    def view(
        self,
        node: NodeProcess,
        manifest: Manifest,
        signature: str,
        returns: list[str],
        *args: Any,
        types: list[str] | None = None,
    ) -> Any:
        data = selector(signature) + encode_values(types or [], list(args))
        call = {"to": "0x" + manifest.address.hex(), "data": "0x" + data.hex()}
        out = bytes.fromhex(self.rpc(node, "eth_call", call, "latest")[2:])
        values = decode_args(returns, out)
        return values[0] if len(values) == 1 else values

    def views(
        self, node: NodeProcess, manifest: Manifest, signature: str, args: list[int]
    ) -> list[int]:
        """`signature(uint256) -> uint256` for many arguments, in JSON-RPC batches. Calls the
        node sheds (-32005, "try again later") are asked again."""
        to = "0x" + manifest.address.hex()

        def eth_call(arg: int) -> tuple[str, list[Any]]:
            data = selector(signature) + encode_values(["uint256"], [arg])
            return "eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]

        results: dict[int, int] = {}
        deadline = time.monotonic() + 30.0
        todo = list(range(len(args)))
        while todo:
            shed: list[int] = []
            for start in range(0, len(todo), 500):
                chunk = todo[start : start + 500]
                calls = [eth_call(args[i]) for i in chunk]
                for i, reply in zip(chunk, self.batch(node, calls), strict=True):
                    error = reply.get("error")
                    if error is None:
                        results[i] = int(reply["result"], 16)
                    elif error.get("code") == -32005 and time.monotonic() < deadline:
                        shed.append(i)
                    else:
                        raise BenchError(f"{signature}: {error}")
            todo = sorted(shed)
            if todo:
                time.sleep(0.05)
        return [results[i] for i in range(len(args))]

    def stats(self) -> tuple[int, int, int]:
        """The pinger's (sent, callbacks, failures)."""
        return tuple(self.view(self.a, self.pinger, "stats()", ["uint256"] * 3))

    def executed(self) -> int:
        return int(self.view(self.b, self.ponger, "total()", ["uint256"]))

    def nonce(self, sender: int = 0) -> int:
        address = "0x" + DEV_ADDRESSES[sender].hex()
        return int(self.rpc(self.a, "eth_getTransactionCount", address, "latest"), 16)

    def ping_tx(
        self, nonce: int, first: int, n: int, callback: bool = True, sender: int = 0
    ) -> str:
        name = "ping" if callback else "ping_nocb"
        data = selector(f"{name}(uint64,address,uint256,uint256)") + encode_values(
            ["uint64", "address", "uint256", "uint256"],
            [self.ponger.chain_id, self.ponger.address, first, n],
        )
        return sign_call(self.pinger, sender, nonce, data, 200_000 + 60_000 * n)

    def send_batch(self, raws: list[str]) -> None:
        replies = self.batch(self.a, [("eth_sendRawTransaction", [r]) for r in raws])
        errors = [r["error"] for r in replies if "error" in r]
        if errors:
            raise BenchError(f"sends failed: {errors[:3]}")

    def wait(self, done: Any, timeout: float, what: str) -> None:
        wait_until(done, timeout, what, interval=0.01, error=BenchError)


def measure_latency(pair: BusPair, probes: int, first_k: int) -> dict[str, Any]:
    nonce = pair.nonce()
    raws = [pair.ping_tx(nonce + i, first_k + i, 1) for i in range(probes)]
    latencies: list[float] = []
    for raw in raws:
        before = pair.stats()[1]
        start = time.perf_counter()
        pair.send_batch([raw])
        while pair.stats()[1] == before:
            time.sleep(POLL)
            if time.perf_counter() - start > 30:
                raise BenchError("a probe's callback did not run within 30 s")
        latencies.append((time.perf_counter() - start) * 1000)
    ordered = sorted(latencies)
    return {
        "probes": probes,
        "p50_ms": round(percentile(ordered, 50), 2),
        "p90_ms": round(percentile(ordered, 90), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def measure_throughput(
    pair: BusPair, config: BusConfig, first_k: int, callback: bool
) -> dict[str, Any]:
    per_tx, total = config.per_tx, config.messages
    nonce = pair.nonce()
    raws = [
        pair.ping_tx(nonce + i, first_k + i * per_tx, per_tx, callback)
        for i in range(total // per_tx)
    ]
    count = len(raws) * per_tx
    sent0, callbacks0, _ = pair.stats()
    executed0 = pair.executed()
    start = time.perf_counter()
    for i in range(0, len(raws), config.batch):
        pair.send_batch(raws[i : i + config.batch])
    if callback:
        pair.wait(lambda: pair.stats()[1] - callbacks0 >= count, config.timeout, "callbacks")
    else:
        pair.wait(lambda: pair.executed() - executed0 >= count, config.timeout, "executions")
    elapsed = time.perf_counter() - start
    return {"messages": count, "seconds": round(elapsed, 3), "per_s": round(count / elapsed)}


def check_exactly_once(pair: BusPair, ks: list[int], callbacks: bool) -> None:
    executed = pair.views(pair.b, pair.ponger, "times(uint256)", ks)
    wrong = [k for k, n in zip(ks, executed, strict=True) if n != 1]
    if wrong:
        raise BenchError(f"{len(wrong)} calls did not run exactly once (first: {wrong[:5]})")
    if callbacks:
        answered = pair.views(pair.a, pair.pinger, "answers(uint256)", ks)
        wrong = [k for k, n in zip(ks, answered, strict=True) if n != 1]
        if wrong:
            raise BenchError(f"{len(wrong)} callbacks did not run exactly once ({wrong[:5]})")


def run_transport(transport: str, config: BusConfig) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-bus-", dir="/tmp") as tmp:
        with BusPair(Path(tmp), transport, config.block_interval_ms) as pair:
            log(f"bus/{transport}: latency, {config.probes} probes")
            latency = measure_latency(pair, config.probes, 1)
            first = 1 + config.probes
            log(f"bus/{transport}: throughput, {config.messages} calls with callbacks")
            round_trip = measure_throughput(pair, config, first, callback=True)
            ks = list(range(first, first + round_trip["messages"]))
            check_exactly_once(pair, ks, callbacks=True)
            first += round_trip["messages"]
            log(f"bus/{transport}: throughput, {config.messages} calls one way")
            one_way = measure_throughput(pair, config, first, callback=False)
            check_exactly_once(pair, list(range(first, first + one_way["messages"])), False)
    return {
        **latency,
        "msgs_per_s": round_trip["per_s"],
        "round_trip": round_trip,
        "oneway_msgs_per_s": one_way["per_s"],
        "one_way": one_way,
    }


def run_bus(config: BusConfig) -> dict[str, Any]:
    results = {t: run_transport(t, config) for t in config.transports}
    return {
        "benchmark": "bus",
        "config": {
            "probes": config.probes,
            "messages": config.messages,
            "per_tx": config.per_tx,
            "batch": config.batch,
            "block_interval_ms": config.block_interval_ms,
        },
        "transports": results,
        "targets": {"embedded": {"p50_ms": 10, "p99_ms": 50, "msgs_per_s": 5_000}},
        "environment": environment(),
    }


def format_bus(result: dict[str, Any]) -> str:
    rows = [
        ("transport", "p50 ms", "p99 ms", "max ms", "msgs/s (call+callback)", "msgs/s (one way)")
    ]
    for name, r in result["transports"].items():
        rows.append(
            (
                name,
                f"{r['p50_ms']}",
                f"{r['p99_ms']}",
                f"{r['max_ms']}",
                f"{r['msgs_per_s']:,}",
                f"{r['oneway_msgs_per_s']:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    config = result["config"]
    lines.append(
        f"\nround trip = send of the calling tx until its callback is visible (both blocks of "
        f"the caller and the callee's block committed); block interval "
        f"{config['block_interval_ms']} ms; target (embedded): p50 <= 10 ms, p99 <= 50 ms, "
        f">= 5,000 msgs/s per channel"
    )
    return "\n".join(lines)
