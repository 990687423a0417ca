"""Deposits from a real L1 (Anvil + the Portal) into real node processes that follow it
(`python -m services.node --l1-rpc URL --portal ADDR`): ETH and ERC-20 credited on a native
and an EVM app and rendered like Ethereum transactions of type 0x7e (JSON-RPC, web3.py,
ethers); a forced call runs the token app's `transfer` as the L1 sender; a node SIGKILLed
between the deposit and its inclusion credits it once after restart; L1 reorgs (`anvil_reorg`)
drop an unconfirmed deposit, re-mine one under a new id, and never credit twice. The last test
runs `rollup up` and checks that every devnet node follows the devnet's Portal.

Anvil here mines only on demand (no block time), so the test decides when a deposit is
confirmed: the templates' manifests ask for 2 confirmations.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from bridge.deploy import ChainTerms, deploy_bridge
from bridge.l1 import L1Client
from bridge.portal import Portal, PortalDeposits, SentDeposit
from bridge.solc import compile_files
from rollup.crypto import keccak
from rollup.deposits import Deposit, bridged_token_address
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.manifest import parse_manifest
from services.anvil import AnvilProcess
from services.launch import NodeProcess
from services.rpcclient import RpcClient
from tests.conftest import render_template
from tests.e2e.devnet import REPO, detached_devnet
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

TEST_TOKEN = REPO / "tests" / "bridge" / "contracts" / "TestToken.sol"
NATIVE_CHAIN, EVM_CHAIN = 905_101, 905_102
CONFIRMATIONS = 2  # the templates' [bridge] confirmations
ETHER = 10**18
DEADLINE = 30.0
ALICE_KEY = DEV_KEYS[2]  # deposits from here (dev account 2 on Anvil and on the app chains)
OWNER = DEV_ADDRESSES[0]  # holds the token apps' supply at genesis


class L1:
    """Anvil with the bridge deployed, both app chains registered, mining on demand."""

    def __init__(self, anvil: AnvilProcess) -> None:
        self.anvil = anvil
        owner = L1Client(anvil.rpc_url, DEV_KEYS[0])
        deployment = deploy_bridge(
            owner, [ChainTerms(NATIVE_CHAIN, 5, 60), ChainTerms(EVM_CHAIN, 5, 60)]
        )
        self.portal_address, self.from_block = deployment.portal, deployment.from_block
        self.w3 = owner.w3
        self.alice = self.portal_as(ALICE_KEY)
        self.reader = PortalDeposits(owner, self.portal_address)

    def portal_as(self, key: str) -> Portal:
        return Portal(L1Client(self.anvil.rpc_url, key), self.portal_address)

    def rpc(self, method: str, *params: Any) -> Any:
        return rpc(self.anvil.rpc_url, method, *params)

    def mine(self, blocks: int = CONFIRMATIONS) -> None:
        self.rpc("anvil_mine", hex(blocks))

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def raw_transaction(self, tx_hash: bytes) -> str:
        raw: str = self.rpc("eth_getRawTransactionByHash", "0x" + tx_hash.hex())
        return raw

    def reorg(self, depth: int, raw_txs: Sequence[str] = ()) -> None:
        """Replace the newest `depth` blocks; `raw_txs` go into the first replacement."""
        self.rpc("anvil_reorg", depth, [[raw, 0] for raw in raw_txs])

    def deposit_in(self, chain_id: int, block: int) -> list[Deposit]:
        return self.reader.deposits(chain_id, block, block)

    def node_args(self) -> list[str]:
        return [
            "--l1-rpc",
            self.anvil.rpc_url,
            "--portal",
            "0x" + self.portal_address.hex(),
            "--portal-from-block",
            str(self.from_block),
            "--l1-poll",
            "0.1",
        ]


class App:
    """One app's node process and a JSON-RPC client for it."""

    def __init__(self, app_dir: Path, data_dir: Path, l1: L1, *extra: str) -> None:
        self.manifest = parse_manifest((app_dir / "rollup.toml").read_text())
        self.chain_id = self.manifest.chain_id
        self.address = Web3.to_checksum_address(self.manifest.address)
        self.process = NodeProcess(app_dir, data_dir, extra_args=[*l1.node_args(), *extra])
        self.client = RpcClient(self.process.url, timeout=15.0)

    @property
    def url(self) -> str:
        return self.process.url

    def rpc(self, method: str, *params: Any) -> Any:
        """One call's result, over the app's keep-alive connection."""
        return self.client.call(method, *params)

    def balance(self, address: bytes) -> int:
        return int(self.rpc("eth_getBalance", "0x" + address.hex(), "latest"), 16)

    def token_balance(self, token: bytes | str, holder: bytes) -> int:
        data = "0x70a08231" + bytes(12).hex() + holder.hex()
        to = token if isinstance(token, str) else "0x" + token.hex()
        return int(self.rpc("eth_call", {"to": to, "data": data}, "latest"), 16)

    def wait_included(self, deposit: Deposit) -> dict[str, Any]:
        """The deposit's transaction once it is in a block."""

        def included() -> dict[str, Any] | None:
            tx: dict[str, Any] | None = self.rpc(
                "eth_getTransactionByHash", "0x" + deposit.hash.hex()
            )
            return tx if tx and tx["blockNumber"] else None

        return wait_for(included, f"deposit {deposit.nonce} on chain {self.chain_id}", DEADLINE)

    def deposits_in_chain(self) -> list[str]:
        """The hash of every deposit transaction in the chain, oldest first."""
        head = int(self.rpc("eth_blockNumber"), 16)
        hashes = []
        for number in range(1, head + 1):
            block = self.rpc("eth_getBlockByNumber", hex(number), True)
            hashes += [tx["hash"] for tx in block["transactions"] if tx["type"] == "0x7e"]
        return hashes


