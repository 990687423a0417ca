"""Tests of this app on a real node process, through web3.py: run them with `pytest` here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy import artifact, deploy
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from rollup.genesis import DEV_KEYS
from rollup.manifest import parse_manifest
from services.launch import NodeProcess

APP_DIR = Path(__file__).resolve().parent
ALICE, BOB = Account.from_key(DEV_KEYS[0]), Account.from_key(DEV_KEYS[1])


@pytest.fixture(scope="module")
def w3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web3]:
    with NodeProcess(APP_DIR, tmp_path_factory.mktemp("node")) as node:
        yield Web3(Web3.HTTPProvider(node.url))


def send(w3: Web3, account: Account, call: object) -> dict:
    tx = call.build_transaction(  # type: ignore[attr-defined]
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def test_genesis_token_transfers_and_logs(w3: Web3) -> None:
    address = parse_manifest((APP_DIR / "rollup.toml").read_text()).address
    token = w3.eth.contract(address=w3.to_checksum_address(address), abi=artifact().abi)
    assert token.functions.symbol().call() == "EXT"
    receipt = send(w3, ALICE, token.functions.transfer(BOB.address, 5 * 10**18))
    assert receipt["status"] == 1
    assert token.functions.balanceOf(BOB.address).call() >= 5 * 10**18
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event["args"]["value"] == 5 * 10**18


def test_deploy_script_and_reverts(w3: Web3) -> None:
    token = deploy(w3, DEV_KEYS[1], "Second", "TWO", 1000)
    assert token.functions.totalSupply().call() == 1000
    with pytest.raises(ContractLogicError, match="transfer amount exceeds balance"):
        token.functions.transfer(ALICE.address, 1001).call({"from": BOB.address})
    with pytest.raises(ContractCustomError):
        token.functions.mint(ALICE.address, 1).call({"from": ALICE.address})
