"""`rollup up` with the template pair: the token app deposits into the orderbook app over the
bus (embedded, and a NATS server the supervisor runs), confirmed by the token's callback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from rollup.messages import remote_address
from vm.native.abi import decode_args, encode_values, selector

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "rollup" / "templates"
TOKEN_CHAIN, BOOK_CHAIN = 901001, 902002
DEADLINE = 30.0


def rollup(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ETH_HASH_BACKEND=os.environ.get("ETH_HASH_BACKEND", "pysha3"))
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def render(dest: Path, template: str, name: str, chain_id: int, init: str = "") -> Path:
    dest.mkdir(parents=True)
    (dest / "app.py").write_text((TEMPLATES / template / "app.py").read_text())
    text = (TEMPLATES / template / "rollup.toml.tmpl").read_text()
    text = text.replace("{{name}}", name).replace("{{chain_id}}", str(chain_id))
    (dest / "rollup.toml").write_text(text.replace("token_chain = 0", init) if init else text)
    return dest


def rpc(url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    reply = httpx.post(url, json=body, timeout=10.0, trust_env=False).json()
    assert "result" in reply, reply
    return reply["result"]


def call(url: str, to: bytes, signature: str, types: list[str], args: list[Any],
         returns: list[str]) -> Any:  # fmt: skip
    data = selector(signature) + encode_values(types, args)
    out = rpc(url, "eth_call", {"to": "0x" + to.hex(), "data": "0x" + data.hex()}, "latest")
    return decode_args(returns, bytes.fromhex(out[2:]))


@pytest.fixture(params=["embedded", "nats"])
def devnet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    token = render(tmp_path / "token", "token", "token", TOKEN_CHAIN)
    book = render(tmp_path / "book", "orderbook", "book", BOOK_CHAIN,
                  f"token_chain = {TOKEN_CHAIN}")  # fmt: skip
    data_dir = tmp_path / "data"
    try:
        up = rollup("up", "--detach", "--da", "none", "--bus", request.param, "--data-dir",
                    str(data_dir), str(token), str(book))  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Bus:" in up.stdout
        yield json.loads((data_dir / "devnet.json").read_text())
    finally:
        down = rollup("down", "--data-dir", str(data_dir))
        assert down.returncode == 0, down.stdout + down.stderr


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
    tx = alice.sign_transaction({
        "type": 2, "chainId": TOKEN_CHAIN, "nonce": 0, "to": apps["token"]["address"],
        "value": 0, "gas": 1_000_000, "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 0,
        "data": data,
    })  # fmt: skip
    tx_hash = rpc(token_url, "eth_sendRawTransaction", "0x" + tx.raw_transaction.hex())
    assert rpc(token_url, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"

    deadline = time.monotonic() + DEADLINE
    balance = (0,)
    while time.monotonic() < deadline:
        balance = call(book_url, book_addr, "balance_of(address)", ["address"], [owner],
                       ["uint256"] * 4)  # fmt: skip
        if balance[0]:
            break
        time.sleep(0.05)
    assert balance[0] == 5 * 10**18
    holder = remote_address(BOOK_CHAIN, book_addr)
    assert call(token_url, token_addr, "balanceOf(address)", ["address"], [holder],
                ["uint256"]) == (5 * 10**18,)  # fmt: skip

    # the orderbook's result ran the token's callback: find it in the token chain's blocks
    settled = keccak(b"SendSettled(bytes32,bool)")
    deadline = time.monotonic() + DEADLINE
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        head = int(rpc(token_url, "eth_blockNumber"), 16)
        for number in range(1, head + 1):
            block = rpc(token_url, "rollup_getBlockMessages", hex(number))
            found += [m for m in block["inbound"] if m["kind"] == "result"]
        time.sleep(0.05)
    (result,) = found
    assert result["success"] is True and result["srcChain"] == hex(BOOK_CHAIN)
    (log,) = result["receipt"]["logs"]
    assert log["topics"][0] == "0x" + settled.hex()
