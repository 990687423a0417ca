"""services/metrics.py in process: the lock-free histogram, the rendering bound, the node's
series over a real `Sequencer` and `RpcServer`, the bounded method labels, GET /metrics behind
the Host and Origin checks, the DA poster's, the bus's, the L1 follower's and the verifier's
series (the bus over two real chains and a fake transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from da.poster import PosterStatus
from da.verifier import VerifierStatus
from rollup.crypto import key_address
from rollup.genesis import DEV_KEYS
from sequencer.harness import LocalChain
from sequencer.node import Sequencer
from services.bus.service import BusService
from services.bus.transport import Connected, Deliver
from services.bus.trust import StaticTrust
from services.metrics import (
    CONTENT_TYPE,
    BusCollector,
    Durations,
    L1Collector,
    Metrics,
    PosterCollector,
    RpcStats,
    VerifierCollector,
)
from services.node import open_node
from services.producer import BlockProducer
from services.rpc.server import RpcAccess, RpcServer, create_app
from services.scaffold import scaffold
from services.verifier import status_app
from vm.state import get_account

CHAIN_ID = 901001
GWEI = 10**9
RUN_TIMEOUT = 20.0
REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "benchmarks" / "apps"


def families(text: bytes | str) -> dict[str, Any]:
    """{family name: family} of an exposition text, parsed by prometheus_client's parser."""
    raw = text.decode() if isinstance(text, bytes) else text
    return {f.name: f for f in text_string_to_metric_families(raw)}


