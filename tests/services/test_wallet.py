"""Dev accounts, unlocked on devnets (services/rpc/wallet.py), through the real server in
process: what is signed recovers to the dev account, transactions are filled in as Anvil
fills them, and a chain without dev accounts, an unknown account or a foreign web page gets
a clear refusal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from rollup.genesis import DEV_ADDRESSES
from rollup.transactions import decode_transaction
from sequencer.node import Sequencer
from services.node import open_node
from services.producer import BlockProducer
from services.rpc.server import RpcServer
from services.scaffold import scaffold
from vm.state import get_account

CHAIN_ID = 901001
ALICE = "0x" + DEV_ADDRESSES[0].hex()
BOB = "0x" + "b0" * 20
RUN_TIMEOUT = 20.0

MAIL: dict[str, Any] = {  # EIP-712's own example
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}


def open_app(root: Path, dev_accounts: bool = True) -> Sequencer:
    app_dir = scaffold(root / "app", "token", "tok", CHAIN_ID)
    if not dev_accounts:
        manifest = app_dir / "rollup.toml"
        text = manifest.read_text().replace("dev_accounts = true", "dev_accounts = false")
        owner = 'owner = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"'
        manifest.write_text(text.replace(owner, f'owner = "{BOB}"'))
    return open_node(app_dir, root / "data")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    sequencer = open_app(tmp_path_factory.mktemp("dev"))
    try:
        yield sequencer
    finally:
        sequencer.close()


def rpc(node: Sequencer, method: str, *params: Any, origin: str | None = None) -> Any:
    """One request through the server with a block producer running; its `result`, or its
    `error` object."""
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

    async def run() -> bytes | None:
        producer = BlockProducer(node, node.manifest.block_interval_ms)
        producer.start()
        try:
            server = RpcServer(node, producer)
            return await asyncio.wait_for(server.handle_body(body, origin=origin), RUN_TIMEOUT)
        finally:
            await producer.stop()

    answer = orjson.loads(asyncio.run(run()) or b"null")
    return answer.get("error") or answer["result"]


def test_eth_accounts_are_the_dev_accounts_checksummed(node: Sequencer) -> None:
    accounts = rpc(node, "eth_accounts")
    assert [a.lower() for a in accounts] == ["0x" + a.hex() for a in DEV_ADDRESSES]
    assert accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # EIP-55


def test_eth_sign_and_personal_sign_recover_to_the_account(node: Sequencer) -> None:
    message = b"hello from the app chain"
    for signature in (
        rpc(node, "eth_sign", ALICE, "0x" + message.hex()),
        rpc(node, "personal_sign", "0x" + message.hex(), ALICE),
    ):
        recovered = Account.recover_message(encode_defunct(primitive=message), signature=signature)
        assert recovered.lower() == ALICE


def test_typed_data_signature_recovers_as_an_object_and_as_text(node: Sequencer) -> None:
    expected = encode_typed_data(full_message=MAIL)
    for typed in (MAIL, orjson.dumps(MAIL).decode()):
        for name in ("eth_signTypedData_v4", "eth_signTypedData"):
            signature = rpc(node, name, ALICE, typed)
            assert Account.recover_message(expected, signature=signature).lower() == ALICE
    broken = rpc(node, "eth_signTypedData_v4", ALICE, {"types": {}, "message": {}})
    assert broken["code"] == -32602 and "typed data" in broken["message"]


def test_sign_transaction_fills_in_nonce_gas_and_fees(node: Sequencer) -> None:
    answer = rpc(node, "eth_signTransaction", {"from": ALICE, "to": BOB, "value": "0x5"})
    tx = decode_transaction(bytes.fromhex(answer["raw"][2:]), CHAIN_ID)
    assert "0x" + tx.sender.hex() == ALICE
    assert tx.nonce == get_account(node.state, DEV_ADDRESSES[0])[0]
    assert (tx.gas, tx.value, tx.tx_type) == (21_000, 5, 2)
    assert tx.max_fee == node.manifest.base_fee and tx.max_priority_fee == 0
    assert answer["tx"]["hash"] == "0x" + tx.hash.hex() and answer["tx"]["blockHash"] is None
    legacy = rpc(node, "eth_signTransaction", {"from": ALICE, "to": BOB, "gasPrice": "0x77359400"})
    tx = decode_transaction(bytes.fromhex(legacy["raw"][2:]), CHAIN_ID)
    assert (tx.tx_type, tx.max_fee) == (0, 2 * 10**9)
    given = rpc(node, "eth_signTransaction", {"from": ALICE, "to": BOB, "nonce": "0x63"})
    assert decode_transaction(bytes.fromhex(given["raw"][2:]), CHAIN_ID).nonce == 99


def test_send_transaction_is_filled_signed_and_mined(node: Sequencer) -> None:
    before = get_account(node.state, bytes.fromhex(BOB[2:]))[1]
    tx_hash = rpc(node, "eth_sendTransaction", {"from": ALICE, "to": BOB, "value": "0x2a"})
    receipt = rpc(node, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["from"] == ALICE
    assert get_account(node.state, bytes.fromhex(BOB[2:]))[1] == before + 42
    second = rpc(node, "eth_sendTransaction", {"from": ALICE, "to": BOB, "value": "0x1"})
    assert int(rpc(node, "eth_getTransactionByHash", second)["nonce"], 16) == (
        int(rpc(node, "eth_getTransactionByHash", tx_hash)["nonce"], 16) + 1
    )


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_sign", [BOB, "0x00"]),
        ("personal_sign", ["0x00", BOB]),
        ("eth_signTypedData_v4", [BOB, MAIL]),
        ("eth_signTransaction", [{"from": BOB, "to": ALICE}]),
        ("eth_sendTransaction", [{"from": BOB, "to": ALICE}]),
    ],
)
def test_an_account_the_node_does_not_hold_is_refused(
    node: Sequencer, method: str, params: list[Any]
) -> None:
    error = rpc(node, method, *params)
    assert (error["code"], error["message"]) == (-32000, f"unknown account {BOB}")


@pytest.mark.parametrize(
    "method", ["eth_sign", "eth_signTypedData_v4", "eth_signTransaction", "eth_sendTransaction"]
)
def test_a_web_page_of_another_origin_never_signs(node: Sequencer, method: str) -> None:
    params: dict[str, list[Any]] = {
        "eth_sign": [ALICE, "0x00"],
        "eth_signTypedData_v4": [ALICE, MAIL],
        "eth_signTransaction": [{"from": ALICE, "to": BOB}],
        "eth_sendTransaction": [{"from": ALICE, "to": BOB, "value": "0x1"}],
    }
    nonce = get_account(node.state, DEV_ADDRESSES[0])[0]
    error = rpc(node, method, *params[method], origin="https://evil.example")
    assert isinstance(error, dict) and error["code"] != 0, error
    assert "origin" in error["message"].lower()
    assert get_account(node.state, DEV_ADDRESSES[0])[0] == nonce  # nothing was sent


def test_without_dev_accounts_nothing_is_unlocked(tmp_path: Path) -> None:
    node = open_app(tmp_path, dev_accounts=False)
    try:
        assert rpc(node, "eth_accounts") == []
        for method, params in [
            ("eth_sign", [ALICE, "0x00"]),
            ("personal_sign", ["0x00", ALICE]),
            ("eth_signTypedData_v4", [ALICE, MAIL]),
            ("eth_signTransaction", [{"from": ALICE, "to": BOB}]),
            ("eth_sendTransaction", [{"from": ALICE, "to": BOB}]),
        ]:
            error = rpc(node, method, *params)
            assert error["code"] == -32004, (method, error)
            assert error["message"] == "method not available: no unlocked accounts"
    finally:
        node.close()


def test_bad_transaction_objects_are_invalid_params(node: Sequencer) -> None:
    for bad in ({"to": BOB}, {"from": ALICE, "type": "0x5"}, {"from": ALICE, "nonce": "x"}):
        assert rpc(node, "eth_signTransaction", bad)["code"] == -32602, bad
