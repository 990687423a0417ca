"""`RpcServer.handle_body` in-process: parsing, batches, notifications and the send-and-wait path.

A real `Sequencer` on SQLite in a temporary directory and a real `BlockProducer` on the event
loop of each `asyncio.run`; no processes, no sockets.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from eth_account import Account
from starlette.testclient import TestClient

from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from rollup.transactions import MAX_TX_GAS
from sequencer.node import Sequencer
from services.node import open_node, tune_gc
from services.producer import BlockProducer
from services.rpc.server import NodeLoop, RpcLimits, RpcServer, create_app
from services.scaffold import scaffold
from vm.state import get_account

CHAIN_ID = 901001
GWEI = 10**9
RUN_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    app_dir = scaffold(tmp_path_factory.mktemp("app"), "token", "tok", CHAIN_ID)
    sequencer = open_node(app_dir, tmp_path_factory.mktemp("data"))
    try:
        yield sequencer
    finally:
        sequencer.close()


def handle(node: Sequencer, body: Any, limits: RpcLimits | None = None) -> Any:
    """One HTTP body through the server, with a block producer running; the decoded answer."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)

    async def run() -> bytes | None:
        producer = BlockProducer(node, node.manifest.block_interval_ms)
        producer.start()
        try:
            return await asyncio.wait_for(
                RpcServer(node, producer, limits).handle_body(raw), RUN_TIMEOUT
            )
        finally:
            await producer.stop()

    out = asyncio.run(run())
    return None if out is None else orjson.loads(out)


def call(method: str, params: list[Any] | None = None, req_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or []}


def notify(method: str, params: list[Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params or []}


def signed_transfer(
    node: Sequencer, key_index: int, nonce_offset: int = 0, gas: int = 21_000
) -> str:
    """A raw EIP-1559 transfer of 1 wei from a dev account, at its state nonce + offset."""
    account = Account.from_key(DEV_KEYS[key_index])
    nonce = get_account(node.state, bytes.fromhex(account.address[2:]))[0] + nonce_offset
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": "0x" + "42" * 20,
        "value": 1,
        "gas": gas,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return "0x" + account.sign_transaction(tx).raw_transaction.hex()


def tx_hash_of(raw: str) -> bytes:
    return keccak(bytes.fromhex(raw[2:]))


# ---- single requests ---------------------------------------------------------------------


def test_single_request_is_answered_with_its_id(node):
    assert handle(node, call("eth_chainId", req_id="abc")) == {
        "jsonrpc": "2.0",
        "id": "abc",
        "result": hex(CHAIN_ID),
    }
    assert handle(node, call("eth_chainId", req_id=None))["id"] is None  # null id: still answered


@pytest.mark.parametrize("body", [b"{", b"", b"[1,", b"\x00"])
def test_unparseable_body_is_a_parse_error(node, body):
    assert handle(node, body) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "parse error"},
    }


def test_single_notification_gets_no_answer(node):
    assert handle(node, notify("eth_chainId")) is None
    assert handle(node, notify("eth_noSuchMethod")) is None  # even when it fails


def test_invalid_request_is_answered_even_without_an_id(node):
    response = handle(node, {"jsonrpc": "1.0", "method": "eth_chainId"})
    assert response["error"]["code"] == -32600 and response["id"] is None


# ---- batches -----------------------------------------------------------------------------


def test_batch_answers_only_the_requests_with_an_id(node):
    batch = [
        call("eth_chainId", req_id=1),
        notify("eth_blockNumber"),
        call("eth_noSuchMethod", req_id=2),
        notify("eth_noSuchMethod"),
        call("eth_getBalance", ["0x12"], req_id=3),
        5,
    ]
    responses = handle(node, batch)
    assert isinstance(responses, list) and len(responses) == 4
    by_id = {r["id"]: r for r in responses if r["id"] is not None}
    assert by_id[1]["result"] == hex(CHAIN_ID)
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602
    (invalid,) = [r for r in responses if r["id"] is None]
    assert invalid["error"]["code"] == -32600


def test_batch_of_notifications_only_gets_no_answer(node):
    assert handle(node, [notify("eth_chainId"), notify("eth_blockNumber")]) is None


def test_empty_batch(node):
    response = handle(node, [])
    assert response["error"] == {"code": -32600, "message": "empty batch"}


def test_batch_limit(node):
    limits = RpcLimits(max_batch=3)
    over = handle(node, [call("eth_chainId", req_id=i) for i in range(4)], limits)
    assert over["error"] == {"code": -32600, "message": "batch too large"}
    at = handle(node, [call("eth_chainId", req_id=i) for i in range(3)], limits)
    assert sorted(r["id"] for r in at) == [0, 1, 2]