def value(parsed: dict[str, Any], name: str, **labels: str) -> float:
    """The one sample `name` (a sample name: with `_total`, `_count`...) whose labels include
    `labels`."""
    family_name = name
    for suffix in ("_total", "_count", "_sum", "_bucket", "_info"):
        if name.endswith(suffix) and name[: -len(suffix)] in parsed:
            family_name = name[: -len(suffix)]
    found = [
        s.value
        for s in parsed[family_name].samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, (name, labels, parsed[family_name].samples)
    return float(found[0])


# ---- the histogram and the registry -------------------------------------------------------


def test_durations_buckets_are_cumulative_and_end_with_the_count() -> None:
    durations = Durations((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 2.0):
        durations.observe(seconds)
    durations.observe(0.5, count=3)
    assert durations.buckets() == [("0.1", 2.0), ("1.0", 6.0), ("+Inf", 7.0)]
    assert durations.sum == pytest.approx(0.05 + 0.1 + 0.5 + 2.0 + 1.5)


def test_the_text_is_rendered_at_most_once_per_interval() -> None:
    counts = {"n": 0}

    class Counting:
        def collect(self) -> Iterator[Any]:
            counts["n"] += 1
            return iter(())

    slow = Metrics("app", min_interval=60.0)
    slow.add(Counting())
    for _ in range(100):
        slow.render()
    assert counts["n"] == 1
    fast = Metrics("app", min_interval=0.0)
    fast.add(Counting())
    fast.render()
    fast.render()
    assert counts["n"] == 3


def test_registries_are_per_process_object_not_global() -> None:
    one, two = Metrics("one"), Metrics("two")
    assert one.registry is not two.registry
    assert 'app="one"' in one.render().decode() and 'app="two"' not in one.render().decode()


def test_rpc_labels_are_the_served_methods_or_other() -> None:
    stats = RpcStats(["eth_chainId"])
    assert stats.label("eth_chainId") == "eth_chainId"
    assert stats.label("eth_chainid") == "other"
    assert stats.label(["eth_chainId"]) == "other"
    stats.record(["eth_chainId"], [{"result": "0x1"}], 0.001)
    stats.record(["eth_chainId", "other"], [{"result": "0x1"}, {"error": {}}], 0.002)
    stats.record(["other"], [None], 0.003)  # a notification: counted, never an error
    assert stats.requests == {"eth_chainId": 2, "other": 2}
    assert stats.errors == {"other": 1}
    assert {k: sum(d.counts) for k, d in stats.durations.items()} == {
        "eth_chainId": 1,
        "batch": 1,
        "other": 1,
    }


# ---- the node: a real Sequencer, BlockProducer and RpcServer --------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    app_dir = scaffold(tmp_path_factory.mktemp("app"), "token", "tok", CHAIN_ID)
    sequencer = open_node(app_dir, tmp_path_factory.mktemp("data"))
    try:
        yield sequencer
    finally:
        sequencer.close()


def call(method: Any, *params: Any, req_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": list(params)}


def transfer(node: Sequencer, key_index: int, offset: int = 0) -> str:
    account = Account.from_key(DEV_KEYS[key_index])
    nonce = get_account(node.state, bytes.fromhex(account.address[2:]))[0] + offset
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": "0x" + "42" * 20,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return "0x" + account.sign_transaction(tx).raw_transaction.hex()


def served(node: Sequencer, *bodies: Any) -> dict[str, Any]:
    """Each body through one RpcServer with a block producer running; its metrics, parsed."""

    async def run() -> bytes:
        producer = BlockProducer(node, 1)
        server = RpcServer(node, producer)
        server.metrics.min_interval = 0.0
        producer.start()
        try:
            for body in bodies:
                raw = orjson.dumps(body)
                await asyncio.wait_for(server.handle_body(raw), RUN_TIMEOUT)
        finally:
            await producer.stop()
        return server.metrics.render()

    return families(asyncio.run(run()))


def test_every_series_has_the_app_label_and_the_prefix(node: Sequencer) -> None:
    parsed = served(node, call("eth_chainId"))
    assert parsed, "no families"
    for family in parsed.values():
        assert family.name.startswith("rollup_"), family.name
        for sample in family.samples:
            assert sample.labels.get("app") == "tok", sample


def test_sends_move_blocks_transactions_pool_and_durations(node: Sequencer) -> None:
    before = node.committed.number
    batch = [call("eth_sendRawTransaction", transfer(node, 1, i), req_id=i) for i in range(3)]
    parsed = served(node, batch, call("eth_blockNumber"))
    assert parsed["rollup_blocks_sequenced"].type == "counter"
    assert value(parsed, "rollup_blocks_sequenced_total") >= 1
    assert value(parsed, "rollup_transactions_sequenced_total") == 3
    assert value(parsed, "rollup_latest_block") == node.committed.number > before
    assert parsed["rollup_block_build_seconds"].type == "histogram"
    assert value(parsed, "rollup_block_build_seconds_count") >= 1
    assert value(parsed, "rollup_send_to_durable_seconds_count") == 3
    assert value(parsed, "rollup_send_to_durable_seconds_sum") > 0
    assert value(parsed, "rollup_rpc_requests_total", method="eth_sendRawTransaction") == 3
    assert value(parsed, "rollup_rpc_request_duration_seconds_count", method="batch") == 1
    assert value(parsed, "rollup_rpc_request_duration_seconds_count", method="eth_blockNumber") == 1
    assert value(parsed, "rollup_mempool_transactions", state="pending") == 0
    (info,) = parsed["rollup_node_info"].samples  # an info metric is a gauge of 1 in this text
    assert info.labels == {"app": "tok", "chain_id": str(CHAIN_ID), "vm": "native"}
    assert info.value == 1


def test_a_queued_transaction_is_counted_in_the_pool_but_not_durable(node: Sequencer) -> None:
    gap = call("eth_sendRawTransaction", transfer(node, 2, offset=5))  # a nonce gap: queued
    parsed = served(node, gap)
    assert value(parsed, "rollup_mempool_transactions", state="queued") >= 1
    assert value(parsed, "rollup_send_to_durable_seconds_count") == 0


def test_unknown_methods_add_no_label_values(node: Sequencer) -> None:
    junk = [call(f"attack_{i}", req_id=i) for i in range(500)] + [call(7), {"method": 1}]
    parsed = served(node, junk, call("attack_single"), call("eth_chainId"))
    methods = {s.labels["method"] for s in parsed["rollup_rpc_requests"].samples}
    assert methods == {"other", "eth_chainId"}
    assert value(parsed, "rollup_rpc_requests_total", method="other") == 503
    assert value(parsed, "rollup_rpc_errors_total", method="other") == 503
    durations = {s.labels["method"] for s in parsed["rollup_rpc_request_duration_seconds"].samples}
    assert durations == {"batch", "other", "eth_chainId"}


# ---- GET /metrics -------------------------------------------------------------------------


def get(app: Any, path: str, host: str = "127.0.0.1:8545", **headers: str) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(run())


def test_get_metrics_serves_the_text_format(node: Sequencer) -> None:
    app = create_app(RpcServer(node, BlockProducer(node, 1)))
    answer = get(app, "/metrics")
    assert answer.status_code == 200
    assert (
        answer.headers["content-type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    )
    assert "rollup_latest_block" in families(answer.text)


def test_get_metrics_refuses_foreign_hosts_and_untrusted_pages(node: Sequencer) -> None:
    access = RpcAccess(trusted_origins=("http://localhost:3000",))
    app = create_app(RpcServer(node, BlockProducer(node, 1), access=access))
    assert get(app, "/metrics", host="rebound.evil.example").status_code == 400
    refused = get(app, "/metrics", origin="https://evil.example")
    assert refused.status_code == 403 and "rollup_" not in refused.text
    assert get(app, "/metrics", origin="http://localhost:3000").status_code == 200


# ---- the DA poster, the L1 follower, the verifier (their collectors over fakes) -------------


def test_poster_series() -> None:
    status = PosterStatus(safe=7, finalized=5, batches=3, bytes=1234, failures=2)
    service = SimpleNamespace(
        poster=SimpleNamespace(status=status),
        backlog=SimpleNamespace(refresh=lambda: (4, 40)),
        post_seconds=Durations((1.0,)),
    )
    service.post_seconds.observe(0.5)
    metrics = Metrics("tok", min_interval=0.0)
    metrics.add(PosterCollector("tok", service))  # type: ignore[arg-type]
    parsed = families(metrics.render())
    assert value(parsed, "rollup_da_posted_block") == 7
    assert value(parsed, "rollup_da_finalized_block") == 5
    assert value(parsed, "rollup_da_backlog_blocks") == 4
    assert value(parsed, "rollup_da_backlog_transactions") == 40
    assert value(parsed, "rollup_da_batches_total") == 3
    assert value(parsed, "rollup_da_posted_bytes_total") == 1234
    assert value(parsed, "rollup_da_post_failures_total") == 2
    assert value(parsed, "rollup_da_post_seconds_count") == 1
    assert parsed["rollup_da_posted_bytes"].type == "counter"


def test_l1_follower_series() -> None:
    follower = SimpleNamespace(
        tip=120, origin=lambda: SimpleNamespace(number=118), pending=lambda: 2, reachable=False
    )
    metrics = Metrics("tok", min_interval=0.0)
    metrics.add(L1Collector("tok", follower))  # type: ignore[arg-type]
    parsed = families(metrics.render())
    assert value(parsed, "rollup_l1_tip_block") == 120
    assert value(parsed, "rollup_l1_origin_block") == 118
    assert value(parsed, "rollup_l1_deposits_pending") == 2
    assert value(parsed, "rollup_l1_reachable") == 0


class FakeVerifier:
    def __init__(self, status: VerifierStatus) -> None:
        self.current = status

    def status(self) -> VerifierStatus:
        return self.current


def test_verifier_series_keep_their_names_and_labels() -> None:
    verifier = FakeVerifier(VerifierStatus(chain_id=5, verified=9, block=9, blocks=9, txs=30))
    metrics = Metrics("tok", min_interval=0.0)
    metrics.add(VerifierCollector("tok", verifier))  # type: ignore[arg-type]
    text = metrics.render().decode()
    assert 'rollup_verifier_diverged{app="tok",chain_id="5"} 0' in text  # as the devnet test reads
    parsed = families(text)
    assert value(parsed, "rollup_verifier_verified_block", chain_id="5") == 9
    assert value(parsed, "rollup_verifier_transactions_total") == 30
    assert parsed["rollup_verifier_blocks"].type == "counter"
    verifier.current = VerifierStatus(chain_id=5, state="diverged", block=10, verified=9)
    parsed = families(metrics.render())
    assert value(parsed, "rollup_verifier_diverged") == 1
    assert value(parsed, "rollup_verifier_diverged_block") == 10


def test_the_verifier_serves_metrics_to_loopback_hosts_only() -> None:
    verifier = FakeVerifier(VerifierStatus(chain_id=5, verified=3, block=3))
    app = status_app(verifier, "tok")  # type: ignore[arg-type]
    answer = get(app, "/metrics", host="127.0.0.1:9000")
    assert answer.status_code == 200 and answer.headers["content-type"] == CONTENT_TYPE
    assert value(families(answer.text), "rollup_verifier_verified_block") == 3
    assert "rollup_process_start_time_seconds" in families(answer.text)
    assert get(app, "/metrics", host="rebound.evil.example").status_code == 400
    assert get(app, "/status", host="rebound.evil.example").status_code == 400


# ---- the bus: two real chains over a fake transport ---------------------------------------

KEYS = {910001: b"\x0a" * 32, 910002: b"\x0b" * 32}


class Hub:
    def __init__(self) -> None:
        self.ends: dict[int, FakeTransport] = {}


class FakeTransport:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.deliver: Deliver | None = None

    async def start(self, chain_id: int, deliver: Deliver, connected: Connected) -> None:
        self.deliver = deliver
        self.hub.ends[chain_id] = self

    def send(self, dst_chain: int, frame: bytes, durable: bool) -> None:
        peer = self.hub.ends.get(dst_chain)
        if peer is not None and peer.deliver is not None:
            asyncio.get_running_loop().call_soon(peer.deliver, frame)

    def settled(self, src_chain: int, next_nonce: int) -> None:
        pass

    async def close(self) -> None:
        pass


async def settle(*chains: LocalChain, rounds: int = 200) -> None:
    """Let frames arrive and build blocks until nothing moves for a while."""
    idle = 0
    for _ in range(rounds):
        await asyncio.sleep(0.01)
        built = [c.node.produce(next(c._clock)) for c in chains if c.node.has_work()]
        idle = 0 if built else idle + 1
        if idle >= 15:
            return


def test_bus_messages_by_state_and_round_trips() -> None:
    a, b = LocalChain.from_dir(APPS / "pinger"), LocalChain.from_dir(APPS / "ponger")
    trust = StaticTrust({c: key_address(k) for c, k in KEYS.items()})

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        hub = Hub()
        sa, sb = (
            BusService(c.node, FakeTransport(hub), KEYS[c.node.chain_id], trust) for c in (a, b)
        )
        await sa.start()
        await sb.start()
        try:
            receipt = a.transact(a.accounts[0], "ping", b.node.chain_id, b.app.address, 1, 5)
            assert receipt.status == 1
            await settle(a, b)
            return bus_families(sa), bus_families(sb)
        finally:
            await sa.stop()
            await sb.stop()

    try:
        pinger, ponger = asyncio.run(run())
    finally:
        a.close()
        b.close()
    assert value(pinger, "rollup_bus_messages_total", state="sent") == 5
    assert value(pinger, "rollup_bus_messages_total", state="acknowledged") == 5
    assert value(pinger, "rollup_bus_messages_unacknowledged") == 0
    assert value(pinger, "rollup_bus_round_trip_seconds_count") == 5
    assert value(pinger, "rollup_bus_round_trip_seconds_sum") > 0
    assert value(ponger, "rollup_bus_messages_total", state="received") == 5
    assert value(ponger, "rollup_bus_messages_total", state="executed") == 5
    assert value(ponger, "rollup_bus_inbox_messages") == 0
    assert parsed_labels(pinger["rollup_bus_messages"]) >= {"sent", "acknowledged", "executed"}


def bus_families(service: BusService) -> dict[str, Any]:
    metrics = Metrics("app", min_interval=0.0)
    metrics.add(BusCollector("app", service))
    return families(metrics.render())


def parsed_labels(family: Any) -> set[str]:
    return {s.labels["state"] for s in family.samples}
