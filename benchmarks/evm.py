"""`rollup bench evm`: ERC-20 transfers in JSON-RPC batches on an EVM app, ours vs Anvil.

Ours is a fresh node of the `evm` template: its Solidity ERC-20 is deployed at genesis by dev
account 0 (nonce 0), which holds the whole supply. The peer is Anvil (`--hardfork cancun`,
automine) on which dev account 0 deploys the same compiled Token first, at nonce 0, so at the
same address. Set-up, off the clock, is the same on both: dev account 0 gives every other dev
account `FUND` tokens.

The workload is N `transfer(recipient, amount)` calls from the ten dev accounts, each to a
fresh random recipient (so every transfer writes a new storage slot, ~52k gas), with a random
amount. They are signed before the clock starts, then split, batched, sent and timed exactly
as `rollup bench transfers` does (benchmarks/transfers.py): C connections with disjoint
senders, batches of B, a connection's next batch once the previous batch's receipts are
queryable, the clock stopped when every sender's last receipt is. Checked afterwards (any
failure fails the run): every send answered with its hash, every receipt has status 1 and
exactly one log, the token's Transfer(sender, recipient, amount); and `balanceOf` (eth_call)
of every recipient is its amount and of every sender its balance before less what it sent.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, log, nonces, rpc
from benchmarks.http import (
    Connection,
    Nudge,
    batch_replies,
    batch_request_body,
    check_send_replies,
    connect,
    wait_receipts,
)
from benchmarks.signing import (
    SENDERS,
    SignedTx,
    batch_body,
    sender_addresses,
    sign_transfer,
    split_senders,
)
from benchmarks.targets import AnvilUnderTest, NodeUnderTest, Target
from benchmarks.transfers import (
    RECEIPT_TIMEOUT,
    TransfersConfig,
    Workload,
    check_config,
    format_throughput,
    log_rate,
    plan_counts,
    signing_plan,
    throughput_result,
    timed_send,
    warmup_and_streams,
)
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import Manifest
from services.apps import load_app
from services.scaffold import scaffold
from vm.evm.artifact import Artifact, constructor_calldata

__all__ = [
    "EvmConfig",
    "Token",
    "balance_of_data",
    "format_evm",
    "render_evm_app",
    "run_evm",
    "sign_token_transfer",
    "transfer_data",
]

TOKEN_GAS = 100_000  # a transfer to a new holder uses ~52k; the rest is refunded
DEPLOY_GAS = 3_000_000
FUND = 10**22  # tokens (of 18 decimals: 10,000) dev account 0 gives each other sender
MAX_AMOUNT = 10**15
CALL_BATCH = 1_000
HARDFORK = "cancun"

TRANSFER = keccak(b"transfer(address,uint256)")[:4]
BALANCE_OF = keccak(b"balanceOf(address)")[:4]
TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()


EvmConfig = TransfersConfig  # the same knobs: ours and Anvil's workloads, client, profile


@dataclass(frozen=True)
class Token:
    """The app's compiled ERC-20, where genesis puts it, and its constructor call."""

    address: bytes
    artifact: Artifact
    manifest: Manifest

    @classmethod
    def of(cls, app_dir: Path) -> Token:
        bundle = load_app(app_dir)  # compiles contracts/ into build/ when stale (npm solc)
        if not isinstance(bundle.code, Artifact):
            raise BenchError(f"{app_dir} is not an EVM app")
        return cls(bundle.manifest.address, bundle.code, bundle.manifest)

    def creation(self) -> bytes:
        return constructor_calldata(self.artifact, dict(self.manifest.init_args))


def render_evm_app(app_dir: Path, name: str = "bench-evm", chain_id: int = 901_002) -> Path:
    """The `evm` template rendered into `app_dir` and compiled (build/), so the node starts
    without running solc."""
    scaffold(app_dir, "evm", name, chain_id)
    Token.of(app_dir)
    return app_dir


def transfer_data(to: bytes, amount: int) -> bytes:
    return TRANSFER + bytes(12) + to + amount.to_bytes(32, "big")


def balance_of_data(holder: bytes) -> bytes:
    return BALANCE_OF + bytes(12) + holder


def sign_token_transfer(
    sender: int, chain_id: int, nonce: int, token: bytes, to: bytes, amount: int
) -> SignedTx:
    """`sender` (a dev account index) calls token.transfer(to, amount)."""
    return sign_transfer(sender, chain_id, nonce, token, 0, transfer_data(to, amount), TOKEN_GAS)


# ---------------------------------------------------------------- set-up


async def call_many(conn: Connection, to: bytes, datas: list[bytes]) -> list[bytes]:
    """eth_call of each calldata at `to` (latest block), in batches; the return data."""
    out: list[bytes] = []
    target = "0x" + to.hex()
    for i in range(0, len(datas), CALL_BATCH):
        part = datas[i : i + CALL_BATCH]
        calls = ([{"to": target, "data": "0x" + d.hex()}, "latest"] for d in part)
        replies = batch_replies(await conn.post(batch_request_body("eth_call", calls)), len(part))
        errors = [r for r in replies if "error" in r]
        if errors:
            raise BenchError(f"eth_call failed: {str(errors[0])[:300]}")
        out += [bytes.fromhex(r["result"][2:]) for r in replies]
    return out


