"""`rollup bench abuse`: does the node keep serving while someone attacks it?

Two nodes run: the `spinner` app (native, benchmarks/apps/spinner: a view as heavy as the
caller likes, and logs) and the `evm` template (an ERC-20 on revm) with a contract that loops
forever. On each, for `seconds` per phase:

- a steady stream: one transfer every 1/rate s from dev account 1, each a single
  eth_sendRawTransaction answered once its block is durable; its latency is send -> answer;
- a probe: eth_blockNumber every 10 ms on its own connection;
- first with no attack (the baseline), then under each attack in turn, with `attackers`
  connections (or sockets) hammering the node:
    estimate_heavy   eth_estimateGas of spin(10^9) (native: the review's 45 s estimate)
    call_loop_evm    eth_call of the endless loop with 1B gas (EVM)
    proof_slots      rollup_getProof with 100,000 slots
    logs_range       eth_getLogs over 10,000 blocks with a topic nobody logged
    filters          eth_newPendingTransactionFilter until refused, then polls of them all
    ws_slow          WebSocket clients that subscribe to every pending transaction and
                     every head, and never read
    http_flood       eth_blockNumber as fast as the connections go
    pool_flood       fresh accounts, each funded for one transaction, sending 64 future-nonce
                     transactions (queued cost must count against the balance)

The result, per attack: `p99_ms_under_attack` (the stream's), `probe_p99_ms`, the attack's
requests and how they were answered. The node wins when both stay near the baseline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import multiprocessing.process
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from coincurve import PrivateKey

from benchmarks.common import BenchError, environment, log, nonces, percentile, rpc
from benchmarks.evm import render_evm_app
from benchmarks.http import Connection, connect, request_body
from benchmarks.signing import GWEI, sign_raw, sign_transfer
from benchmarks.targets import NodeUnderTest
from rollup.crypto import key_address
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import app_address
from services.rpcclient import RpcClient
from vm.native.abi import selector

__all__ = ["AbuseConfig", "run_abuse", "format_abuse", "ATTACKS"]

SPINNER = Path(__file__).resolve().parent / "apps" / "spinner"
STREAM_SENDER = 1
PROBE_EVERY = 0.01
# init code returning the runtime 0x5b600056 (JUMPDEST PUSH1 0 JUMP): a loop without end
LOOP_INIT = bytes.fromhex("635b6000566000526004601cf3")
DEPLOYER = 2


@dataclass(frozen=True)
class AbuseConfig:
    seconds: float = 5.0
    rate: float = 100.0  # transfers a second in the steady stream
    attackers: int = 8
    attacks: tuple[str, ...] = ()  # empty: all of ATTACKS
    flood_accounts: int = 300  # pool_flood: fresh accounts, 64 future-nonce transactions each


@dataclass
class Phase:
    """What the stream, the probe and the attackers saw during one phase."""

    stream_ms: list[float] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    stream_errors: int = 0
    attack_requests: int = 0
    attack_answers: dict[str, int] = field(default_factory=dict)

    def answered(self, kind: str) -> None:
        self.attack_answers[kind] = self.attack_answers.get(kind, 0) + 1

    def summary(self) -> dict[str, Any]:
        stream, probe = sorted(self.stream_ms), sorted(self.probe_ms)
        return {
            "p50_ms_under_attack": round(percentile(stream, 50), 2) if stream else None,
            "p99_ms_under_attack": round(percentile(stream, 99), 2) if stream else None,
            "probe_p50_ms": round(percentile(probe, 50), 2) if probe else None,
            "probe_p99_ms": round(percentile(probe, 99), 2) if probe else None,
            "transfers": len(stream),
            "transfer_errors": self.stream_errors,
            "probes": len(probe),
            "attack_requests": self.attack_requests,
            "attack_answers": dict(sorted(self.attack_answers.items())),
        }


def _kind(reply: bytes) -> str:
    """How an attack request was answered: "result", or the error's first words."""
    try:
        answer = orjson.loads(reply)
    except orjson.JSONDecodeError:
        return "unparseable"
    if isinstance(answer, dict) and "error" in answer:
        message = str(answer["error"].get("message", ""))
        return f"error {answer['error'].get('code')}: {' '.join(message.split()[:4])}"
    return "result"


# ---- the measured side -----------------------------------------------------------------------


