"""What one JSON-RPC request may cost the node: simulations within a budget on the event loop
and isolated beyond it, the gas cap, wall-time limits, proof sizes, blooms before bodies,
filters that cost nothing per event, private methods, Host and CORS checks.

A real `Sequencer` with a small native app and a real `RpcServer`, in process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from rollup.genesis import DEV_KEYS
from rollup.manifest import app_address
from sequencer.node import Sequencer
from services.node import open_node
from services.producer import BlockProducer
from services.rpc.filters import SubscriptionHub
from services.rpc.isolation import IsolationLimits
from services.rpc.methods import METHODS
from services.rpc.params import MAX_PROOF_SLOTS
from services.rpc.registry import Method
from services.rpc.server import RpcAccess, RpcLimits, RpcServer, create_app
from vm.native.abi import selector

CHAIN_ID = 903001
APP = """
from vm.native import App, Event, Value, indexed, method, uint256, view


class Noted(Event):
    n: indexed(uint256)


class Spinner(App):
    total = Value(uint256)

    @view
    def spin(self, n: uint256) -> uint256:
        i = 0
        while i < n:
            i = i + 1
        return i

    @method
    def note(self, n: uint256) -> uint256:
        self.total = self.total + n
        self.emit(Noted(n))
        return self.total
"""
MANIFEST = f"""
[app]
name = "spinner"
chain_id = {CHAIN_ID}
[genesis]
dev_accounts = true
owner = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    app_dir = tmp_path_factory.mktemp("spinner")
    (app_dir / "app.py").write_text(APP)
    (app_dir / "rollup.toml").write_text(MANIFEST)
    sequencer = open_node(app_dir, tmp_path_factory.mktemp("data"))
    try:
        yield sequencer
    finally:
        sequencer.close()