async def balances(conn: Connection, token: bytes, holders: list[bytes]) -> list[int]:
    words = await call_many(conn, token, [balance_of_data(h) for h in holders])
    return [int.from_bytes(w, "big") for w in words]


async def send_and_confirm(target: Target, conn: Connection, txs: list[SignedTx]) -> list[Any]:
    """Send a set-up batch and return its receipts; any rejection or failure raises."""
    reply = await conn.post(batch_body(txs))
    errors = check_send_replies(reply, txs, 0)
    if errors:
        raise BenchError(f"[{target.name}] set-up send failed: {errors[0]}")
    nudge = Nudge() if target.nudge else None
    receipts = await wait_receipts(conn, [tx.hash_hex for tx in txs], RECEIPT_TIMEOUT, nudge=nudge)
    failed = [h for h, r in receipts.items() if r.get("status") != "0x1"]
    if failed:
        raise BenchError(f"[{target.name}] set-up transaction {failed[0]} failed")
    return [receipts[tx.hash_hex] for tx in txs]


async def deploy_token(target: Target, conn: Connection, token: Token) -> None:
    """Deploy the Token from dev account 0 at nonce 0 (Anvil), where genesis put ours."""
    (nonce,) = nonces(target.url, sender_addresses([0]))
    if nonce != 0:
        raise BenchError(f"[{target.name}] dev account 0 has nonce {nonce}, not 0")
    tx = sign_transfer(0, target.chain_id, 0, b"", 0, token.creation(), DEPLOY_GAS)
    (receipt,) = await send_and_confirm(target, conn, [tx])
    if receipt.get("contractAddress") != "0x" + token.address.hex():
        raise BenchError(f"[{target.name}] Token deployed at {receipt.get('contractAddress')}")


async def fund_senders(target: Target, conn: Connection, token: Token) -> None:
    """Dev account 0 gives each other sender FUND tokens; check the token is there first."""
    code = rpc(target.url, "eth_getCode", "0x" + token.address.hex(), "latest")
    if len(code) <= 2:
        raise BenchError(f"[{target.name}] no code at the Token's address {token.address.hex()}")
    (nonce,) = nonces(target.url, sender_addresses([0]))
    txs = [
        sign_token_transfer(0, target.chain_id, nonce + i, token.address, DEV_ADDRESSES[s], FUND)
        for i, s in enumerate(SENDERS[1:])
    ]
    await send_and_confirm(target, conn, txs)


# ---------------------------------------------------------------- the workload


@dataclass
class Signed:
    """The workload of one target: per sender, its transactions and what each one sends."""

    txs: dict[int, list[SignedTx]]
    moves: dict[str, tuple[int, bytes, int]]  # tx hash -> (sender, recipient, amount)


def sign_token_transfers(
    chain_id: int, token: bytes, plan: dict[int, tuple[int, int]], threads: int = 2
) -> Signed:
    """For each sender, `count` token transfers from nonce `first` (plan = {sender: (first,
    count)}), each to a fresh random recipient with a random amount."""

    def one_sender(item: tuple[int, tuple[int, int]]) -> list[tuple[SignedTx, bytes, int]]:
        sender, (first, count) = item
        out = []
        for i in range(count):
            to, amount = secrets.token_bytes(20), 1 + secrets.randbelow(MAX_AMOUNT)
            out.append(
                (sign_token_transfer(sender, chain_id, first + i, token, to, amount), to, amount)
            )
        return out

    signed = Signed({}, {})
    with ThreadPoolExecutor(threads) as pool:  # coincurve drops the GIL while it signs
        for (sender, _), rows in zip(plan.items(), pool.map(one_sender, plan.items())):
            signed.txs[sender] = [tx for tx, _, _ in rows]
            for tx, to, amount in rows:
                signed.moves[tx.hash_hex] = (sender, to, amount)
    return signed


def check_receipts(target: Target, token: bytes, signed: Signed, receipts: dict[str, Any]) -> None:
    """Every transfer succeeded and logged exactly its Transfer event."""
    address = "0x" + token.hex()
    for tx_hash, (sender, to, amount) in signed.moves.items():
        receipt = receipts.get(tx_hash)
        if receipt is None or receipt.get("status") != "0x1":
            raise BenchError(f"[{target.name}] transfer {tx_hash} failed or has no receipt")
        logs = receipt.get("logs") or []
        expected = [
            TRANSFER_TOPIC,
            "0x" + bytes(12).hex() + DEV_ADDRESSES[sender].hex(),
            "0x" + bytes(12).hex() + to.hex(),
        ]
        if (
            len(logs) != 1
            or logs[0]["address"].lower() != address
            or [t.lower() for t in logs[0]["topics"]] != expected
            or int(logs[0]["data"], 16) != amount
        ):
            raise BenchError(f"[{target.name}] transfer {tx_hash} logged {str(logs)[:300]}")


