"""Censorship caught end to end: Anvil with the devnet's L1 set-up (BatchInbox and Portal), two
native apps whose nodes follow the Portal and post their batches to the L1, one of them
started with the test-only `--fault-ignore-deposits`. A deposit to each: the honest chain
includes it and its verifier (`python -m services.verifier --portal ...`) is in sync; the
censoring chain leaves it out, and once a batch of it is committed past the deposit's
sequencing window its verifier reports "diverged at block N: deposit 0x... (nonce 0, L1 block
D) due at L1 block D+W" at that batch's last block.

Anvil mines on demand here (each transaction in a block of its own, `anvil_mine` for the
rest), so the test decides where the window closes; the apps' window is shortened to 4 L1
blocks (2 confirmations, as the templates')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from bridge.portal import Portal
from rollup.deposits import Deposit
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess
from services.l1setup import BatcherSpec, L1Setup, prepare_l1
from services.launch import NodeProcess
from tests.conftest import render_template
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

HONEST, CENSOR = 906_101, 906_102
WINDOW = 4  # sequencing_window, L1 blocks (rendered into both apps' rollup.toml)
ALICE_KEY = DEV_KEYS[2]


class Chain:
    """One app: its directory (window shortened), its node process, JSON-RPC."""

    def __init__(
        self, root: Path, name: str, chain_id: int, setup: L1Setup, rpc_url: str, *extra: str
    ) -> None:
        self.name, self.chain_id, self.setup, self.rpc_url = name, chain_id, setup, rpc_url
        self.app_dir = render_template(root / name, "token", name, chain_id)
        manifest = self.app_dir / "rollup.toml"
        text = manifest.read_text()
        assert "sequencing_window = 10" in text
        manifest.write_text(text.replace("sequencing_window = 10", f"sequencing_window = {WINDOW}"))
        args = [
            "--da",
            "ethereum",
            "--l1-rpc",
            rpc_url,
            "--inbox",
            "0x" + setup.inbox.hex(),
            "--inbox-from-block",
            str(setup.from_block),
            "--portal",
            "0x" + setup.portal.hex(),
            "--portal-from-block",
            str(setup.from_block),
            "--l1-poll",
            "0.1",
            "--da-max-delay",
            "0.2",
            "--da-retry-max",
            "1",
            *extra,
        ]
        key_file = {"ROLLUP_BATCHER_KEY_FILE": str(setup.batchers[name])}
        self.process = NodeProcess(
            self.app_dir, root / f"{name}-data", extra_args=args, env=key_file
        )
        self.nonce = 0

    def rpc(self, method: str, *params: Any) -> Any:
        return rpc(self.process.url, method, *params)

    def block_number(self, tag: str = "latest") -> int:
        return int(self.rpc("eth_getBlockByNumber", tag, False)["number"], 16)

    def transfer(self) -> None:
        """A transfer from dev account 2, waited for (so a block is built, and posted)."""
        signed = Account.from_key(ALICE_KEY).sign_transaction(
            {
                "chainId": self.chain_id,
                "nonce": self.nonce,
                "to": Web3.to_checksum_address(os.urandom(20)),
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 2 * 10**9,
                "maxPriorityFeePerGas": 0,
            }
        )
        tx_hash = self.rpc("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
        self.nonce += 1
        wait_for(lambda: self.rpc("eth_getTransactionReceipt", tx_hash), "a block")

    def posted(self) -> bool:
        return self.block_number("safe") == self.block_number("latest")

    def verify(self) -> tuple[int, dict[str, Any]]:
        """`python -m services.verifier --once` with the Portal, as the devnet runs it."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.verifier",
                "--app-dir",
                str(self.app_dir),
                "--l1-rpc",
                self.rpc_url,
                "--inbox",
                "0x" + self.setup.inbox.hex(),
                "--portal",
                "0x" + self.setup.portal.hex(),
                "--from-l1-block",
                str(self.setup.from_block),
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


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[AnvilProcess]:
    with AnvilProcess(log_dir=tmp_path / "logs") as process:
        yield process


def mine(anvil: AnvilProcess, blocks: int) -> None:
    rpc(anvil.rpc_url, "anvil_mine", hex(blocks))


def test_a_chain_that_ignores_deposits_is_reported_at_the_window(
    anvil: AnvilProcess, tmp_path: Path
) -> None:
    specs = [
        BatcherSpec(name, chain, tmp_path / f"{name}.key")
        for name, chain in (("honest", HONEST), ("censor", CENSOR))
    ]
    setup = prepare_l1(anvil.rpc_url, specs, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    honest = Chain(tmp_path, "honest", HONEST, setup, anvil.rpc_url)
    censor = Chain(tmp_path, "censor", CENSOR, setup, anvil.rpc_url, "--fault-ignore-deposits")
    portal = Portal(L1Client(anvil.rpc_url, ALICE_KEY), setup.portal)
    honest.process.start()
    censor.process.start()
    try:
        for chain in (honest, censor):  # a block each before the deposits, posted
            chain.transfer()
            wait_for(chain.posted, f"{chain.name}'s first batch")
        sent: dict[str, Deposit] = {}
        for chain in (honest, censor):
            to = os.urandom(20)
            sent[chain.name] = portal.deposit_eth(chain.chain_id, to, 10**18).deposit
        mine(anvil, 2)  # confirmed: the honest node includes its deposit in a block of its own
        wait_for(
            lambda: (
                honest.rpc("eth_getTransactionByHash", "0x" + sent["honest"].hash.hex()) is not None
            ),
            "the honest node to include its deposit",
        )
        wait_for(honest.posted, "the honest batch")

        # the window closes: a block of each chain, committed past D + W
        deposit = sent["censor"]
        due = deposit.l1_block + WINDOW
        head = int(Web3(Web3.HTTPProvider(anvil.rpc_url)).eth.block_number)
        mine(anvil, max(0, due - head))
        for chain in (honest, censor):
            chain.transfer()
            wait_for(chain.posted, f"{chain.name}'s batch past the window")
        assert censor.rpc("eth_getTransactionByHash", "0x" + deposit.hash.hex()) is None
        honest_head, censor_head = honest.block_number(), censor.block_number()
    finally:
        honest.process.stop()
        censor.process.stop()

    code, status = honest.verify()
    assert code == 0 and status["message"] == f"in sync at block {honest_head}", status

    commitments = BatchInbox(L1Client(anvil.rpc_url), setup.inbox).commitments(CENSOR, 0)
    late = next(c for c in commitments if c.l1_block >= due)
    code, status = censor.verify()
    assert code == 1 and status["status"] == "diverged", status
    assert status["block"] == late.last_block <= censor_head
    name = f"deposit 0x{deposit.source_hash.hex()} (nonce 0, L1 block {deposit.l1_block})"
    assert status["message"].startswith(
        f"diverged at block {late.last_block}: {name} due at L1 block {due}"
    ), status
