"""DA end to end with real processes: Anvil as L1 and DA (calldata), a node posting to it, an
L1 outage the poster rides out (back-pressure while it lasts, then catch-up with no lost or
repeated batch), and a verifier process that re-derives the chain to the node's own roots
and catches a malicious batch. The outage lasts 3 s by default, 60 s under `-m slow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from da.commitment import encode_refs
from da.ethereum import EthereumDA
from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from rollup.manifest import app_address
from services.anvil import AnvilProcess, free_port
from services.keys import load_key
from services.l1setup import BatcherSpec, L1Setup, prepare_l1
from services.launch import NodeProcess
from services.rpcclient import RpcClient, request
from services.verifier import open_verifier
from tests.support import RPC_TIMEOUT, rpc, wait_for

pytestmark = pytest.mark.e2e

ANVIL_ARGS = ("--mixed-mining", "--slots-in-an-epoch", "1")  # as the devnet's L1
DEADLINE = 90.0
CHAIN_ID = 901001  # the token_app fixture's


def block_number(url: str, tag: str) -> int:
    return int(rpc(url, "eth_getBlockByNumber", tag, False)["number"], 16)


def posted(url: str) -> bool:
    """Every block of the node is in a committed batch."""
    return block_number(url, "safe") == block_number(url, "latest")


class Sender:
    """Dev account 1 sending native and token transfers, one JSON-RPC call each."""

    def __init__(self, url: str) -> None:
        self.url, self.key = url, DEV_KEYS[1]
        self.nonce = int(
            rpc(url, "eth_getTransactionCount", Account.from_key(self.key).address, "pending"), 16
        )

    def send(self, index: int) -> dict[str, Any]:
        """One transfer in one call (so in a block of its own): the answer, result or error."""
        with RpcClient(self.url, RPC_TIMEOUT) as client:
            answer: dict[str, Any] = client.post(
                request("eth_sendRawTransaction", [self.sign(index)])
            )
        if "result" in answer:
            self.nonce += 1
        return answer

    def send_batch(self, count: int) -> list[dict[str, Any]]:
        """`count` transfers in one JSON-RPC batch (so in one block)."""
        raws = [self.sign(i, self.nonce + i) for i in range(count)]
        with RpcClient(self.url, RPC_TIMEOUT) as client:
            answers = client.batch([("eth_sendRawTransaction", [raw]) for raw in raws])
        self.nonce += sum("result" in a for a in answers)
        return answers

    def sign(self, index: int, nonce: int | None = None) -> str:
        to = os.urandom(20)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": CHAIN_ID,
            "value": 0,
            "nonce": self.nonce if nonce is None else nonce,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 0,
        }
        if index % 2:
            data = bytes.fromhex("a9059cbb") + bytes(12) + to + (10**15).to_bytes(32, "big")
            tx |= {"to": to_checksum_address(app_address("tok")), "gas": 100_000, "data": data}
        else:
            tx |= {"to": to_checksum_address(to), "gas": 21_000, "value": 10**12}
        return "0x" + bytes(Account.sign_transaction(tx, self.key).raw_transaction).hex()


@pytest.fixture
def l1(tmp_path: Path) -> Iterator[AnvilProcess]:
    anvil = AnvilProcess(log_dir=tmp_path / "logs")
    anvil.start(state_dir=tmp_path / "l1", block_time=1.0, extra_args=ANVIL_ARGS)
    try:
        yield anvil
    finally:
        anvil.stop()


def start_node(
    token_app: Path, data_dir: Path, anvil: AnvilProcess, setup: L1Setup, *extra: str
) -> NodeProcess:
    args = [
        "--da",
        "ethereum",
        "--l1-rpc",
        anvil.rpc_url,
        "--inbox",
        "0x" + setup.inbox.hex(),
        "--inbox-from-block",
        str(setup.from_block),
        "--da-max-delay",
        "0.2",
        "--da-retry-max",
        "1",
        *extra,
    ]
    node = NodeProcess(
        token_app,
        data_dir,
        extra_args=args,
        env={"ROLLUP_BATCHER_KEY_FILE": str(setup.batchers["tok"])},
    )
    node.start()
    return node


def verify_once(
    token_app: Path, anvil: AnvilProcess, setup: L1Setup, da_dir: Path
) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.verifier",
            "--app-dir",
            str(token_app),
            "--l1-rpc",
            anvil.rpc_url,
            "--inbox",
            "0x" + setup.inbox.hex(),
            "--from-l1-block",
            str(setup.from_block),
            "--da-dir",
            str(da_dir),
            "--once",
            "--json",
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, ETH_HASH_BACKEND="pysha3"),
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


OUTAGES = [
    pytest.param(3.0, id="outage-3s"),
    pytest.param(60.0, id="outage-60s", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("outage", OUTAGES)
def test_posting_through_an_l1_outage_and_re_deriving(
    outage: float, token_app: Path, tmp_path: Path, l1: AnvilProcess
) -> None:  # the 60 s outage is `slow`: tests/conftest.py runs it with -m slow only
    setup = prepare_l1(
        l1.rpc_url,
        [BatcherSpec("tok", CHAIN_ID, tmp_path / "batcher.key")],
        tmp_path / "l1",
        fund_owner_from=DEV_KEYS[0],
    )
    data_dir = tmp_path / "data"
    node = start_node(token_app, data_dir, l1, setup, "--da-max-backlog-blocks", "6")
    try:
        url = node.url
        sender = Sender(url)
        for _ in range(3):  # three blocks of 12 transfers
            first = sender.send_batch(12)
            assert all("result" in a for a in first), first
        wait_for(lambda: posted(url), "posting", DEADLINE)
        wait_for(
            lambda: block_number(url, "finalized") == block_number(url, "latest"),
            "L1 finality",
            DEADLINE,
        )

        # The L1 goes away: blocks pile up unposted until admission pushes back.
        port = l1.port
        l1.stop()
        went_down = time.monotonic()
        answers = [sender.send(i) for i in range(12)]
        refused = [a["error"] for a in answers if "error" in a]
        assert refused and refused[0]["code"] == -32005, answers
        assert "DA backlog full" in refused[0]["message"]
        assert block_number(url, "safe") < block_number(url, "latest")
        time.sleep(max(0.0, outage - (time.monotonic() - went_down)))

        l1.start(port=port, state_dir=tmp_path / "l1", block_time=1.0, extra_args=ANVIL_ARGS)
        wait_for(lambda: posted(url), "the poster to catch up", DEADLINE)
        assert "result" in sender.send(0)  # admission is open again
        wait_for(lambda: posted(url), "posting", DEADLINE)
        head = block_number(url, "latest")
        latest = rpc(url, "eth_getBlockByNumber", "latest", False)
    finally:
        node.stop()

    # Every block posted exactly once, in order, across the outage.
    commitments = BatchInbox(L1Client(l1.rpc_url), setup.inbox).commitments(CHAIN_ID, 0)
    assert [c.index for c in commitments] == list(range(len(commitments)))
    assert commitments[0].first_block == 1 and commitments[-1].last_block == head
    assert all(b.first_block == a.last_block + 1 for a, b in zip(commitments, commitments[1:]))

    # A verifier re-derives the chain from the L1 alone, to the node's own head and roots.
    code, status = verify_once(token_app, l1, setup, data_dir / "da")
    assert code == 0 and status["message"] == f"in sync at block {head}", status
    assert (status["head_hash"], status["state_root"]) == (latest["hash"], latest["stateRoot"])

    # A batcher that posts garbage is caught at the first block it claims.
    batcher = L1Client(l1.rpc_url, "0x" + load_key(setup.batchers["tok"]).hex())
    garbage = b"\x00" + os.urandom(200)
    ref = EthereumDA(batcher, CHAIN_ID).submit(garbage)
    BatchInbox(batcher, setup.inbox).commit(
        CHAIN_ID, head + 1, head + 1, keccak(garbage), keccak(b"root"), encode_refs([ref])
    )
    code, status = verify_once(token_app, l1, setup, data_dir / "da")
    assert code == 1 and status["status"] == "diverged" and status["block"] == head + 1
    assert "frames do not decode" in status["reason"]


def test_node_refuses_da_without_its_settings(token_app: Path, tmp_path: Path) -> None:
    node = NodeProcess(
        token_app, tmp_path / "data", extra_args=["--da", "ethereum"], port=free_port()
    )
    with pytest.raises(RuntimeError, match="--da ethereum needs --l1-rpc, --inbox"):
        node.start(timeout=30)
    node.stop()


@pytest.fixture
def l1_on_demand(tmp_path: Path) -> Iterator[AnvilProcess]:
    """Anvil mining a block per transaction (and on `anvil_mine`): reorgs hit exact blocks."""
    with AnvilProcess(log_dir=tmp_path / "logs") as anvil:
        yield anvil


def test_an_l1_reorg_that_removes_a_commitment_is_followed(
    token_app: Path, tmp_path: Path, l1_on_demand: AnvilProcess
) -> None:
    """The newest batch's DA transaction and commitment are reorged out (`anvil_reorg`): the
    poster posts them again and a verifier that had verified them takes that batch back with
    its undo logs and re-derives it from the fork point on the new L1 (not from genesis)."""
    anvil = l1_on_demand
    setup = prepare_l1(
        anvil.rpc_url,
        [BatcherSpec("tok", CHAIN_ID, tmp_path / "batcher.key")],
        tmp_path / "l1",
        fund_owner_from=DEV_KEYS[0],
    )
    portal = (
        "--portal",
        "0x" + setup.portal.hex(),
        "--portal-from-block",
        str(setup.from_block),
        "--l1-poll",
        "0.1",
    )
    node = start_node(token_app, tmp_path / "data", anvil, setup, *portal)
    inbox = BatchInbox(L1Client(anvil.rpc_url), setup.inbox)
    w3 = L1Client(anvil.rpc_url).w3
    try:
        url = node.url
        sender = Sender(url)
        for _ in range(2):
            assert all("result" in a for a in sender.send_batch(4))
            wait_for(lambda: posted(url), "posting", DEADLINE)
        head = block_number(url, "latest")
        _name, verifier = open_verifier(
            token_app, anvil.rpc_url, setup.inbox, [], setup.from_block, setup.portal
        )
        try:
            assert verifier.verify_until_idle().message == f"in sync at block {head}"
            last = inbox.commitments(CHAIN_ID, 0)[-1]
            assert last.l1_block == int(w3.eth.block_number)  # the DA transaction just before
            rpc(anvil.rpc_url, "anvil_reorg", 2, [])
            assert inbox.next_block(CHAIN_ID) == last.first_block  # the commitment is gone
            wait_for(
                lambda: inbox.next_block(CHAIN_ID) == head + 1, "the poster to post again", DEADLINE
            )
            again = inbox.commitments(CHAIN_ID, 0)[-1]
            assert (again.index, again.first_block, again.last_block) == (
                last.index,
                last.first_block,
                last.last_block,
            )
            assert again.l1_block > last.l1_block
            wait_for(lambda: block_number(url, "safe") == head, "the safe head", DEADLINE)
            status = verifier.verify_until_idle()
            assert status.message == f"in sync at block {head}" and status.waiting is None
            assert status.l1_reorgs >= 1 and status.rollbacks >= 1 and status.rewinds == 0
            assert status.rolled_back_blocks >= last.last_block - last.first_block + 1
            assert status.head_hash == rpc(url, "eth_getBlockByNumber", hex(head), False)["hash"]
        finally:
            verifier.close()
    finally:
        node.stop()
