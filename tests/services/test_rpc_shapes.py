"""Answers in execution-apis' shapes where clients checked them and found us off: transaction
objects carry `blockTimestamp`, filter ids are minimal quantities, eth_coinbase names the fee
vault the blocks' `miner` names; and geth's txpool_ namespace."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from eth_account import Account

from rollup.genesis import DEV_KEYS
from sequencer.node import Sequencer
from services.rpc import txpool
from tests.services.test_wallet import ALICE, BOB, open_app, rpc

MINIMAL_QUANTITY = re.compile(r"^0x(0|[1-9a-f][0-9a-f]*)$")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    sequencer = open_app(tmp_path_factory.mktemp("shapes"))
    try:
        yield sequencer
    finally:
        sequencer.close()


def test_transactions_carry_their_block_timestamp(node: Sequencer) -> None:
    tx_hash = rpc(node, "eth_sendTransaction", {"from": ALICE, "to": BOB, "value": "0x1"})
    tx = rpc(node, "eth_getTransactionByHash", tx_hash)
    block = rpc(node, "eth_getBlockByHash", tx["blockHash"], True)
    assert tx["blockTimestamp"] == block["timestamp"]
    assert block["transactions"][0]["blockTimestamp"] == block["timestamp"]
    pending = rpc(node, "eth_signTransaction", {"from": ALICE, "to": BOB})["tx"]
    assert pending["blockTimestamp"] is None


def test_filter_ids_are_minimal_quantities(node: Sequencer) -> None:
    ids = [rpc(node, "eth_newBlockFilter") for _ in range(64)]
    assert all(MINIMAL_QUANTITY.match(i) for i in ids), ids
    assert len(set(ids)) == 64


def test_coinbase_is_the_blocks_miner(node: Sequencer) -> None:
    latest = rpc(node, "eth_getBlockByNumber", "latest", False)
    assert rpc(node, "eth_coinbase") == latest["miner"] == "0x" + node.coinbase.hex()


def test_txpool_lists_what_waits_in_the_pool(
    node: Sequencer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Account.from_key(DEV_KEYS[7])
    gap = int(rpc(node, "eth_getTransactionCount", sender.address, "pending"), 16) + 3
    to = Account.from_key(DEV_KEYS[8]).address
    tx = {"chainId": 901001, "nonce": gap, "to": to, "value": 9, "gas": 21_000}
    raw = sender.sign_transaction({**tx, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 0})
    tx_hash = rpc(node, "eth_sendRawTransaction", "0x" + bytes(raw.raw_transaction).hex())
    assert int(rpc(node, "txpool_status")["queued"], 16) >= 1
    address = sender.address.lower()
    queued = rpc(node, "txpool_content")["queued"][address][str(gap)]
    assert queued["hash"] == tx_hash and queued["blockHash"] is None
    assert rpc(node, "txpool_contentFrom", sender.address)["queued"][str(gap)]["hash"] == tx_hash
    line = rpc(node, "txpool_inspect")["queued"][address][str(gap)]
    assert line == f"{to.lower()}: 9 wei + 21000 gas × 1000000000 wei"
    monkeypatch.setattr(txpool, "MAX_LISTED", 0)
    refused = rpc(node, "txpool_content")
    assert refused["code"] == -32005 and "txpool_contentFrom" in refused["message"]
