"""ethers v6 (npm, pinned in package-lock.json) against an EVM app node: deploy, transfer,
events over HTTP and WebSocket, Error(string) and custom-error decoding."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rollup.genesis import DEV_KEYS
from services.apps import load_app
from services.launch import NodeProcess
from tests.conftest import render_template

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "ethers_flow.mjs"


def test_ethers_drives_an_evm_app(tmp_path: Path) -> None:
    node_bin = shutil.which("node")
    if node_bin is None or not (REPO / "node_modules" / "ethers").is_dir():
        pytest.fail("node and npm's ethers are installed by scripts/setup.sh")
    app_dir = render_template(tmp_path / "app", "evm", "eth6", 4646)
    manifest = load_app(app_dir).manifest
    with NodeProcess(app_dir, tmp_path / "data") as node:
        done = subprocess.run(
            [
                node_bin,
                str(SCRIPT),
                node.url,
                node.url.replace("http", "ws"),
                DEV_KEYS[5],
                str(app_dir / manifest.artifact),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["chainId"] == "4646"
    assert seen["symbol"] == "ETH6" and seen["status"] == 1
    assert (seen["event"], seen["eventValue"], seen["balance"]) == ("Transfer", "7", "7")
    assert seen["logsByQuery"] == 1
    assert seen["revertCode"] == "CALL_EXCEPTION"
    assert seen["revertReason"] == "ERC20: transfer amount exceeds balance"
    assert seen["customError"] == "NotOwner"
    assert seen["wsEventValue"] == "11" and seen["wsBlock"] is True