class Chain:
    """One node under measurement: where to send, and the stream's next nonce."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.chain_id = int(rpc(url, "eth_chainId"), 16)
        self.nonce = self.pending_nonce()

    def pending_nonce(self) -> int:
        return nonces(self.url, [DEV_ADDRESSES[STREAM_SENDER]])[0]

    def next_transfer(self) -> bytes:
        tx = sign_transfer(STREAM_SENDER, self.chain_id, self.nonce, secrets.token_bytes(20), 1)
        self.nonce += 1
        return request_body("eth_sendRawTransaction", tx.raw_hex)


async def _stream(chain: Chain, rate: float, stop: asyncio.Event, phase: Phase) -> None:
    conn = await connect(chain.url)
    try:
        gap = 1.0 / rate
        next_at = time.perf_counter()
        while not stop.is_set():
            body = chain.next_transfer()
            started = time.perf_counter()
            reply = await conn.post(body)
            if b'"result"' in reply:
                phase.stream_ms.append((time.perf_counter() - started) * 1000)
            else:
                phase.stream_errors += 1
                chain.nonce = chain.pending_nonce()
            next_at += gap
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        await conn.close()


async def _probe(url: str, stop: asyncio.Event, phase: Phase) -> None:
    conn = await connect(url)
    body = request_body("eth_blockNumber")
    try:
        while not stop.is_set():
            started = time.perf_counter()
            await conn.post(body)
            phase.probe_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PROBE_EVERY)
    finally:
        await conn.close()


# ---- the attacks -----------------------------------------------------------------------------

Attack = Callable[["Targets", asyncio.Event, Phase, int], Coroutine[Any, Any, None]]


@dataclass
class Targets:
    native: Chain
    evm: Chain
    loop: str  # the endless-loop contract on the EVM chain
    flood: list[bytes] = field(default_factory=list)  # pre-signed pool flood bodies


async def _hammer(
    url: str, bodies: Callable[[], bytes], stop: asyncio.Event, phase: Phase, connections: int
) -> None:
    async def one() -> None:
        conn: Connection = await connect(url)
        try:
            while not stop.is_set():
                phase.attack_requests += 1
                try:
                    phase.answered(_kind(await conn.post(bodies())))
                except (BenchError, OSError, asyncio.IncompleteReadError) as exc:
                    phase.answered(f"failed: {type(exc).__name__}")
                    await conn.close()
        finally:
            await conn.close()

    await asyncio.gather(*(one() for _ in range(connections)))


def _spin(n: int) -> dict[str, str]:
    data = selector("spin(uint256)") + n.to_bytes(32, "big")
    return {"to": "0x" + app_address("spinner").hex(), "data": "0x" + data.hex()}


async def estimate_heavy(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    body = request_body("eth_estimateGas", _spin(10**9))
    await _hammer(t.native.url, lambda: body, stop, phase, n)


async def call_loop_evm(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    body = request_body("eth_call", {"to": t.loop, "gas": hex(10**9)}, "latest")
    await _hammer(t.evm.url, lambda: body, stop, phase, n)


async def proof_slots(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    body = request_body(
        "rollup_getProof", "0x" + app_address("spinner").hex(), [hex(i) for i in range(100_000)]
    )
    await _hammer(t.native.url, lambda: body, stop, phase, n)


async def logs_range(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    head = int(rpc(t.native.url, "eth_blockNumber"), 16)
    flt = {
        "fromBlock": hex(max(0, head - 9_999)),
        "toBlock": hex(head),
        "topics": [None, "0x" + "ee" * 32],
    }
    body = request_body("eth_getLogs", flt)
    await _hammer(t.native.url, lambda: body, stop, phase, n)


async def filters(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    conn = await connect(t.native.url)
    ids: list[str] = []
    try:
        while not stop.is_set() and len(ids) < 10_000:
            phase.attack_requests += 1
            answer = orjson.loads(await conn.post(request_body("eth_newPendingTransactionFilter")))
            phase.answered("result" if "result" in answer else "refused")
            if "result" not in answer:
                break
            ids.append(answer["result"])
        while not stop.is_set():
            for filter_id in ids:
                if stop.is_set():
                    break
                phase.attack_requests += 1
                phase.answered(
                    _kind(await conn.post(request_body("eth_getFilterChanges", filter_id)))
                )
    finally:
        await conn.close()


async def ws_slow(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    sockets = [await asyncio.to_thread(_silent_subscriber, t.native.url) for _ in range(6 * n)]
    phase.attack_requests += len(sockets)
    for _ in sockets:
        phase.answered("subscribed, never reading")
    try:
        await stop.wait()
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _silent_subscriber(url: str) -> socket.socket:
    """A WebSocket client that subscribes to everything and then never reads a byte."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    for params in (["newPendingTransactions", True], ["newHeads"]):
        sock.sendall(_ws_frame(request_body("eth_subscribe", *params)))
    return sock