def fresh() -> bytes:
    return os.urandom(20)


# ---- fixtures: one Anvil and two nodes for the module ----


@pytest.fixture(scope="module")
def l1() -> Iterator[L1]:
    with AnvilProcess() as anvil:
        yield L1(anvil)


@contextlib.contextmanager
def running_app(
    root: Path, l1: L1, template: str, name: str, chain_id: int, *extra: str
) -> Iterator[App]:
    """The template rendered as app `name` in root/app, its node running on root/data."""
    app = App(render_template(root / "app", template, name, chain_id), root / "data", l1, *extra)
    app.process.start()
    try:
        yield app
    finally:
        app.process.stop()
        app.client.close()


@pytest.fixture(scope="module")
def native(l1: L1, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_app(tmp_path_factory.mktemp("native"), l1, "token", "dtok", NATIVE_CHAIN) as app:
        yield app


@pytest.fixture(scope="module")
def evm(l1: L1, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_app(tmp_path_factory.mktemp("evm"), l1, "evm", "devm", EVM_CHAIN) as app:
        yield app


@pytest.fixture(params=["native", "evm"])
def app(request: pytest.FixtureRequest) -> App:
    chosen: App = request.getfixturevalue(request.param)
    return chosen


# ---- ETH deposits and how wallets see them ----


def test_an_eth_deposit_is_credited_first_in_its_block(l1: L1, app: App) -> None:
    to, amount = fresh(), 3 * ETHER // 2
    sent = l1.alice.deposit_eth(app.chain_id, to, amount)
    l1.mine()
    tx = app.wait_included(sent.deposit)
    assert app.balance(to) == amount

    block = app.rpc("eth_getBlockByNumber", tx["blockNumber"], True)
    first = block["transactions"][0]
    assert first == tx and first["transactionIndex"] == "0x0"
    assert first["type"] == "0x7e" and first["hash"] == "0x" + sent.deposit.hash.hex()
    assert first["sourceHash"] == "0x" + sent.deposit.source_hash.hex()
    assert first["from"] == "0x" + DEV_ADDRESSES[2].hex() and first["to"] == "0x" + to.hex()
    assert int(first["mint"], 16) == int(first["value"], 16) == amount
    receipt = app.rpc("eth_getTransactionReceipt", first["hash"])
    assert receipt["status"] == "0x1" and receipt["type"] == "0x7e"
    assert receipt["blockHash"] == block["hash"] and receipt["transactionIndex"] == "0x0"
    header = app.rpc("eth_getBlockByNumber", tx["blockNumber"], False)
    assert header["transactions"][0] == first["hash"]

    w3 = Web3(HTTPProvider(app.url))
    parsed: Any = w3.eth.get_block(int(tx["blockNumber"], 16), True)
    assert parsed["transactions"][0]["hash"] == sent.deposit.hash
    assert w3.eth.get_transaction(sent.deposit.hash)["type"] == 0x7E  # type: ignore[arg-type]
    assert w3.eth.get_transaction_receipt(sent.deposit.hash)["status"] == 1  # type: ignore[arg-type]


ETHERS_CHECK = """
import { ethers } from "ethers";
const [url, number, hash] = process.argv.slice(1);
const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true });
const block = await provider.getBlock(Number(number), true);
const first = block.prefetchedTransactions[0];
const tx = await provider.getTransaction(hash);
const receipt = await provider.getTransactionReceipt(hash);
console.log(JSON.stringify({ first: first.hash, type: first.type, value: first.value.toString(),
  txHash: tx.hash, txBlock: tx.blockNumber, status: receipt.status, index: receipt.index }));
"""


def test_ethers_parses_a_block_holding_a_deposit(l1: L1, app: App) -> None:
    node_bin = shutil.which("node")
    if node_bin is None or not (REPO / "node_modules" / "ethers").is_dir():
        pytest.fail("node and npm's ethers are installed by scripts/setup.sh")
    sent = l1.alice.deposit_eth(app.chain_id, fresh(), 12345)
    l1.mine()
    number = int(app.wait_included(sent.deposit)["blockNumber"], 16)
    done = subprocess.run(
        [
            node_bin,
            "--input-type=module",
            "-e",
            ETHERS_CHECK,
            app.url,
            str(number),
            "0x" + sent.deposit.hash.hex(),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "first": "0x" + sent.deposit.hash.hex(),
        "type": 126,
        "value": "12345",
        "txHash": "0x" + sent.deposit.hash.hex(),
        "txBlock": number,
        "status": 1,
        "index": 0,
    }


# ---- forced transactions ----


def test_a_forced_call_runs_the_token_apps_transfer_as_the_l1_sender(l1: L1, app: App) -> None:
    """A deposit with calldata from the account holding the supply (dev account 0 on both
    chains): the sequencer cannot leave it out, and the app sees the L1 sender."""
    recipient, amount = fresh(), 4321
    data = bytes.fromhex("a9059cbb") + bytes(12) + recipient + amount.to_bytes(32, "big")
    owner = l1.portal_as(DEV_KEYS[0])
    sent = owner.deposit_eth(
        app.chain_id, bytes.fromhex(app.address[2:]), 0, gas_limit=300_000, data=data
    )
    l1.mine()
    tx = app.wait_included(sent.deposit)
    receipt = app.rpc("eth_getTransactionReceipt", tx["hash"])
    assert receipt["status"] == "0x1", receipt
    assert app.token_balance(app.address, recipient) == amount
    transfer = keccak(b"Transfer(address,address,uint256)")
    (log,) = [entry for entry in receipt["logs"] if entry["topics"][0] == "0x" + transfer.hex()]
    assert log["topics"][1] == "0x" + (bytes(12) + OWNER).hex()  # msg.sender: the L1 sender
    assert log["topics"][2] == "0x" + (bytes(12) + recipient).hex()


# ---- ERC-20 deposits ----


def test_an_erc20_deposit_credits_the_bridged_token(l1: L1, app: App) -> None:
    compiled = compile_files([TEST_TOKEN])["TestToken"]
    alice_l1 = L1Client(l1.anvil.rpc_url, ALICE_KEY)
    args = Web3().codec.encode(["string", "string", "uint8"], ["Test Dollar", "TUSD", 6])
    created = alice_l1.send(None, compiled.bytecode + args)
    token = created.contract_address
    assert token is not None
    contract = l1.w3.eth.contract(address=Web3.to_checksum_address(token), abi=compiled.abi)
    mint = contract.encode_abi("mint", args=[Account.from_key(ALICE_KEY).address, 10**9])
    alice_l1.send(token, bytes.fromhex(mint[2:]))
    to, amount = fresh(), 250_000
    l1.alice.approve_token(token, amount)
    sent = l1.alice.deposit_erc20(app.chain_id, token, to, amount)
    assert sent.deposit.token_amount == amount
    l1.mine()
    app.wait_included(sent.deposit)
    bridged = bridged_token_address(token)
    assert app.token_balance(bridged, to) == amount
    symbol = app.rpc("eth_call", {"to": "0x" + bridged.hex(), "data": "0x95d89b41"}, "latest")
    assert b"TUSD" in bytes.fromhex(symbol[2:])


# ---- crashes and reorgs ----


def test_a_node_killed_before_including_a_deposit_credits_it_once_after_restart(
    l1: L1, native: App
) -> None:
    to, amount = fresh(), 777
    sent = l1.alice.deposit_eth(native.chain_id, to, amount)
    time.sleep(0.3)  # the follower reads it (unconfirmed: it cannot be included yet)
    native.process.kill()
    l1.mine()
    native.process.start()
    native.wait_included(sent.deposit)
    assert native.balance(to) == amount

    # killed after including it: the restarted follower reads it again and does not re-credit
    native.process.kill()
    native.process.start()
    marker = l1.alice.deposit_eth(native.chain_id, fresh(), 1)
    l1.mine()
    native.wait_included(marker.deposit)
    assert native.balance(to) == amount
    assert native.deposits_in_chain().count("0x" + sent.deposit.hash.hex()) == 1


def test_a_deposit_reorged_out_before_its_confirmations_is_never_credited(l1: L1, app: App) -> None:
    gone = fresh()
    sent = l1.alice.deposit_eth(app.chain_id, gone, 999)
    l1.mine(CONFIRMATIONS - 1)
    time.sleep(0.3)  # the follower has read it, one block short of its confirmations
    l1.reorg(CONFIRMATIONS)  # its block and the one on it replaced by empty blocks
    l1.mine(3)
    other = fresh()
    later = l1.alice.deposit_eth(app.chain_id, other, 5)
    assert later.deposit.nonce == sent.deposit.nonce  # the Portal never counted the first
    l1.mine()
    app.wait_included(later.deposit)
    assert app.balance(other) == 5 and app.balance(gone) == 0
    assert app.rpc("eth_getTransactionByHash", "0x" + sent.deposit.hash.hex()) is None


def test_a_deposit_mined_again_by_a_reorg_is_credited_once_under_its_new_id(
    l1: L1, app: App
) -> None:
    to = fresh()
    sent = l1.alice.deposit_eth(app.chain_id, to, 31337)
    raw = l1.raw_transaction(sent.l1_tx)
    time.sleep(0.3)
    l1.reorg(1, [raw])  # the same L1 transaction, in another block of the same height
    (again,) = l1.deposit_in(app.chain_id, sent.deposit.l1_block)
    assert again.nonce == sent.deposit.nonce and again.source_hash != sent.deposit.source_hash
    l1.mine()
    app.wait_included(again)
    assert app.balance(to) == 31337
    assert app.rpc("eth_getTransactionByHash", "0x" + sent.deposit.hash.hex()) is None

    # a reorg deeper than the confirmations mines it once more: the chain executed its nonce
    l1.reorg(CONFIRMATIONS + 1, [raw])
    l1.mine()
    marker = l1.alice.deposit_eth(app.chain_id, fresh(), 1)
    l1.mine()
    app.wait_included(marker.deposit)
    assert app.balance(to) == 31337


def test_the_fault_switch_leaves_deposits_out(l1: L1, tmp_path: Path) -> None:
    """`--fault-ignore-deposits` (test only): a block built after the deposit was confirmed
    leaves it out: the censorship a verifier must report."""
    with running_app(
        tmp_path, l1, "token", "ftok", NATIVE_CHAIN, "--fault-ignore-deposits"
    ) as censor:
        to = fresh()
        sent = l1.alice.deposit_eth(NATIVE_CHAIN, to, 4242)
        l1.mine()
        time.sleep(0.5)  # the follower has it confirmed
        alice = Account.from_key(ALICE_KEY)
        signed = alice.sign_transaction(
            {
                "chainId": NATIVE_CHAIN,
                "nonce": 0,
                "to": Web3.to_checksum_address(fresh()),
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 2 * 10**9,
                "maxPriorityFeePerGas": 0,
            }
        )
        tx_hash = censor.rpc("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
        wait_for(lambda: censor.rpc("eth_getTransactionReceipt", tx_hash), "a block", DEADLINE)
        assert censor.balance(to) == 0 and censor.deposits_in_chain() == []
        assert censor.rpc("eth_getTransactionByHash", "0x" + sent.deposit.hash.hex()) is None


# ---- the devnet: every node follows the devnet's Portal ----


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Path]:
    with detached_devnet(
        tmp_path / "data", str(REPO / "examples" / "token"), str(REPO / "examples" / "erc20")
    ) as net:
        yield net.data_dir


def test_every_devnet_node_follows_the_devnets_portal(devnet: Path) -> None:
    state = json.loads((devnet / "devnet.json").read_text())
    record = json.loads((devnet / "l1" / "inbox.json").read_text())
    portal = Portal(
        L1Client(state["l1"]["rpc_url"], DEV_KEYS[3]), bytes.fromhex(record["portal"][2:])
    )
    latencies = []
    for round_ in range(3):
        for app in state["apps"]:
            to = fresh()
            sent: SentDeposit = portal.deposit_eth(app["chain_id"], to, 10**15 + round_)
            receipt_at = time.monotonic()  # deposit_eth returns with the L1 receipt

            def credited(
                url: str = app["rpc_url"], to: bytes = to, amount: int = 10**15 + round_
            ) -> bool:
                return int(rpc(url, "eth_getBalance", "0x" + to.hex(), "latest"), 16) == amount

            wait_for(credited, f"the deposit on {app['name']}", DEADLINE, interval=0.05)
            latencies.append((app["vm"], round(time.monotonic() - receipt_at, 2)))
            assert sent.deposit.l1_block > 0
    print("deposit latency, L1 receipt -> credited (s):", latencies)
