"""GET /metrics of a real node process and of a real verifier process, parsed with
prometheus_client's own parser: names, labels and types; blocks, transactions and RPC requests
moving under load; a client that cannot add method labels; the Host and Origin checks; and,
with an Anvil L1, the DA poster's series and a verifier's re-derived block."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.cli import main as bench_main
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess
from services.l1setup import BatcherSpec, prepare_l1
from services.launch import NodeProcess
from services.process import ManagedProcess, answers_http, free_port
from services.rpcclient import RpcClient, request
from services.scaffold import scaffold
from tests.support import RPC_TIMEOUT, rpc, wait_for

pytestmark = pytest.mark.e2e

CHAIN_ID = 901001
APP = "tok"
DEADLINE = 90.0


def scrape(url: str, **headers: str) -> dict[str, Any]:
    """{family name: family} of GET `url`/metrics."""
    answer = httpx.get(url.rstrip("/") + "/metrics", headers=headers, trust_env=False)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in text_string_to_metric_families(answer.text)}


def value(parsed: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    """The one sample named `sample` of `family` whose labels include `labels`; 0 if none."""
    if family not in parsed:
        return 0.0
    found = [
        s.value
        for s in parsed[family].samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, found
    return float(found[0]) if found else 0.0


def transfers(url: str, count: int, key: str = DEV_KEYS[3]) -> None:
    """`count` transfers from one dev account in one JSON-RPC batch, each answered with its
    hash (the node answers once their block is durable)."""
    account = Account.from_key(key)
    nonce = int(rpc(url, "eth_getTransactionCount", account.address, "pending"), 16)
    raws = []
    for i in range(count):
        tx = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce + i,
            "to": to_checksum_address(os.urandom(20)),
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 0,
        }
        raws.append("0x" + bytes(account.sign_transaction(tx).raw_transaction).hex())
    with RpcClient(url, RPC_TIMEOUT) as client:
        answers = client.batch([("eth_sendRawTransaction", [raw]) for raw in raws])
    assert all("result" in a for a in answers), answers[:3]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    app_dir = scaffold(tmp_path_factory.mktemp("app") / APP, "token", APP, CHAIN_ID)
    process = NodeProcess(app_dir, tmp_path_factory.mktemp("data"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_names_labels_and_types(node: NodeProcess) -> None:
    parsed = scrape(node.url)
    types = {
        "rollup_node_info": "gauge",
        "rollup_latest_block": "gauge",
        "rollup_blocks_sequenced": "counter",
        "rollup_transactions_sequenced": "counter",
        "rollup_block_build_seconds": "histogram",
        "rollup_mempool_transactions": "gauge",
        "rollup_rpc_requests": "counter",
        "rollup_rpc_errors": "counter",
        "rollup_rpc_request_duration_seconds": "histogram",
        "rollup_send_to_durable_seconds": "histogram",
        "rollup_process_start_time_seconds": "gauge",
    }
    assert {name: parsed[name].type for name in types if name in parsed} == types
    for family in parsed.values():
        assert family.name.startswith("rollup_")
        for sample in family.samples:
            assert sample.labels.get("app") == APP, sample
    assert not any(name.startswith(("rollup_da_", "rollup_bus_", "rollup_l1_")) for name in parsed)
    (info,) = parsed["rollup_node_info"].samples
    assert info.labels == {"app": APP, "chain_id": str(CHAIN_ID), "vm": "native"}


def test_values_move_under_load(node: NodeProcess) -> None:
    before = scrape(node.url)
    for _ in range(3):
        transfers(node.url, 50)

    def moved() -> dict[str, Any] | None:
        now = scrape(node.url)
        sends = "rollup_rpc_requests_total"
        grown = (
            value(now, "rollup_transactions_sequenced", "rollup_transactions_sequenced_total")
            - value(before, "rollup_transactions_sequenced", "rollup_transactions_sequenced_total")
            == 150
            and value(now, "rollup_rpc_requests", sends, method="eth_sendRawTransaction")
            - value(before, "rollup_rpc_requests", sends, method="eth_sendRawTransaction")
            == 150
        )
        return now if grown else None

    after = wait_for(moved, "the transfers in the metrics", DEADLINE)
    blocks = ("rollup_blocks_sequenced", "rollup_blocks_sequenced_total")
    assert value(after, *blocks) - value(before, *blocks) >= 3  # one batch, one block at least
    head = int(rpc(node.url, "eth_blockNumber"), 16)
    assert value(before, "rollup_latest_block", "rollup_latest_block") < head
    assert value(after, "rollup_latest_block", "rollup_latest_block") <= head
    durable = ("rollup_send_to_durable_seconds", "rollup_send_to_durable_seconds_count")
    assert value(after, *durable) - value(before, *durable) == 150
    built = ("rollup_block_build_seconds", "rollup_block_build_seconds_count")
    assert value(after, *built) > value(before, *built)
    batches = ("rollup_rpc_request_duration_seconds", "rollup_rpc_request_duration_seconds_count")
    assert value(after, *batches, method="batch") - value(before, *batches, method="batch") >= 3


def test_an_unknown_method_adds_no_label_value(node: NodeProcess) -> None:
    other = ("rollup_rpc_requests", "rollup_rpc_requests_total")
    before = value(scrape(node.url), *other, method="other")
    with RpcClient(node.url, RPC_TIMEOUT) as client:
        answers = client.batch([(f"attack_{i}", []) for i in range(200)])
        single = client.post(request("attack_single"))
    assert all(a["error"]["code"] == -32601 for a in [*answers, single])

    def counted() -> dict[str, Any] | None:
        now = scrape(node.url)
        return now if value(now, *other, method="other") - before == 201 else None

    after = wait_for(counted, "the unknown methods under 'other'", DEADLINE)
    labels = {
        s.labels.get("method")
        for name in ("rollup_rpc_requests", "rollup_rpc_errors")
        for s in after[name].samples
    }
    assert "other" in labels and not any(label.startswith("attack") for label in labels)


def test_scraping_is_refused_to_foreign_hosts_and_pages(node: NodeProcess) -> None:
    url = node.url + "metrics"
    rebound = httpx.get(url, headers={"host": "rebound.evil.example"}, trust_env=False)
    assert rebound.status_code == 400
    page = httpx.get(url, headers={"origin": "https://evil.example"}, trust_env=False)
    assert page.status_code == 403 and "rollup_" not in page.text


# ---- with an L1: the DA poster's series and a verifier process's ---------------------------


@pytest.fixture
def l1(tmp_path: Path) -> Iterator[AnvilProcess]:
    anvil = AnvilProcess(log_dir=tmp_path / "logs")
    anvil.start(state_dir=tmp_path / "l1", block_time=1.0)
    try:
        yield anvil
    finally:
        anvil.stop()


def test_poster_and_verifier_series(tmp_path: Path, l1: AnvilProcess) -> None:
    app_dir = scaffold(tmp_path / "app" / APP, "token", APP, CHAIN_ID)
    setup = prepare_l1(
        l1.rpc_url,
        [BatcherSpec(APP, CHAIN_ID, tmp_path / "batcher.key")],
        tmp_path / "l1",
        fund_owner_from=DEV_KEYS[0],
    )
    inbox = ("--inbox", "0x" + setup.inbox.hex())
    data_dir = tmp_path / "data"
    node = NodeProcess(
        app_dir,
        data_dir,
        extra_args=[
            "--da",
            "local",
            "--l1-rpc",
            l1.rpc_url,
            *inbox,
            "--inbox-from-block",
            str(setup.from_block),
            "--da-max-delay",
            "0.2",
        ],
        env={"ROLLUP_BATCHER_KEY_FILE": str(setup.batchers[APP])},
    )
    port = free_port()
    verifier = ManagedProcess(
        "verifier",
        [
            sys.executable,
            "-m",
            "services.verifier",
            "--app-dir",
            str(app_dir),
            "--l1-rpc",
            l1.rpc_url,
            *inbox,
            "--from-l1-block",
            str(setup.from_block),
            "--da-dir",
            str(data_dir / "da"),
            "--port",
            str(port),
        ],
        tmp_path / "verifier.log",
        ready=answers_http(f"http://127.0.0.1:{port}/health"),
    )
    node.start()
    try:
        transfers(node.url, 20)
        head = int(rpc(node.url, "eth_blockNumber"), 16)

        def posted() -> dict[str, Any] | None:
            now = scrape(node.url)
            return (
                now
                if value(now, "rollup_da_posted_block", "rollup_da_posted_block") >= head
                else None
            )

        parsed = wait_for(posted, "the poster's posted block", DEADLINE)
        assert value(parsed, "rollup_da_batches", "rollup_da_batches_total") >= 1
        assert value(parsed, "rollup_da_posted_bytes", "rollup_da_posted_bytes_total") > 0
        assert value(parsed, "rollup_da_post_seconds", "rollup_da_post_seconds_count") >= 1
        assert parsed["rollup_da_backlog_blocks"].type == "gauge"
        assert all(s.labels["app"] == APP for s in parsed["rollup_da_posted_block"].samples)

        verifier.start()
        try:
            url = f"http://127.0.0.1:{port}"

            def verified() -> dict[str, Any] | None:
                now = scrape(url)
                block = value(
                    now, "rollup_verifier_verified_block", "rollup_verifier_verified_block"
                )
                return now if block >= head else None

            checked = wait_for(verified, "the verifier's verified block", DEADLINE)
            labels = {"app": APP, "chain_id": str(CHAIN_ID)}
            assert (
                value(checked, "rollup_verifier_diverged", "rollup_verifier_diverged", **labels)
                == 0
            )
            transactions = ("rollup_verifier_transactions", "rollup_verifier_transactions_total")
            assert value(checked, *transactions) == 20
            assert checked["rollup_verifier_blocks"].type == "counter"
            assert "rollup_process_start_time_seconds" in checked
            rebound = httpx.get(
                url + "/metrics", headers={"host": "rebound.evil.example"}, trust_env=False
            )
            assert rebound.status_code == 400
        finally:
            verifier.stop()
    finally:
        node.stop()


# ---- the cost of scraping: `rollup bench transfers --scrape-every S` -----------------------


def test_the_transfers_benchmark_scrapes_while_it_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["transfers", "--n", "2000", "--batch", "100", "--no-peer", "--scrape-every", "0.05"]
    assert bench_main([*argv, "--json", "--results-dir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scrape_every"] == 0.05 and result["confirmed"] == 2000
    assert result["ours"]["scrapes"] >= 1
    assert bench_main([*argv, "--results-dir", str(tmp_path)]) == 0
    assert "node's /metrics scraped every 0.05 s" in capsys.readouterr().out
    assert bench_main(["transfers", "--scrape-every", "0", "--no-peer"]) == 1
    assert "--scrape-every takes a number of seconds above 0" in capsys.readouterr().err