def _ws_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    head = bytes([0x81])
    size = len(payload)
    head += bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def http_flood(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    body = request_body("eth_blockNumber")
    await _hammer(t.native.url, lambda: body, stop, phase, n)


async def pool_flood(t: Targets, stop: asyncio.Event, phase: Phase, n: int) -> None:
    bodies = iter(t.flood)
    conn = await connect(t.native.url)
    try:
        for body in bodies:
            if stop.is_set():
                break
            phase.attack_requests += 1
            phase.answered(_kind(await conn.post(body)))
        await stop.wait()
    finally:
        await conn.close()


ATTACKS: dict[str, Attack] = {
    "estimate_heavy": estimate_heavy,
    "call_loop_evm": call_loop_evm,
    "proof_slots": proof_slots,
    "logs_range": logs_range,
    "filters": filters,
    "ws_slow": ws_slow,
    "http_flood": http_flood,
    "pool_flood": pool_flood,
}
ON_EVM = {"call_loop_evm"}


# ---- set-up ----------------------------------------------------------------------------------


def _deploy_loop(chain: Chain) -> str:
    (nonce,) = nonces(chain.url, [DEV_ADDRESSES[DEPLOYER]])
    tx = sign_transfer(DEPLOYER, chain.chain_id, nonce, b"", 0, data=LOOP_INIT, gas=100_000)
    tx_hash = rpc(chain.url, "eth_sendRawTransaction", tx.raw_hex)
    receipt = rpc(chain.url, "eth_getTransactionReceipt", tx_hash)
    if not receipt or receipt["status"] != "0x1":
        raise BenchError(f"deploying the loop contract failed: {receipt}")
    return str(receipt["contractAddress"])


def _flood_bodies(chain: Chain, accounts: int) -> list[bytes]:
    """Fund `accounts` fresh keys with one transfer's worth each, then sign 64 future-nonce
    transactions for each (nonces 1..64: none executable)."""
    keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(accounts)]
    one_tx = 21_000 * 2 * GWEI + 1  # max fee of one transfer of 1 wei, and that wei
    (nonce,) = nonces(chain.url, [DEV_ADDRESSES[3]])
    funding = [
        sign_transfer(3, chain.chain_id, nonce + i, key_address(k.secret), one_tx).raw_hex
        for i, k in enumerate(keys)
    ]
    with RpcClient(chain.url, timeout=60.0) as client:
        for start in range(0, len(funding), 500):
            client.batch(
                [("eth_sendRawTransaction", [raw]) for raw in funding[start : start + 500]]
            )
    return [
        request_body("eth_sendRawTransaction", _sign_with(key, chain.chain_id, n))
        for n in range(1, 65)
        for key in keys
    ]


def _sign_with(key: PrivateKey, chain_id: int, nonce: int) -> str:
    """A transfer of 1 wei to a random address (tip 1 gwei, fee cap 2 gwei), as raw hex."""
    raw = sign_raw(key, chain_id, nonce, secrets.token_bytes(20), 1, tip=GWEI, max_fee=2 * GWEI)
    return "0x" + raw.hex()


def _render_spinner(app_dir: Path) -> Path:
    app_dir.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "rollup.toml"):
        (app_dir / name).write_bytes((SPINNER / name).read_bytes())
    return app_dir


# ---- running it ------------------------------------------------------------------------------


