"""`rollup up` with the template pair: the token app deposits into the orderbook app over the
bus (embedded, and a NATS server the supervisor runs), confirmed by the token's callback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from rollup.messages import remote_address
from tests.conftest import BOOK_CHAIN, TOKEN_CHAIN, render_pair
from tests.e2e.devnet import detached_devnet
from tests.support import rpc, wait_for
from vm.native.abi import decode_args, encode_values, selector

pytestmark = pytest.mark.e2e

DEADLINE = 30.0


def call(
    url: str, to: bytes, signature: str, types: list[str], args: list[Any], returns: list[str]
) -> Any:
    data = selector(signature) + encode_values(types, args)
    out = rpc(url, "eth_call", {"to": "0x" + to.hex(), "data": "0x" + data.hex()}, "latest")
    return decode_args(returns, bytes.fromhex(out[2:]))


@pytest.fixture(params=["embedded", "nats"])
def devnet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    token, book = render_pair(tmp_path)
    with detached_devnet(
        tmp_path / "data", "--da", "none", "--bus", request.param, str(token), str(book)
    ) as devnet:
        assert "Bus:" in devnet.up.stdout
        yield devnet.state


def test_token_deposits_into_the_orderbook_over_the_bus(devnet: dict[str, Any]) -> None:
    apps = {a["name"]: a for a in devnet["apps"]}
    token_url, book_url = apps["token"]["rpc_url"], apps["book"]["rpc_url"]
    token_addr = bytes.fromhex(apps["token"]["address"][2:])
    book_addr = bytes.fromhex(apps["book"]["address"][2:])
    assert devnet["bus"]["kind"] in ("embedded", "nats")
    alice = Account.from_key(DEV_KEYS[0])
    owner = bytes.fromhex(alice.address[2:])
    data = selector("send_to(uint64,address,address,uint256)") + encode_values(
        ["uint64", "address", "address", "uint256"], [BOOK_CHAIN, book_addr, owner, 5 * 10**18]
    )
    tx = alice.sign_transaction(
        {
            "type": 2,
            "chainId": TOKEN_CHAIN,
            "nonce": 0,
            "to": apps["token"]["address"],
            "value": 0,
            "gas": 1_000_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 0,
            "data": data,
        }
    )
    tx_hash = rpc(token_url, "eth_sendRawTransaction", "0x" + tx.raw_transaction.hex())
    assert rpc(token_url, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"

    def deposited() -> Any:
        balance = call(
            book_url, book_addr, "balance_of(address)", ["address"], [owner], ["uint256"] * 4
        )
        return balance[0]

    assert wait_for(deposited, "the deposit on the orderbook", DEADLINE) == 5 * 10**18
    holder = remote_address(BOOK_CHAIN, book_addr)
    assert call(
        token_url, token_addr, "balanceOf(address)", ["address"], [holder], ["uint256"]
    ) == (5 * 10**18,)

    # the orderbook's result ran the token's callback: find it in the token chain's blocks
    settled = keccak(b"SendSettled(bytes32,bool)")

    def results() -> list[dict[str, Any]]:
        head = int(rpc(token_url, "eth_blockNumber"), 16)
        blocks = [rpc(token_url, "rollup_getBlockMessages", hex(n)) for n in range(1, head + 1)]
        return [m for block in blocks for m in block["inbound"] if m["kind"] == "result"]

    (result,) = wait_for(results, "the orderbook's result on the token chain", DEADLINE)
    assert result["success"] is True and result["srcChain"] == hex(BOOK_CHAIN)
    (log,) = result["receipt"]["logs"]
    assert log["topics"][0] == "0x" + settled.hex()