def request(method: str, *params: Any, req_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": list(params)}


def spin_call(n: int, gas: int | None = None) -> dict[str, Any]:
    call = {
        "to": "0x" + spinner_address(),
        "data": "0x" + (selector("spin(uint256)") + n.to_bytes(32, "big")).hex(),
    }
    if gas is not None:
        call["gas"] = hex(gas)
    return call


def spinner_address() -> str:
    return app_address("spinner").hex()


class Served:
    """A server on the node with a running block producer, for one test."""

    def __init__(
        self, node: Sequencer, limits: RpcLimits | None = None, access: RpcAccess | None = None
    ) -> None:
        self.node, self.limits, self.access = node, limits, access

    def handle(self, body: Any, origin: str | None = None) -> Any:
        async def run() -> tuple[Any, RpcServer]:
            producer = BlockProducer(self.node, 1)
            producer.start()
            server = RpcServer(self.node, producer, self.limits, access=self.access)
            try:
                out = await asyncio.wait_for(
                    server.handle_body(orjson.dumps(body), origin=origin), 30
                )
                return (None if out is None else orjson.loads(out)), server
            finally:
                await producer.stop()

        answer, self.server = asyncio.run(run())
        return answer


def uint(answer: dict[str, Any]) -> int:
    return int(answer["result"], 16)


# ---- simulations: on the loop within the budget, isolated beyond -------------------------


def test_a_light_call_is_answered_on_the_event_loop(node: Sequencer) -> None:
    served = Served(node)
    assert uint(served.handle(request("eth_call", spin_call(10)))) == 10
    assert served.server.isolator.started == 0


def test_a_heavy_call_runs_isolated_and_gives_the_same_answer(node: Sequencer) -> None:
    served = Served(node)
    assert uint(served.handle(request("eth_call", spin_call(100_000)))) == 100_000
    assert served.server.isolator.started == 1


def test_a_batch_shares_one_budget(node: Sequencer) -> None:
    served = Served(node, RpcLimits(inline_gas=200_000))
    batch = [request("eth_call", spin_call(2_000), req_id=i) for i in range(20)]
    answers = served.handle(batch)
    assert [uint(a) for a in answers] == [2_000] * 20
    assert served.server.isolator.started == 1  # the first ones inline, the rest in one child


def test_the_gas_cap_bounds_every_simulation(node: Sequencer) -> None:
    served = Served(node, RpcLimits(gas_cap=1_000_000))
    answer = served.handle(request("eth_call", spin_call(10**9, gas=10**9)))
    assert answer["error"] == {"code": -32000, "message": "out of gas"}
    answer = served.handle(request("eth_estimateGas", spin_call(10**9)))
    assert answer["error"]["message"] == "gas required exceeds allowance (1000000)"
    assert uint(served.handle(request("eth_estimateGas", spin_call(10)))) < 1_000_000


def test_a_simulation_past_its_wall_time_is_aborted(node: Sequencer) -> None:
    limits = RpcLimits(gas_cap=10**9, isolation=IsolationLimits(timeout_s=0.3))
    answer = Served(node, limits).handle(request("eth_call", spin_call(10**9, gas=10**9)))
    assert answer["error"] == {"code": -32000, "message": "execution aborted (timeout = 0.3s)"}


def test_an_estimate_that_outgrows_the_budget_finishes_isolated(node: Sequencer) -> None:
    served = Served(node, RpcLimits(inline_gas=100_000))
    gas = uint(served.handle(request("eth_estimateGas", spin_call(20_000))))
    assert served.server.isolator.started == 1
    ok = served.handle(request("eth_call", spin_call(20_000, gas=gas)))
    short = served.handle(request("eth_call", spin_call(20_000, gas=gas - 1)))
    assert uint(ok) == 20_000 and "error" in short


# ---- proofs and logs ----------------------------------------------------------------------


def test_a_proof_of_too_many_slots_is_refused(node: Sequencer) -> None:
    slots = [hex(i) for i in range(MAX_PROOF_SLOTS + 1)]
    answer = Served(node).handle(request("rollup_getProof", "0x" + spinner_address(), slots))
    assert answer["error"]["code"] == -32005
    assert "too many storage slots" in answer["error"]["message"]
    fine = Served(node).handle(request("rollup_getProof", "0x" + spinner_address(), slots[:3]))
    assert len(fine["result"]["storageProof"]) == 3


def test_logs_are_found_through_blooms_before_bodies(node: Sequencer, monkeypatch: Any) -> None:
    account = Account.from_key(DEV_KEYS[1])
    nonce = node.state.get(b"\x00" + bytes.fromhex(account.address[2:]))
    start = node.committed.number + 1
    for i in range(3):
        tx = {
            "chainId": CHAIN_ID,
            "nonce": (int.from_bytes(nonce[:8], "big") if nonce else 0) + i,
            "to": to_checksum_address("0x" + spinner_address()),
            "value": 0,
            "gas": 200_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "data": "0x" + (selector("note(uint256)") + (7 + i).to_bytes(32, "big")).hex(),
        }
        node.submit_raw(account.sign_transaction(tx).raw_transaction)
        node.produce(10**13 + i)
    loaded: list[int] = []
    original = node.block
    monkeypatch.setattr(node, "block", lambda n: loaded.append(n) or original(n))
    topic = "0x" + (8).to_bytes(32, "big").hex()
    flt = {"fromBlock": hex(start), "toBlock": "latest", "topics": [None, topic]}
    logs = Served(node).handle(request("eth_getLogs", flt))["result"]
    assert [int(log["topics"][1], 16) for log in logs] == [8]
    assert loaded == [start + 1]  # only the block whose bloom matched was read whole
    missing = {"fromBlock": hex(start), "toBlock": "latest", "topics": [None, "0x" + "ee" * 32]}
    loaded.clear()
    assert Served(node).handle(request("eth_getLogs", missing))["result"] == []
    assert loaded == []


# ---- filters and subscriptions: nothing per event per subscriber ------------------------------


def test_filters_share_one_record_of_pending_transactions(node: Sequencer) -> None:
    server_filters: list[str] = []

    async def scenario() -> list[Any]:
        producer = BlockProducer(node, 1)
        server = RpcServer(node, producer)
        ids = [
            await server.handle_body(orjson.dumps(request("eth_newPendingTransactionFilter")))
            for _ in range(500)
        ]
        server_filters.extend(orjson.loads(i)["result"] for i in ids)
        registry = server.filters
        for listener in node.on_pending:
            if getattr(listener, "__self__", None) is registry:
                break
        else:
            raise AssertionError("the registry listens to pending transactions")

        class Tx:
            hash = b"\x11" * 32

        for _ in range(3):
            listener(Tx())  # one append to one shared ring, whatever the number of filters
        polls = [orjson.dumps(request("eth_getFilterChanges", f)) for f in server_filters[:2]]
        changes = [orjson.loads(await server.handle_body(p))["result"] for p in polls]
        node.on_pending.remove(listener)
        return changes

    changes = asyncio.run(scenario())
    assert changes == [["0x" + "11" * 32] * 3] * 2


def test_one_client_cannot_take_every_filter(node: Sequencer) -> None:
    async def scenario() -> dict[str, Any]:
        server = RpcServer(node, BlockProducer(node, 1))
        server.filters.max_per_client = 3
        body = orjson.dumps(request("eth_newBlockFilter"))
        for _ in range(3):
            await server.handle_body(body, client="10.0.0.1")
        refused = orjson.loads(await server.handle_body(body, client="10.0.0.1"))
        other = orjson.loads(await server.handle_body(body, client="10.0.0.2"))
        return {"refused": refused, "other": other}

    answers = asyncio.run(scenario())
    assert answers["refused"]["error"]["code"] == -32005
    assert answers["other"]["result"].startswith("0x")


def test_a_subscriber_that_does_not_read_is_detached() -> None:
    class FakeNode:
        on_commit: list[Any] = []
        on_pending: list[Any] = []

    async def scenario() -> tuple[bool, int]:
        hub = SubscriptionHub(FakeNode(), max_connections=2)  # type: ignore[arg-type]
        slow = hub.open(max_queue=5)
        assert slow is not None
        slow.subscribe(["newPendingTransactions"])

        class Tx:
            hash = b"\x22" * 32

        for _ in range(10):
            hub._on_pending(Tx())  # type: ignore[arg-type]
        return slow.overflowed, len(hub.connections)

    overflowed, connections = asyncio.run(scenario())
    assert overflowed and connections == 0


def test_connections_beyond_the_bound_are_refused() -> None:
    class FakeNode:
        on_commit: list[Any] = []
        on_pending: list[Any] = []

    async def scenario() -> list[Any]:
        hub = SubscriptionHub(FakeNode(), max_connections=2)  # type: ignore[arg-type]
        return [hub.open(10) for _ in range(3)]

    assert [s is not None for s in asyncio.run(scenario())] == [True, True, False]


# ---- who may call: private methods, Host, CORS -------------------------------------------


def test_private_methods_refuse_other_origins(node: Sequencer, monkeypatch: Any) -> None:
    monkeypatch.setitem(METHODS, "test_private", Method(lambda node: "done", (), 0, private=True))
    served = Served(node, access=RpcAccess(trusted_origins=("http://localhost:3000",)))
    assert served.handle(request("test_private"))["result"] == "done"  # no Origin: not a page
    refused = served.handle(request("test_private"), origin="https://evil.example")
    assert refused["error"]["code"] == -32601
    assert "not available to pages of other origins" in refused["error"]["message"]
    ok = served.handle(request("test_private"), origin="http://localhost:3000")
    assert ok["result"] == "done"
    public = served.handle(request("eth_chainId"), origin="https://evil.example")
    assert public["result"] == hex(CHAIN_ID)


def asgi(node: Sequencer, access: RpcAccess, host: str = "127.0.0.1:8545") -> httpx.AsyncClient:
    app = create_app(RpcServer(node, BlockProducer(node, 1), access=access))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


def test_a_foreign_host_header_is_refused(node: Sequencer) -> None:
    async def scenario() -> tuple[int, int]:
        body = request("eth_chainId")
        async with asgi(node, RpcAccess()) as client:
            ours = await client.post("/", json=body)
        async with asgi(node, RpcAccess(), host="rebound.evil.example") as client:
            theirs = await client.post("/", json=body)
        return ours.status_code, theirs.status_code

    assert asyncio.run(scenario()) == (200, 400)


def test_cors_follows_the_configured_origins(node: Sequencer) -> None:
    preflight = {
        "Origin": "",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    async def scenario() -> tuple[int, int, str | None]:
        access = RpcAccess(cors_origins=("http://dapp.example",))
        async with asgi(node, access) as client:
            good = await client.options("/", headers={**preflight, "Origin": "http://dapp.example"})
            bad = await client.options("/", headers={**preflight, "Origin": "https://evil.example"})
        return good.status_code, bad.status_code, good.headers.get("access-control-allow-origin")

    assert asyncio.run(scenario()) == (200, 400, "http://dapp.example")