def test_body_limit(node):
    limits = RpcLimits(max_body_bytes=100)
    body = orjson.dumps(call("eth_chainId", ["x" * 100]))
    assert len(body) > 100
    assert handle(node, body, limits)["error"]["code"] == -32600
    assert handle(node, call("eth_chainId"), limits)["result"] == hex(CHAIN_ID)


# ---- sends -------------------------------------------------------------------------------


def test_send_is_answered_once_its_block_is_committed(node):
    raw = signed_transfer(node, 1)
    head = node.committed.number
    response = handle(node, call("eth_sendRawTransaction", [raw]))
    assert response["result"] == "0x" + tx_hash_of(raw).hex()
    status = node.transaction(tx_hash_of(raw))
    assert status is not None and status.block is not None
    assert status.block.header.number == head + 1 == node.committed.number


def test_sent_notification_is_executed_but_not_answered(node):
    raw = signed_transfer(node, 2)
    assert handle(node, [notify("eth_sendRawTransaction", [raw])]) is None
    status = node.transaction(tx_hash_of(raw))
    assert status is not None and status.block is not None


def test_future_nonce_is_answered_at_once_and_mined_with_its_gap_filler(node):
    later = signed_transfer(node, 3, nonce_offset=1)
    head = node.committed.number
    assert handle(node, call("eth_sendRawTransaction", [later]))["result"] == (
        "0x" + tx_hash_of(later).hex()
    )
    assert node.committed.number == head  # queued: no block
    pending = node.transaction(tx_hash_of(later))
    assert pending is not None and pending.block is None

    first = signed_transfer(node, 3)
    batch = [
        call("eth_sendRawTransaction", [first], "first"),
        call("eth_sendRawTransaction", [first], "again"),
    ]
    responses = {r["id"]: r for r in handle(node, batch)}
    assert responses["first"]["result"] == "0x" + tx_hash_of(first).hex()
    assert responses["again"]["error"] == {"code": -32000, "message": "already known"}
    mined = node.transaction(tx_hash_of(first)).block
    assert mined is not None
    # admitting the gap filler promoted the queued one before the producer ran: same block
    assert node.transaction(tx_hash_of(later)).block == mined


def test_rejected_send_in_a_batch_is_its_own_error(node):
    raw = signed_transfer(node, 4)
    responses = handle(
        node,
        [
            call("eth_sendRawTransaction", ["0xdeadbeef"], 1),
            call("eth_sendRawTransaction", [raw], 2),
            call("eth_sendRawTransaction", ["0x"], 3),
        ],
    )
    by_id = {r["id"]: r for r in responses}
    assert by_id[1]["error"]["code"] == -32000
    assert by_id[1]["error"]["message"].startswith("rlp")
    assert by_id[2]["result"] == "0x" + tx_hash_of(raw).hex()
    assert by_id[3]["error"]["code"] == -32602


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[Sequencer]:
    """A node of its own, for a test that must not see what others left in the pool."""
    sequencer = open_node(scaffold(tmp_path / "app", "token", "tok", CHAIN_ID), tmp_path / "data")
    try:
        yield sequencer
    finally:
        sequencer.close()


@pytest.fixture
def small_blocks(tmp_path: Path) -> Iterator[Sequencer]:
    """A node whose block holds one transaction of the most gas a transaction may carry."""
    app_dir = scaffold(tmp_path / "app", "token", "tok", CHAIN_ID)
    manifest = app_dir / "rollup.toml"
    text = manifest.read_text().replace("[sequencer]\n", f"[sequencer]\ngas_limit = {MAX_TX_GAS}\n")
    manifest.write_text(text)
    sequencer = open_node(app_dir, tmp_path / "data")
    try:
        yield sequencer
    finally:
        sequencer.close()


def test_a_send_that_does_not_fit_the_block_goes_into_the_next_one(small_blocks):
    """BUG (sequencer/node.py, Sequencer._requeue): a transaction put back because the block's
    gas ran out is re-added with the sender's nonce from *before* the block being built, so when
    an earlier transaction of the same sender made it into that block, the put-back one lands
    in `queued` behind a nonce that is already used: never built, the send answered only by the
    timeout, and the hash stuck in the pool ("already known" if sent again)."""
    node = small_blocks
    first = signed_transfer(node, 6)
    full = signed_transfer(node, 6, nonce_offset=1, gas=node.manifest.gas_limit)
    limits = RpcLimits(send_wait_seconds=2.0)
    batch = [call("eth_sendRawTransaction", [first], 1), call("eth_sendRawTransaction", [full], 2)]
    responses = {r["id"]: r for r in handle(node, batch, limits)}
    assert responses[1]["result"] == "0x" + tx_hash_of(first).hex()
    assert responses[2]["result"] == "0x" + tx_hash_of(full).hex()
    in_first = node.transaction(tx_hash_of(first)).block
    assert in_first is not None and len(in_first.transactions) == 1  # the block had no room
    in_next = node.transaction(tx_hash_of(full)).block
    assert in_next is not None, "the put-back transaction was never built"
    assert in_next.header.number == in_first.header.number + 1


