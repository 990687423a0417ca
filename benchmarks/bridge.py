"""`rollup bench bridge`: the L1 bridge on a devnet, next to OP Stack's published gas figures.

The devnet is started as `rollup up --detach` starts one (services/devnet/): Anvil with
automine and a block a second, one native token app with its DA poster (local backend) and
its L1 follower on the devnet's Portal, with the template's devnet windows (2 confirmations,
5 s withdrawal delay). Every step runs the `rollup bridge` workflows (services/bridge_cli.py).

- deposit latency: `--probes` ETH deposits one after the other, each to a new address:
  seconds from the L1 receipt to the deposit transaction in an app-chain block (p50, p90,
  max). Its floor is the confirmations: the deposit's L1 block must be 2 deep, and Anvil adds
  a block a second.
- deposits absorbed: `--burst` deposits pre-signed from `--senders` dev accounts, each to a
  new address. Anvil's automine and interval mining are paused, all are sent and mined (blocks
  of up to 30M gas), then the confirmations are mined at once: the clock starts there and
  stops when the last deposit is in an app-chain block (the node's follower reads them with
  eth_getLogs, the sequencer puts up to 256 in a block). deposits_per_s = burst / that time.
  (A burst is what a sequencer must absorb: an Ethereum block, 30M gas every 12 s, holds
  ~700 deposits, ~60 a second.) Anvil's mining is resumed after.
- withdraw_to_final_s: from sending the L2 withdrawal to the finalize receipt, through
  waiting for the output root that covers it and for the 5 s delay.
- L1 gas: receipts' gasUsed of depositETH and depositERC20 (the chain's first, whose storage
  is cold, and a later one), proveWithdrawal and finalizeWithdrawal; and their execution gas
  (less the 21,000 base and the calldata's 4/16 gas a byte), the figure OP's published
  numbers give (contracts-bedrock .gas-snapshot at 9ae0a566: depositTransaction 75,085 and
  36,396 warm, L1StandardBridge depositERC20 112,955, proveWithdrawalTransaction 169,229; OP
  proves against a Merkle-Patricia storage proof, we against a depth-32 binary tree).
Both timings move with machine load: the two cores are shared with whatever else runs.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from web3 import Web3

from benchmarks.common import BenchError, environment, log, nonces, percentile, rpc
from benchmarks.signing import sign_transfer
from benchmarks.targets import render_token_app
from bridge.l1 import L1Client
from bridge.portal import DEFAULT_DEPOSIT_GAS, Portal
from bridge.solc import compile_sources
from rollup.crypto import keccak
from rollup.errors import RollupError
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from services.anvil import AnvilError
from services.bridge_cli import BridgeTarget, bridge_status, deposit, finalize, open_target
from services.bridge_cli import withdraw as start_withdrawal
from services.devnet import DevnetError, spawn_detached, stop_recorded, wait_detached
from services.rpcclient import RpcClient

__all__ = ["BridgeBenchConfig", "run_bridge", "format_bridge"]

APP, CHAIN_ID = "bbridge", 905_401
L1_CHAIN_ID = 31_337
UP_TIMEOUT = 120.0
PROBE_KEY = DEV_KEYS[1]  # the latency probes, the ERC-20 and the withdrawal
FIRST_BURST_SENDER = 2  # dev accounts 2.. send the burst (0 funds the devnet's owner)
DEPOSIT_L1_GAS = 150_000
CONFIRMATIONS = 2  # the token template's [bridge] confirmations
ETHER = 10**18
TARGET_P50_S, TARGET_RATE = 2.0, 1_000.0
OP_GAS = {  # execution gas, ethereum-optimism/optimism contracts-bedrock .gas-snapshot @9ae0a566
    "depositETH": 75_085,
    "depositETH_warm": 36_396,
    "depositERC20": 112_955,
    "depositERC20_warm": None,
    "proveWithdrawal": 169_229,
    "finalizeWithdrawal": None,
}
DEPOSIT_ETH = keccak(b"depositETH(uint64,address,uint64,bytes)")[:4]
BENCH_TOKEN = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract BenchToken {
    string public name = "Bench Dollar";
    string public symbol = "BUSD";
    uint8 public decimals = 6;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    constructor(uint256 supply) { balanceOf[msg.sender] = supply; }
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
        return true;
    }
    function _move(address from, address to, uint256 amount) internal {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
"""


