"""Dev accounts unlocked on a devnet, driven by real clients against a real node process:
web3.py (`w3.eth.accounts`, `send_transaction` without a local key, `sign`,
`sign_typed_data`, `sign_transaction`) and ethers v6 (`provider.getSigner()`), as a test
suite written against Anvil uses them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from web3 import Web3

from rollup.genesis import DEV_ADDRESSES
from services.launch import NodeProcess
from tests.conftest import render_template
from tests.services.test_wallet import MAIL

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "ethers_dev_accounts.mjs"
ALICE = Web3.to_checksum_address("0x" + DEV_ADDRESSES[0].hex())
BOB = Web3.to_checksum_address("0x" + "b0" * 20)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    app_dir = render_template(tmp_path_factory.mktemp("app") / "app", "token", "dev", 4747)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as process:
        yield process


@pytest.fixture(scope="module")
def w3(node: NodeProcess) -> Web3:
    return Web3(Web3.HTTPProvider(node.url))


def test_web3_sends_from_an_unlocked_account(w3: Web3) -> None:
    assert w3.eth.accounts[0] == ALICE and len(w3.eth.accounts) == 10
    before = w3.eth.get_balance(BOB)
    tx_hash = w3.eth.send_transaction({"from": ALICE, "to": BOB, "value": 5})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1 and receipt["from"] == ALICE
    assert w3.eth.get_balance(BOB) == before + 5


def test_web3_signs_messages_typed_data_and_transactions(w3: Web3) -> None:
    signature = w3.eth.sign(ALICE, text="hello")
    assert Account.recover_message(encode_defunct(text="hello"), signature=signature) == ALICE
    typed = w3.eth.sign_typed_data(ALICE, MAIL)
    assert Account.recover_message(encode_typed_data(full_message=MAIL), signature=typed) == ALICE
    signed = w3.eth.sign_transaction({"from": ALICE, "to": BOB, "value": 1, "gas": 21_000})
    assert Account.recover_transaction(signed.raw) == ALICE
    assert signed.tx["to"] == BOB and signed.tx["value"] == 1


def test_ethers_uses_the_node_signer(node: NodeProcess) -> None:
    node_bin = shutil.which("node")
    if node_bin is None or not (REPO / "node_modules" / "ethers").is_dir():
        pytest.fail("node and npm's ethers are installed by scripts/setup.sh")
    done = subprocess.run(
        [node_bin, str(SCRIPT), node.url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["accounts"] == 10 and seen["signer"] == ALICE
    assert (seen["status"], seen["from"]) == (1, ALICE)
    assert int(seen["balance"]) >= 7
    assert seen["messageSigner"] == ALICE and seen["typedSigner"] == ALICE