async def check_balances(
    target: Target, conn: Connection, token: bytes, signed: Signed, before: list[int]
) -> None:
    """balanceOf of every recipient is its amount; of every sender, before less what it sent."""
    sent = dict.fromkeys(SENDERS, 0)
    recipients: list[bytes] = []
    amounts: list[int] = []
    for sender, to, amount in signed.moves.values():
        sent[sender] += amount
        recipients.append(to)
        amounts.append(amount)
    got = await balances(conn, token, recipients)
    wrong = [i for i, (a, b) in enumerate(zip(got, amounts, strict=True)) if a != b]
    if wrong:
        i = wrong[0]
        raise BenchError(
            f"[{target.name}] {len(wrong)} recipients hold the wrong balance, e.g. "
            f"0x{recipients[i].hex()}: {got[i]} instead of {amounts[i]}"
        )
    after = await balances(conn, token, sender_addresses(SENDERS))
    for s, (b, a) in enumerate(zip(before, after, strict=True)):
        if a != b - sent[s]:
            raise BenchError(f"[{target.name}] sender {s} holds {a}, expected {b - sent[s]}")


async def measure_target(
    target: Target,
    token: Token,
    work: Workload,
    client: str = "raw",
    profile: Path | None = None,
    deploy: bool = False,
) -> dict[str, Any]:
    """Set up, run and check the workload against one target; BenchError on any failure."""
    groups = split_senders(SENDERS, work.concurrency)
    counts = plan_counts(work.n, groups)
    conns = [await connect(target.url, client) for _ in groups]
    try:
        if deploy:
            await deploy_token(target, conns[0], token)
        await fund_senders(target, conns[0], token)
        before = await balances(conns[0], token.address, sender_addresses(SENDERS))
        plan = signing_plan(target.url, counts)
        started = time.perf_counter()
        signed = sign_token_transfers(target.chain_id, token.address, plan)
        warm_part, streams = warmup_and_streams(signed.txs, groups, work.batch)
        log(
            f"[{target.name}] signed and serialized {len(signed.moves)} token transfers in "
            f"{time.perf_counter() - started:.1f} s"
        )
        elapsed, nudges = await timed_send(target, conns, warm_part, streams, work.batch, profile)
        measured = [tx for stream in streams for tx in stream.txs]
        every = [tx.hash_hex for txs in signed.txs.values() for tx in txs]
        receipts = await wait_receipts(conns[0], every, RECEIPT_TIMEOUT)
        check_receipts(target, token.address, signed, receipts)
        await check_balances(target, conns[0], token.address, signed, before)
        blocks = {receipts[tx.hash_hex]["blockNumber"] for tx in measured}
        gas = sum(int(receipts[tx.hash_hex]["gasUsed"], 16) for tx in measured)
    finally:
        for conn in conns:
            await conn.close()
    return {
        "target": target.name,
        "n": len(measured),
        "batch": work.batch,
        "concurrency": work.concurrency,
        "confirmed": len(measured),
        "checked_balances": len(signed.moves) + len(SENDERS),
        "errors": 0,
        "blocks": len(blocks),
        "gas_per_tx": round(gas / len(measured)),
        "nudges": nudges,
        "elapsed_s": round(elapsed, 4),
        "tx_per_s": round(len(measured) / elapsed, 1),
    }


async def measure_node(
    work: Workload, client: str = "raw", profile: Path | None = None
) -> tuple[dict[str, Any], Token]:
    """The workload on a fresh node of the evm template; the result and the node's Token."""
    with NodeUnderTest(render=render_evm_app) as node:
        target = node.target()
        token = Token.of(node.process.app_dir)
        log(f"[node] pid {target.pid} at {target.url} (chain {target.chain_id}, evm)")
        with node.log_tail_on_failure():
            return await measure_target(target, token, work, client, profile), token


async def measure_anvil(work: Workload, token: Token, client: str = "raw") -> dict[str, Any]:
    with AnvilUnderTest(hardfork=HARDFORK) as anvil:
        target = anvil.target()
        log(f"[anvil] pid {target.pid} at {target.url} (chain {target.chain_id}, {HARDFORK})")
        return await measure_target(target, token, work, client, deploy=True)


async def run_evm(config: EvmConfig) -> dict[str, Any]:
    check_config(config, "evm")
    ours, token = await measure_node(config.ours, config.client, config.profile)
    log_rate(ours)
    peer = await measure_anvil(config.theirs, token, config.client) if config.peer else None
    if peer is not None:
        log_rate(peer)
    workload = "ERC-20 transfer(fresh recipient, random amount), pre-signed, JSON-RPC batches"
    return throughput_result(
        "evm",
        ours,
        peer,
        config.batch,
        config.concurrency,
        config.client,
        config.profile,
        workload=workload,
    )


def format_evm(result: dict[str, Any]) -> str:
    return format_throughput(
        result, f"evm: ERC-20 transfers (client {result['client']})", with_gas=True
    )