@dataclass(frozen=True)
class BridgeBenchConfig:
    probes: int = 20
    burst: int = 2_000
    senders: int = 8


def run_bridge(config: BridgeBenchConfig) -> dict[str, Any]:
    if config.probes < 2 or config.burst < 1:
        raise BenchError("need --probes >= 2 and --burst >= 1")
    if not 1 <= config.senders <= len(DEV_KEYS) - FIRST_BURST_SENDER:
        raise BenchError(f"--senders must be 1..{len(DEV_KEYS) - FIRST_BURST_SENDER}")
    tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-bridge-"))
    data_dir = tmp / "data"
    try:
        app_dir = render_token_app(tmp / "app", APP, CHAIN_ID)
        proc = spawn_detached([app_dir], data_dir)
        try:
            state = wait_detached(proc, data_dir, UP_TIMEOUT)
            log(f"[devnet] supervisor pid {proc.pid}, L1 at {state['l1']['rpc_url']}")
            return _measure(open_target(data_dir, APP), config)
        finally:
            stop_recorded(data_dir)
            proc.stop()  # reaps the supervisor stop_recorded stopped (by PID)
    except BenchError:
        raise
    except (RollupError, DevnetError, AnvilError, httpx.HTTPError) as exc:
        raise BenchError(" ".join(str(exc).split())) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(target: BridgeTarget, config: BridgeBenchConfig) -> dict[str, Any]:
    w3 = Web3(Web3.HTTPProvider(target.l1_rpc))
    latencies, eth_txs = _probe_deposits(target, config.probes)
    gas = {"depositETH": _gas(w3, eth_txs[0]), "depositETH_warm": _gas(w3, eth_txs[1])}
    erc20 = _erc20_deposits(target)
    gas |= {"depositERC20": _gas(w3, erc20[0]), "depositERC20_warm": _gas(w3, erc20[1])}
    withdrawal = _withdraw_to_final(target)
    gas["proveWithdrawal"] = _gas(w3, withdrawal["prove_tx"])
    gas["finalizeWithdrawal"] = _gas(w3, withdrawal["finalize_tx"])
    burst = _burst(target, config)
    status = bridge_status(target)
    if status["deposits"]["pending"]:
        raise BenchError(f"{status['deposits']['pending']} deposits were never credited")
    for name, used in gas.items():
        used["op_execution"] = OP_GAS[name]
    ordered = sorted(latencies)
    return {
        "benchmark": "bridge",
        "probes": config.probes,
        "burst": config.burst,
        "senders": config.senders,
        "deposit_p50_s": round(percentile(ordered, 50), 3),
        "deposit_p90_s": round(percentile(ordered, 90), 3),
        "deposit_max_s": round(ordered[-1], 3),
        "deposits_per_s": burst["deposits_per_s"],
        "withdraw_to_final_s": withdrawal["seconds"],
        "withdrawal_delay_s": status["withdrawal_delay"],
        "confirmations": status["manifest"]["confirmations"],
        "l1_gas": gas,
        "burst_detail": burst,
        "targets": {"deposit_p50_s": TARGET_P50_S, "deposits_per_s": TARGET_RATE},
        "environment": environment(),
    }


def _probe_deposits(target: BridgeTarget, probes: int) -> tuple[list[float], list[str]]:
    """(seconds from each L1 receipt to the L2 block, the L1 transactions), one at a time."""
    seconds, txs = [], []
    for i in range(probes):
        result = deposit(target, 10**15 + i, secrets.token_bytes(20), key=PROBE_KEY)
        seconds.append(float(result["seconds"]))
        txs.append(result["l1_tx"])
    log(
        f"[deposits] {probes} probes: p50 {percentile(sorted(seconds), 50):.2f} s, max "
        f"{max(seconds):.2f} s from the L1 receipt to the app chain"
    )
    return seconds, txs


