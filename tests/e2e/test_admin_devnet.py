"""The REST admin API against a real devnet (`rollup up --detach`): the apps it lists, 401/403
on every path of its OpenAPI, and pausing a sequencer: `eth_sendRawTransaction` refused with a
clear error, then, once resumed, the same signed transaction accepted and mined; a node
stopped, started and restarted through the supervisor. Also `rollup admin --data-dir` on its
own beside it."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from rollup.genesis import DEV_KEYS
from services.process import ManagedProcess, answers_http, free_port
from services.rpcclient import RpcCallError, RpcUnavailable
from services.scaffold import scaffold
from tests.e2e.devnet import Devnet, detached_devnet, read_state, rollup
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

CHAIN_ID = 901001
GWEI = 10**9
PUBLIC = {"/healthz", "/readyz"}


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    app_dir = scaffold(tmp_path_factory.mktemp("app"), "token", "tok", CHAIN_ID)
    with detached_devnet(tmp_path_factory.mktemp("devnet") / "data", str(app_dir)) as net:
        yield net


@pytest.fixture(scope="module")
def admin(devnet: Devnet) -> dict[str, Any]:
    record: dict[str, Any] = devnet.state["admin"]
    return record


def token(path: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + Path(path).read_text().strip()}


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, trust_env=False, timeout=30.0)


def test_up_and_status_name_the_admin_api(devnet: Devnet, admin: dict[str, Any]) -> None:
    assert admin["url"].startswith("http://127.0.0.1:")
    assert f"Admin:  {admin['url']} (token: {admin['token_file']})" in devnet.up.stdout
    status = rollup("status", "--json", "--data-dir", str(devnet.data_dir))
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["admin"] == {"url": admin["url"], "token_file": admin["token_file"]}
    assert Path(admin["token_file"]).stat().st_mode & 0o777 == 0o600


def test_the_apps_are_listed_with_their_heads(admin: dict[str, Any]) -> None:
    with api(admin["url"]) as client:
        assert client.get("/readyz").json() == {"ready": True, "apps": 1}
        page = client.get("/v1/apps", headers=token(admin["read_token_file"])).json()
    (app,) = page["items"]
    assert page["next_cursor"] is None
    assert (app["name"], app["chain_id"], app["vm"], app["state"]) == (
        "tok",
        CHAIN_ID,
        "native",
        "running",
    )
    assert app["heads"]["unsafe"] >= 0 and app["mempool"] == {"pending": 0, "queued": 0}
    assert rpc(app["rpc_url"], "eth_chainId") == hex(CHAIN_ID)


def test_every_path_is_401_without_a_token_and_403_for_the_read_token(
    admin: dict[str, Any],
) -> None:
    with api(admin["url"]) as client:
        paths = client.get("/openapi.json").json()["paths"]
        walked = 0
        for template, operations in paths.items():
            path = re.sub(r"\{name\}", "tok", template)
            for method in operations:
                if path in PUBLIC:
                    continue
                response = client.request(method, path)
                assert response.status_code == 401, (method, path)
                assert response.headers["content-type"] == "application/problem+json"
                wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401, (method, path)
                if method != "get":
                    read = client.request(method, path, headers=token(admin["read_token_file"]))
                    assert read.status_code == 403, (method, path)
                walked += 1
    assert walked >= 4
    assert rpc_status(admin)["state"] == "running"  # nothing was paused


def rpc_status(admin: dict[str, Any]) -> dict[str, Any]:
    with api(admin["url"]) as client:
        app: dict[str, Any] = client.get("/v1/apps/tok", headers=token(admin["token_file"])).json()
    return app


def signed_transfer(rpc_url: str) -> str:
    account = Account.from_key(DEV_KEYS[3])
    tx = {
        "chainId": CHAIN_ID,
        "nonce": int(rpc(rpc_url, "eth_getTransactionCount", account.address, "latest"), 16),
        "to": "0x" + "42" * 20,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return "0x" + account.sign_transaction(tx).raw_transaction.hex()


def test_pause_refuses_transactions_and_resume_takes_the_same_one(admin: dict[str, Any]) -> None:
    rpc_url = rpc_status(admin)["rpc_url"]
    raw = signed_transfer(rpc_url)
    with api(admin["url"]) as client:
        paused = client.post(
            "/v1/apps/tok/sequencer/pause",
            headers={"Idempotency-Key": "pause-1", **token(admin["token_file"])},
        )
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True
        assert rpc_status(admin)["state"] == "paused"
        with pytest.raises(RpcCallError) as refused:
            rpc(rpc_url, "eth_sendRawTransaction", raw)
        assert refused.value.code == -32002
        assert refused.value.reason.startswith("sequencer paused")
        resumed = client.post("/v1/apps/tok/sequencer/resume", headers=token(admin["token_file"]))
        assert resumed.json()["paused"] is False
    tx_hash = rpc(rpc_url, "eth_sendRawTransaction", raw)
    receipt = wait_for(
        lambda: rpc(rpc_url, "eth_getTransactionReceipt", tx_hash), "the transaction mined"
    )
    assert receipt["status"] == "0x1"
    assert rpc_status(admin)["state"] == "running"


def test_rollup_admin_serves_the_same_devnet_on_its_own(
    devnet: Devnet, tmp_path: Path, admin: dict[str, Any]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "services.cli", "admin", "--data-dir", str(devnet.data_dir)]
    process = ManagedProcess(
        "rollup admin",
        [*command, "--port", str(port)],
        tmp_path / "admin.log",
        ready=answers_http(f"{url}/healthz"),
    )
    with process, api(url) as client:
        assert client.get("/v1/apps").status_code == 401
        page = client.get("/v1/apps", headers=token(admin["token_file"])).json()
        assert [app["name"] for app in page["items"]] == ["tok"]


def test_stop_start_and_restart_go_through_the_supervisor(
    devnet: Devnet, admin: dict[str, Any]
) -> None:
    headers = token(admin["token_file"])
    before = rpc_status(admin)
    with api(admin["url"]) as client:
        stopped = client.post("/v1/apps/tok/stop", headers=headers)
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["state"] == "stopped"
        with pytest.raises(RpcUnavailable):
            rpc(before["rpc_url"], "eth_chainId", timeout=2.0)
        time.sleep(2.0)  # a few turns of the supervisor: a stopped node is not a crash
        assert rpc_status(admin)["state"] == "stopped"
        started = client.post("/v1/apps/tok/start", headers=headers)
        assert started.status_code == 200, started.text
        assert started.json()["state"] == "running"
        assert started.json()["heads"]["unsafe"] >= before["heads"]["unsafe"]
        pid = read_state(devnet.data_dir)["apps"][0]["pid"]
        restarted = client.post("/v1/apps/tok/restart", headers=headers)
        assert restarted.status_code == 200, restarted.text
        assert restarted.json()["state"] == "running"
    assert read_state(devnet.data_dir)["apps"][0]["pid"] != pid
    assert rpc(before["rpc_url"], "eth_chainId") == hex(CHAIN_ID)
