"""debug_traceTransaction on an EVM app, compared frame by frame with Anvil's own tracer on
the same transaction (same contracts, same sender, same nonce)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from bridge.solc import compile_files
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess
from services.launch import NodeProcess
from tests.conftest import render_template
from tests.support import rpc, rpc_error

pytestmark = pytest.mark.e2e

CHAIN_ID = 4343
SENDER = Account.from_key(DEV_KEYS[3])  # fresh on both chains
CONTRACTS = Path(__file__).resolve().parent / "contracts"


def run_scenario(url: str, tracer: Any) -> tuple[str, dict[str, Any]]:
    """Deploy Tracer and call `everything`; return the call's hash and its receipt."""
    w3 = Web3(Web3.HTTPProvider(url))
    fees = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "chainId": CHAIN_ID}

    def send(tx: dict[str, Any]) -> Any:
        tx = {**tx, **fees, "nonce": w3.eth.get_transaction_count(SENDER.address), "gas": 3_000_000}
        tx_hash = w3.eth.send_raw_transaction(SENDER.sign_transaction(tx).raw_transaction)
        return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    deployed = send({"data": "0x" + tracer.bytecode.hex(), "value": 0})
    contract = w3.eth.contract(address=deployed["contractAddress"], abi=tracer.abi)
    call = contract.functions.everything(7).build_transaction(
        {"from": SENDER.address, "value": 5, "gas": 3_000_000, **fees, "nonce": 0}
    )
    receipt = send({"to": call["to"], "data": call["data"], "value": 5})
    assert receipt["status"] == 1
    return "0x" + receipt["transactionHash"].hex().removeprefix("0x"), dict(receipt)


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tracer = compile_files([CONTRACTS / "Tracing.sol"])["Tracer"]
    app_dir = render_template(tmp_path_factory.mktemp("app") / "app", "evm", "trace", CHAIN_ID)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as node, AnvilProcess() as anvil:
        anvil.stop()
        anvil.start(chain_id=CHAIN_ID, hardfork="cancun", extra_args=["--steps-tracing"])
        out: dict[str, Any] = {}
        for name, url in (("ours", node.url), ("anvil", anvil.rpc_url)):
            tx_hash, receipt = run_scenario(url, tracer)
            out[name] = {
                "receipt": receipt,
                "calls": rpc(url, "debug_traceTransaction", tx_hash, {"tracer": "callTracer"}),
                "steps": rpc(url, "debug_traceTransaction", tx_hash, {}),
                "top": rpc(
                    url,
                    "debug_traceTransaction",
                    tx_hash,
                    {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}},
                ),
            }
        yield out


def _shape(frame: dict[str, Any], top: bool = True) -> dict[str, Any]:
    """What we report of a frame: everything geth reports but a nested frame's input and
    output, which revm's tracer does not expose (vm/evm/trace.py)."""
    keys = ("type", "from", "to", "value", "gas", "gasUsed", "error")
    shape = {
        k: (frame.get(k) or "").lower() if isinstance(frame.get(k), str) else frame.get(k)
        for k in keys
    }
    shape["value"] = int(frame.get("value") or "0x0", 16) if shape["type"] != "STATICCALL" else 0
    if shape["error"]:
        shape["error"] = "reverted" if "revert" in shape["error"] else "failed"
    if top:
        shape["input"], shape["output"] = frame["input"].lower(), frame.get("output", "").lower()
    shape["calls"] = [_shape(c, top=False) for c in frame.get("calls", [])]
    return shape


def test_call_tree_matches_anvil(traces: dict[str, Any]) -> None:
    ours, anvil = traces["ours"]["calls"], traces["anvil"]["calls"]
    assert [c["type"] for c in ours["calls"]] == [
        "CALL",
        "STATICCALL",
        "STATICCALL",
        "CREATE2",
        "STATICCALL",
    ]
    mine, theirs = _shape(ours), _shape(anvil)
    for a, b in zip(mine.pop("calls"), theirs.pop("calls"), strict=True):
        assert a == b
    assert mine == theirs
    assert "calls" not in traces["ours"]["top"]


def test_struct_logs_match_anvil(traces: dict[str, Any]) -> None:
    ours, anvil = traces["ours"]["steps"], traces["anvil"]["steps"]
    assert ours["gas"] == anvil["gas"] == traces["ours"]["receipt"]["gasUsed"]
    assert ours["failed"] is anvil["failed"] is False
    assert ours["returnValue"].removeprefix("0x") == anvil["returnValue"].removeprefix("0x")
    assert len(ours["structLogs"]) == len(anvil["structLogs"]) > 100
    for mine, theirs in zip(ours["structLogs"], anvil["structLogs"], strict=True):
        for key in ("pc", "op", "gas", "gasCost", "depth", "stack"):
            assert mine[key] == theirs[key], (key, mine, theirs)


def test_tracing_a_native_app_or_an_unknown_tx_is_a_clear_error(
    traces: dict[str, Any], tmp_path: Path
) -> None:
    app_dir = render_template(tmp_path / "tok", "token", "tok", 4344)
    with NodeProcess(app_dir, tmp_path / "data") as node:
        error = rpc_error(node.url, "debug_traceTransaction", "0x" + "00" * 32)
        assert error.reason == "debug_traceTransaction traces EVM apps only"
