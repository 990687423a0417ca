"""Foundry's `cast` (npm @foundry-rs/cast, pinned in package-lock.json) against a native token
app and an EVM app, as a developer's scripts use it: chain-id, balance, nonce, send (EIP-1559,
legacy, and from the node's unlocked dev account), send --create, call, estimate, receipt,
logs, storage, block, mktx + publish, rpc. (forge needs a native solc download, so it cannot
run here.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from services.apps import load_app
from services.launch import NodeProcess
from tests.conftest import render_template

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CAST = REPO / "node_modules" / "@foundry-rs" / "cast-linux-amd64" / "bin" / "cast"
OWNER, OWNER_KEY = "0x" + DEV_ADDRESSES[0].hex(), DEV_KEYS[0]  # the token's supply is its
OTHER = "0x00000000000000000000000000000000000000d0"
# init code of a contract whose code answers every call with 42 (PUSH 42, MSTORE, RETURN)
ANSWER_42 = "0x600a600c600039600a6000f3602a60005260206000f3"


def cast(*args: str) -> str:
    done = subprocess.run([str(CAST), *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, f"cast {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture(scope="module", params=["token", "evm"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, NodeProcess]]:
    if not CAST.is_file():
        pytest.fail("npm's @foundry-rs/cast is installed by scripts/setup.sh")
    template: str = request.param
    chain_id = 4949 if template == "token" else 5050
    app_dir = render_template(tmp_path_factory.mktemp(template) / "app", template, "c", chain_id)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as node:
        yield template, "0x" + load_app(app_dir).manifest.address.hex(), node


def test_cast_reads_the_chain(app: tuple[str, str, NodeProcess]) -> None:
    template, token, node = app
    rpc = ("--rpc-url", node.url)
    assert cast("chain-id", *rpc) == ("4949" if template == "token" else "5050")
    assert int(cast("balance", OWNER, *rpc)) > 0
    assert int(cast("nonce", OWNER, *rpc)) >= 0
    assert cast("rpc", "eth_chainId", *rpc).strip('"') == hex(int(cast("chain-id", *rpc)))
    assert int(cast("block", "latest", "--field", "number", *rpc)) >= 0
    assert int(cast("estimate", OTHER, "--value", "1", "--from", OWNER, *rpc)) == 21_000
    if template == "token":
        assert cast("call", token, "symbol()(string)", *rpc) == '"EXT"'
        slot = cast("storage", token, "0", *rpc)
        assert slot.startswith("0x") and len(slot) == 66


def test_cast_sends_and_reads_receipts_and_logs(app: tuple[str, str, NodeProcess]) -> None:
    template, token, node = app
    rpc = ("--rpc-url", node.url)
    key = ("--private-key", OWNER_KEY)
    before = int(cast("balance", OTHER, *rpc))
    sent = json.loads(cast("send", OTHER, "--value", "3", *key, "--json", *rpc))
    assert sent["status"] == "0x1" and sent["type"] == "0x2"
    legacy = json.loads(cast("send", OTHER, "--value", "4", "--legacy", *key, "--json", *rpc))
    assert legacy["status"] == "0x1" and legacy["type"] == "0x0"
    assert cast("receipt", legacy["transactionHash"], "status", *rpc) in (
        "1",
        "true",
        "1 (success)",
    )
    unlocked = json.loads(
        cast("send", OTHER, "--value", "5", "--unlocked", "--from", OWNER, "--json", *rpc)
    )
    assert unlocked["status"] == "0x1"
    assert int(cast("balance", OTHER, *rpc)) == before + 12

    nonce = cast("nonce", OWNER, *rpc)
    raw = cast("mktx", OTHER, "--value", "6", "--nonce", nonce, *key, *rpc)
    published = json.loads(cast("publish", raw, "--json", *rpc) or "null")
    assert published is not None
    assert int(cast("balance", OTHER, *rpc)) == before + 18

    if template == "token":
        moved = json.loads(
            cast("send", token, "transfer(address,uint256)", OTHER, "7", *key, "--json", *rpc)
        )
        assert moved["status"] == "0x1"
        assert cast("call", token, "balanceOf(address)(uint256)", OTHER, *rpc) == "7"
        logs = json.loads(
            cast(
                "logs",
                "--address",
                token,
                "Transfer(address,address,uint256)",
                "--from-block",
                "0",
                "--json",
                *rpc,
            )
        )
        assert any(log["transactionHash"] == moved["transactionHash"] for log in logs)
    else:
        created = json.loads(cast("send", *key, "--json", *rpc, "--create", ANSWER_42))
        assert created["status"] == "0x1" and created["contractAddress"]
        answer = cast("call", created["contractAddress"], "f()(uint256)", *rpc)
        assert answer == "42"
