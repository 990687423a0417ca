"""An EVM app and a native app call each other over the bus on a real devnet: the examples
themselves. examples/erc20 (Solidity) deposits into examples/orderbook (Python) with `sendTo`,
the orderbook's result runs the token's `onSent` callback, the orderbook pays back with a
`transfer` on the token (its `withdraw_to_token`), and a send the other side refuses is
refunded by the callback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from rollup.genesis import DEV_KEYS
from rollup.messages import remote_address
from services.apps import load_app
from tests.e2e.devnet import REPO, detached_devnet
from tests.support import wait_for

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"
DEADLINE = 30.0
ALICE = Account.from_key(DEV_KEYS[0])  # holds the erc20 supply
BOOK_ABI = [
    {
        "type": "function",
        "name": "balance_of",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}] * 4,
    },
    {
        "type": "function",
        "name": "withdraw_to_token",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bytes32"}],
    },
]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("examples")
    for name in ("token", "erc20", "orderbook"):
        shutil.copytree(EXAMPLES / name, root / name, ignore=shutil.ignore_patterns("build"))
    with detached_devnet(
        root / "data", "--da", "none", *(str(root / n) for n in ("token", "erc20", "orderbook"))
    ) as net:
        out: dict[str, Any] = {}
        for app in net.state["apps"]:
            w3 = Web3(Web3.HTTPProvider(app["rpc_url"]))
            out[app["name"]] = {
                "w3": w3,
                "address": Web3.to_checksum_address(app["address"]),
                "chain": app["chain_id"],
            }
        erc20 = out["erc20"]
        artifact = load_app(root / "erc20").code
        erc20["contract"] = erc20["w3"].eth.contract(address=erc20["address"], abi=artifact.abi)  # type: ignore[union-attr]
        book = out["orderbook"]
        book["contract"] = book["w3"].eth.contract(address=book["address"], abi=BOOK_ABI)
        yield out


def send(app: dict[str, Any], fn: Any, account: Any = ALICE) -> Any:
    w3 = app["w3"]
    tx = fn.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    return receipt


def settled(erc20: dict[str, Any], msg_id: bytes) -> bool | None:
    """The `delivered` flag of the token's SendSettled event for `msg_id`, once it ran."""
    events = (
        erc20["contract"]
        .events.SendSettled()
        .get_logs(from_block=0, argument_filters={"id": msg_id})
    )
    return None if not events else bool(events[0]["args"]["delivered"])


def test_evm_token_deposits_into_native_orderbook_and_back(apps: dict[str, Any]) -> None:
    erc20, book = apps["erc20"], apps["orderbook"]
    token = erc20["contract"]
    holder = Web3.to_checksum_address(
        remote_address(book["chain"], bytes.fromhex(book["address"][2:]))
    )
    receipt = send(
        erc20, token.functions.sendTo(book["chain"], book["address"], ALICE.address, 500)
    )
    (sent,) = token.events.SentToApp().process_receipt(receipt, errors=DISCARD)
    msg_id = sent["args"]["id"]
    assert token.functions.balanceOf(holder).call() >= 500  # held for the orderbook

    balances = book["contract"].functions.balance_of
    assert wait_for(lambda: balances(ALICE.address).call()[0] >= 500, "the deposit", DEADLINE)
    assert wait_for(lambda: settled(erc20, msg_id), "the EVM callback", DEADLINE) is True
    assert token.functions.pending(msg_id).call()[2] == 0  # cleared exactly once

    before = token.functions.balanceOf(ALICE.address).call()
    send(book, book["contract"].functions.withdraw_to_token(200))  # native -> EVM transfer
    assert wait_for(
        lambda: token.functions.balanceOf(ALICE.address).call() == before + 200,
        "the transfer back",
        DEADLINE,
    )
    assert wait_for(lambda: balances(ALICE.address).call()[0] == 300, "the debit", DEADLINE)


def test_a_refused_send_is_refunded_by_the_callback(apps: dict[str, Any]) -> None:
    erc20, native_token = apps["erc20"], apps["token"]
    token = erc20["contract"]
    before = token.functions.balanceOf(ALICE.address).call()
    # the native token app has no receive_tokens: the call fails there, and the result says so
    receipt = send(
        erc20,
        token.functions.sendTo(native_token["chain"], native_token["address"], ALICE.address, 70),
    )
    (sent,) = token.events.SentToApp().process_receipt(receipt, errors=DISCARD)
    (debit,) = [
        e
        for e in token.events.Transfer().process_receipt(receipt, errors=DISCARD)
        if e["args"]["from"] == ALICE.address
    ]
    assert debit["args"]["value"] == 70  # taken at send time (the refund may be back already)
    assert wait_for(lambda: settled(erc20, sent["args"]["id"]) is False, "the refund", DEADLINE)
    assert token.functions.balanceOf(ALICE.address).call() == before