def test_a_due_block_goes_before_a_flood_of_requests(fresh_node):
    """Once a block is due, handlers that start wait for it instead of running ahead of it:
    the block is built about when it is due, and the flood is still answered (each handler
    waits for one build at most). Without the turn, every handler that was ready when the
    block fell due ran before the producer's timer could fire: the block came after them."""
    interval_s, clients, batch = 0.1, 1_500, 64
    node = fresh_node
    builds: list[float] = []  # when each build began
    build = node.build_block

    def timed_build(*args: Any, **kwargs: Any) -> Any:
        builds.append(time.monotonic())
        return build(*args, **kwargs)

    node.build_block = timed_build  # type: ignore[method-assign]

    async def run() -> tuple[float, float, list[int]]:
        producer = BlockProducer(node, int(interval_s * 1000))
        server = RpcServer(node, producer)
        producer.start()
        try:
            node.submit_raw(bytes.fromhex(signed_transfer(node, 7)[2:]))
            producer.wake()
            await wait_until_built(node, node.head.number + 1)
            before = node.head.number
            node.submit_raw(bytes.fromhex(signed_transfer(node, 7)[2:]))
            producer.wake()
            await asyncio.sleep(0)  # the producer takes the wake-up: the block is due soon
            due = time.monotonic() + interval_s
            heads: list[int] = []
            requests = [call("eth_chainId", [], i) for i in range(batch)]

            async def client() -> None:
                await server.handle_batch(requests)
                heads.append(node.head.number - before)

            started = time.monotonic()
            await asyncio.gather(*(client() for _ in range(clients)))
            return builds[-1] - due, time.monotonic() - started, heads
        finally:
            await producer.stop()

    thresholds = gc.get_threshold()
    tune_gc()  # as a node process does: full collections of the test session's heap aside
    try:
        late_s, flood_s, heads = asyncio.run(run())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert len(heads) == clients  # every request answered
    assert 0 in heads and 1 in heads, f"the flood did not straddle the block ({flood_s=:.2f})"
    assert late_s < 0.05, f"the block came {late_s * 1000:.0f} ms late ({flood_s=:.2f})"


async def wait_until_built(node: Sequencer, number: int) -> None:
    while node.head.number < number:
        await asyncio.sleep(0.001)


def test_the_transport_on_its_own_thread_hops_to_the_node_loop(fresh_node):
    """As services/node.py runs it: uvicorn and Starlette on a thread of their own, every
    touch of the node (HTTP, WebSocket, health, metrics) on the node's loop."""
    node_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=node_loop.run_forever, name="node-loop", daemon=True)
    thread.start()
    producer = BlockProducer(fresh_node, 1)

    async def start() -> None:
        producer.start()

    asyncio.run_coroutine_threadsafe(start(), node_loop).result(RUN_TIMEOUT)
    server = RpcServer(fresh_node, producer)
    where: list[str] = []
    handle_body = server.handle_body

    async def watched(*args: Any, **kwargs: Any) -> bytes | None:
        where.append(threading.current_thread().name)
        return await handle_body(*args, **kwargs)

    server.handle_body = watched  # type: ignore[method-assign]
    try:
        with TestClient(create_app(server, NodeLoop(node_loop)), "http://127.0.0.1") as client:
            raw = signed_transfer(fresh_node, 7)
            sent = client.post("/", json=call("eth_sendRawTransaction", [raw])).json()
            assert sent["result"] == "0x" + tx_hash_of(raw).hex()
            assert fresh_node.committed.number == 1  # answered once durable
            with client.websocket_connect("ws://127.0.0.1/") as socket:
                socket.send_json(call("eth_blockNumber"))
                assert socket.receive_json()["result"] == "0x1"
            assert client.get("/health").json()["head"] == 1
            assert "rollup_" in client.get("/metrics").text
    finally:
        asyncio.run_coroutine_threadsafe(producer.stop(), node_loop).result(RUN_TIMEOUT)
        node_loop.call_soon_threadsafe(node_loop.stop)
        thread.join(RUN_TIMEOUT)
        node_loop.close()
    assert where == ["node-loop", "node-loop"]  # the POST and the WebSocket message
