"""viem (npm, pinned in package-lock.json) drives a native token app and an EVM app (the
`evm` template's Solidity ERC-20) as a dapp does:
chain id, balances, sendTransaction + waitForTransactionReceipt, readContract/writeContract on
the native ERC-20, estimateGas, getLogs, watchBlocks/watchContractEvent over WebSocket,
simulateContract decoding the app's error (the native token's custom error, the Solidity
token's Error(string)), and a wallet client on the node's unlocked dev account."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rollup.genesis import DEV_KEYS
from services.apps import load_app
from services.cli import main as rollup
from services.launch import NodeProcess
from tests.conftest import render_template
from vm.evm.artifact import Artifact

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "viem_flow.mjs"


# template -> (chain id, the error simulateContract decodes for an overdrawn transfer)
APPS = {"token": (4848, "ERC20InsufficientBalance"), "evm": (4849, "Error")}


def write_abi(app_dir: Path, template: str, dest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if template == "evm":
        artifact = load_app(app_dir).code  # compiled with solc on first load
        assert isinstance(artifact, Artifact)
        dest.write_text(json.dumps(artifact.abi))
        return
    capsys.readouterr()
    assert rollup(["abi", str(app_dir)]) == 0
    dest.write_text(capsys.readouterr().out)


@pytest.mark.parametrize("template", sorted(APPS))
def test_viem_drives_an_app(
    template: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node_bin = shutil.which("node")
    if node_bin is None or not (REPO / "node_modules" / "viem").is_dir():
        pytest.fail("node and npm's viem are installed by scripts/setup.sh")
    chain_id, expected_error = APPS[template]
    app_dir = render_template(tmp_path / "app", template, "viem", chain_id)
    abi_path = tmp_path / "abi.json"
    write_abi(app_dir, template, abi_path, capsys)
    token = load_app(app_dir).manifest.address
    with NodeProcess(app_dir, tmp_path / "data") as node:
        done = subprocess.run(
            [
                node_bin,
                str(SCRIPT),
                node.url,
                node.url.replace("http", "ws"),
                DEV_KEYS[0],  # the token's owner: it holds the supply
                str(abi_path),
                "0x" + token.hex(),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["chainId"] == chain_id and seen["balance"] is True
    assert seen["gas"] == 21_000 and seen["status"] == "success"
    assert int(seen["otherBalance"]) >= 3 and seen["symbol"]
    assert seen["tokenBalance"] == "5" and seen["logs"] == 1
    assert seen["customError"] == expected_error
    assert seen["nodeSignedStatus"] == "success"
    assert seen["wsBlocks"] is True and seen["wsEvents"] >= 1