def _erc20_deposits(target: BridgeTarget) -> list[str]:
    """The L1 transactions of the chain's first two deposits of a new ERC-20."""
    compiled = compile_sources({"BenchToken.sol": BENCH_TOKEN})["BenchToken"]
    l1 = L1Client(target.l1_rpc, PROBE_KEY)
    args = Web3().codec.encode(["uint256"], [10**15])
    token = l1.send(None, compiled.bytecode + args).contract_address
    if token is None:
        raise BenchError("the ERC-20 was not deployed")
    txs = [
        deposit(target, 1_000 + i, secrets.token_bytes(20), token, key=PROBE_KEY)["l1_tx"]
        for i in range(2)
    ]
    log("[deposits] an ERC-20 deposited twice")
    return txs


def _withdraw_to_final(target: BridgeTarget) -> dict[str, Any]:
    """A new account gets 1 ETH by a deposit (genesis balances are not backed on the L1),
    then withdraws half of it; timed from the L2 transaction to the finalize receipt."""
    user = Account.create()
    deposit(target, ETHER, bytes.fromhex(user.address[2:]), key=PROBE_KEY)
    started = time.monotonic()
    sent = start_withdrawal(target, ETHER // 2, secrets.token_bytes(20), key=user.key.hex())
    done = finalize(target, bytes.fromhex(sent["withdrawal_hash"][2:]), key=PROBE_KEY)
    seconds = round(time.monotonic() - started, 3)
    if done["prove_tx"] is None:
        raise BenchError("the withdrawal was proven before this benchmark proved it")
    log(f"[withdrawal] {seconds:.2f} s from the L2 transaction to finalized on the L1")
    return dict(done, seconds=seconds)


def _gas(w3: Web3, tx_hash: str) -> dict[str, Any]:
    """A transaction's gasUsed, and its execution gas (less the base and the calldata)."""
    receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    data = bytes(w3.eth.get_transaction(tx_hash)["input"])  # type: ignore[arg-type]
    calldata = sum(16 if byte else 4 for byte in data)
    used = int(receipt["gasUsed"])
    return {"receipt": used, "execution": used - 21_000 - calldata, "calldata_bytes": len(data)}


# ---- the burst ----


def _send_raw(anvil: RpcClient, raws: Sequence[str], chunk: int = 500) -> None:
    """Send signed transactions to Anvil in batches; any refusal fails the run."""
    for start in range(0, len(raws), chunk):
        calls = [("eth_sendRawTransaction", [raw]) for raw in raws[start : start + chunk]]
        errors = [a["error"] for a in anvil.batch(calls) if "error" in a]
        if errors:
            raise BenchError(f"{len(errors)} burst deposits refused, e.g. {errors[0]}")


def _burst(target: BridgeTarget, config: BridgeBenchConfig) -> dict[str, Any]:
    senders = list(range(FIRST_BURST_SENDER, FIRST_BURST_SENDER + config.senders))
    anvil = RpcClient(target.l1_rpc, timeout=60.0)  # the devnet's L1, driven directly
    portal = Portal(L1Client(target.l1_rpc), target.portal)
    try:
        raws, last_nonces = _sign_burst(target, senders, config.burst)
        first_l1 = int(anvil.call("eth_blockNumber"), 16) + 1
        anvil.call("evm_setAutomine", False)
        anvil.call("evm_setIntervalMining", 0)
        try:
            _send_raw(anvil, raws)
            l1_blocks = _mine_all(anvil, senders, last_nonces)
            last_l1 = int(anvil.call("eth_blockNumber"), 16)
            burst = portal.deposits(target.chain_id, first_l1, last_l1)
            if len(burst) != config.burst:
                raise BenchError(f"the L1 has {len(burst)} of the {config.burst} deposits")
            started = time.monotonic()  # from here every deposit is confirmed
            anvil.call("anvil_mine", hex(CONFIRMATIONS))
            blocks = _wait_credited(target, "0x" + burst[-1].hash.hex(), started)
            seconds = time.monotonic() - started
            first_block = _l2_block(target, "0x" + burst[0].hash.hex())
        finally:
            anvil.call("evm_setAutomine", True)
            anvil.call("evm_setIntervalMining", 1)
    finally:
        anvil.close()
    rate = config.burst / seconds
    log(
        f"[burst] {config.burst} deposits in {l1_blocks} L1 blocks, credited in {seconds:.3f} s "
        f"after their confirmation ({rate:.0f}/s) in {blocks - first_block + 1} app-chain "
        "blocks"
    )
    return {
        "n": config.burst,
        "senders": config.senders,
        "l1_blocks": l1_blocks,
        "l2_blocks": blocks - first_block + 1,
        "seconds": round(seconds, 3),
        "deposits_per_s": round(rate, 1),
    }


def _sign_burst(
    target: BridgeTarget, senders: list[int], n: int
) -> tuple[list[str], dict[int, int]]:
    """n depositETH transactions, round-robin over the senders, each to a new address; and the
    last nonce of each sender."""
    pending = nonces(target.l1_rpc, [DEV_ADDRESSES[s] for s in senders])
    next_nonce = dict(zip(senders, pending, strict=True))
    raws, last = [], {}
    for i in range(n):
        sender = senders[i % len(senders)]
        args = [
            target.chain_id,
            Web3.to_checksum_address(secrets.token_bytes(20)),
            DEFAULT_DEPOSIT_GAS,
            b"",
        ]
        data = DEPOSIT_ETH + Web3().codec.encode(["uint64", "address", "uint64", "bytes"], args)
        signed = sign_transfer(
            sender, L1_CHAIN_ID, next_nonce[sender], target.portal, 10**9, data, DEPOSIT_L1_GAS
        )
        raws.append(signed.raw_hex)
        last[sender] = next_nonce[sender]
        next_nonce[sender] += 1
    return raws, last


def _mine_all(anvil: RpcClient, senders: list[int], last: dict[int, int]) -> int:
    """Mine until every sender's last transaction is in; the blocks it took."""
    blocks = 0
    while any(
        int(anvil.call("eth_getTransactionCount", "0x" + DEV_ADDRESSES[s].hex(), "latest"), 16)
        <= last[s]
        for s in senders
    ):
        anvil.call("anvil_mine", "0x1")
        blocks += 1
        if blocks > 10_000:
            raise BenchError("the burst's deposits are not being mined")
    return blocks


def _l2_block(target: BridgeTarget, tx_hash: str) -> int:
    tx = rpc(target.rpc_url, "eth_getTransactionByHash", tx_hash) or {}
    return int(tx["blockNumber"], 16) if tx.get("blockNumber") else -1


def _wait_credited(
    target: BridgeTarget, tx_hash: str, started: float, timeout: float = 300.0
) -> int:
    """The app-chain block of `tx_hash` (the burst's last deposit) once it has one."""
    with RpcClient(target.rpc_url) as node:
        while time.monotonic() - started < timeout:
            tx = rpc(node, "eth_getTransactionByHash", tx_hash) or {}
            if tx.get("blockNumber"):
                return int(tx["blockNumber"], 16)
            time.sleep(0.005)
    raise BenchError(f"the burst was not credited within {timeout:g} s")


# ---- output ----


def format_bridge(result: dict[str, Any]) -> str:
    burst = result["burst_detail"]
    lines = [
        f"bridge (devnet: Anvil with a block a second, {result['confirmations']} confirmations, "
        f"{result['withdrawal_delay_s']} s withdrawal delay)",
        f"deposit latency, L1 receipt -> app chain: p50 {result['deposit_p50_s']:.2f} s, p90 "
        f"{result['deposit_p90_s']:.2f} s, max {result['deposit_max_s']:.2f} s "
        f"({result['probes']} probes; target <= {TARGET_P50_S:g} s)",
        f"deposits absorbed: {result['deposits_per_s']:.0f}/s ({burst['n']} deposits from "
        f"{burst['senders']} L1 accounts in {burst['l1_blocks']} L1 blocks, credited "
        f"{burst['seconds']:.3f} s after their confirmation in {burst['l2_blocks']} app-chain "
        f"blocks; target >= {TARGET_RATE:g}/s)",
        f"withdraw -> finalized on L1: {result['withdraw_to_final_s']:.2f} s",
        "",
        f"{'L1 gas':<22}{'receipt':>10}{'execution':>11}{'OP execution':>14}",
    ]
    for name, gas in result["l1_gas"].items():
        op = "-" if gas["op_execution"] is None else f"{gas['op_execution']:,}"
        lines.append(f"{name:<22}{gas['receipt']:>10,}{gas['execution']:>11,}{op:>14}")
    return "\n".join(lines)