async def _phase(targets: Targets, attack: str | None, config: AbuseConfig) -> Phase:
    """The stream and the probe for `seconds`, while the attack (if any) runs in a process of
    its own, so the measuring side never waits behind the attacker's own work."""
    phase = Phase()
    chain = targets.evm if attack in ON_EVM else targets.native
    attacker = _start_attacker(targets, attack, config) if attack is not None else None
    stop = asyncio.Event()
    try:
        if attacker is not None:
            await asyncio.sleep(ATTACK_HEAD_START)
        tasks = [
            asyncio.create_task(_stream(chain, config.rate, stop, phase)),
            asyncio.create_task(_probe(chain.url, stop, phase)),
        ]
        await asyncio.sleep(config.seconds)
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                raise BenchError(f"{attack or 'baseline'}: {task.exception()!r}")
    finally:
        if attacker is not None:
            _collect_attacker(attacker, phase)
    return phase


ATTACK_HEAD_START = 0.5  # seconds the attack runs before measuring starts


def _start_attacker(targets: Targets, attack: str, config: AbuseConfig) -> _Attacker:
    context = multiprocessing.get_context("fork")  # the child runs a fresh event loop only
    parent, child = context.Pipe()
    process = context.Process(
        target=_attacker_main, daemon=True, args=(targets, attack, config, child)
    )
    process.start()
    child.close()
    return _Attacker(process, parent)


@dataclass
class _Attacker:
    process: multiprocessing.process.BaseProcess
    pipe: Any  # multiprocessing.connection.Connection


def _collect_attacker(attacker: _Attacker, phase: Phase) -> None:
    attacker.pipe.send("stop")
    if attacker.pipe.poll(30):
        requests, answers = attacker.pipe.recv()
        phase.attack_requests, phase.attack_answers = requests, answers
    attacker.process.join(10)
    if attacker.process.is_alive():
        attacker.process.kill()


def _attacker_main(targets: Targets, attack: str, config: AbuseConfig, pipe: Any) -> None:
    """The attacker process: attack until the parent says stop, then report."""

    async def run() -> Phase:
        phase, stop = Phase(), asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(pipe.fileno(), stop.set)
        task = asyncio.create_task(ATTACKS[attack](targets, stop, phase, config.attackers))
        await stop.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)
        return phase

    phase = asyncio.run(run())
    pipe.recv()
    pipe.send((phase.attack_requests, phase.attack_answers))


async def run_abuse(config: AbuseConfig) -> dict[str, Any]:
    attacks = config.attacks or tuple(ATTACKS)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise BenchError(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}")
    with (
        NodeUnderTest(render=_render_spinner) as native_node,
        NodeUnderTest(render=render_evm_app) as evm_node,
    ):
        native = Chain(native_node.target().url)
        evm = Chain(evm_node.target().url)
        targets = Targets(native, evm, _deploy_loop(evm))
        if "pool_flood" in attacks:
            log("abuse: funding the pool flood's accounts")
            targets.flood = await asyncio.to_thread(_flood_bodies, native, config.flood_accounts)
            native.nonce = native.pending_nonce()
        results: dict[str, Any] = {}
        for name in ("baseline_native", "baseline_evm"):
            log(f"abuse: {name}")
            chain = evm if name.endswith("evm") else native
            phase = await _phase(Targets(chain, chain, targets.loop), None, config)
            results[name] = phase.summary()
        for attack in attacks:
            log(f"abuse: {attack}")
            results[attack] = (await _phase(targets, attack, config)).summary()
            evm.nonce, native.nonce = evm.pending_nonce(), native.pending_nonce()
    return {
        "benchmark": "abuse",
        "environment": environment(),
        "config": {"seconds": config.seconds, "rate": config.rate, "attackers": config.attackers},
        "baseline": {k: results.pop(k) for k in ("baseline_native", "baseline_evm")},
        "attacks": results,
    }


def format_abuse(result: dict[str, Any]) -> str:
    rows = [
        ("phase", "stream p50 ms", "stream p99 ms", "probe p99 ms", "transfers", "attack requests")
    ]
    phases = {**result["baseline"], **result["attacks"]}
    for name, r in phases.items():
        rows.append(
            (
                name,
                str(r["p50_ms_under_attack"]),
                str(r["p99_ms_under_attack"]),
                str(r["probe_p99_ms"]),
                str(r["transfers"]),
                str(r["attack_requests"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    answers = [f"  {name}: {r['attack_answers']}" for name, r in result["attacks"].items()]
    return "\n".join([*lines, "", "how the attacks were answered:", *answers])
