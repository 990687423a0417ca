"""Every eth_ method of ethereum/execution-apis answers, in its schema (issue 15 item 2).

The spec is vendored in tests/data/execution-apis/ (README.md there says from which commits);
`load_spec` resolves its `$ref`s into one JSON Schema per method result. The node is a real
Sequencer and RpcServer in process on an EVM app whose chain the fixture builds (the three
transaction types, an ERC-20 transfer with its log), and the spec's example parameters are
adapted to it. tests/e2e/test_execution_apis.py runs the same check over HTTP.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML: no stubs installed
from eth_account import Account
from eth_utils import to_checksum_address

from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.transactions import contract_address
from sequencer.node import Sequencer
from sequencer.simulate import MAX_SIMULATE_BLOCKS
from services.node import open_node
from services.producer import BlockProducer
from services.rpc.proofs import proof_nodes
from services.rpc.server import SERVED_HERE, RpcServer
from services.scaffold import scaffold
from vm.commitment import EMPTY_ROOT
from vm.evm.engine import SPEC

SPEC_DIR = Path(__file__).resolve().parents[1] / "data" / "execution-apis"
CHAIN_ID = 4545
ALICE = "0x" + DEV_ADDRESSES[0].hex()  # the owner: deployed the token at genesis, holds it all
ALICE_KEY = DEV_KEYS[0]
BOB = "0x" + "b0" * 20
NOBODY = "0x" + "c1" * 20  # never touched
TOKEN = "0x" + contract_address(DEV_ADDRESSES[0], 0).hex()
TRANSFER = "0xa9059cbb"  # transfer(address,uint256)
BALANCE_OF = "0x70a08231"  # balanceOf(address)
TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
RUN_TIMEOUT = 30.0


# ---- the spec ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpecMethod:
    name: str
    result: dict[str, Any]  # the result's JSON Schema, every $ref resolvable
    errors: tuple[int, ...]  # the error codes the spec lists for it


def _refs_to_defs(node: Any) -> Any:
    """OpenRPC's '#/components/schemas/X' as JSON Schema's '#/$defs/X'."""
    if isinstance(node, dict):
        return {
            k: v.replace("#/components/schemas/", "#/$defs/")
            if k == "$ref" and isinstance(v, str)
            else _refs_to_defs(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_refs_to_defs(v) for v in node]
    return node


@cache
def load_spec() -> dict[str, SpecMethod]:
    """The eth_ methods of the vendored spec, by name; local.yaml is laid over the schemas."""
    defs: dict[str, Any] = {}
    for path in sorted((SPEC_DIR / "src" / "schemas").glob("*.yaml")):
        defs |= yaml.safe_load(path.read_text())
    defs |= yaml.safe_load((SPEC_DIR / "local.yaml").read_text())
    defs = _refs_to_defs(defs)
    methods: dict[str, SpecMethod] = {}
    for path in sorted((SPEC_DIR / "src" / "eth").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()):
            schema = {**_refs_to_defs(entry["result"]["schema"]), "$defs": defs}
            codes = tuple(e["code"] for e in entry.get("errors", []))
            methods[entry["name"]] = SpecMethod(entry["name"], schema, codes)
    return methods


def schema_errors(method: str, result: Any) -> list[str]:
    """Why `result` is not in `method`'s result schema (empty: it is)."""
    validator = jsonschema_rs.Draft201909Validator(load_spec()[method].result)
    return [
        f"{'/'.join(map(str, e.instance_path)) or '(top)'}: {e.message[:300]}"
        for e in validator.iter_errors(result)
    ]


# ---- the node ----------------------------------------------------------------------------------


def open_evm_app(root: Path) -> Sequencer:
    return open_node(scaffold(root / "app", "evm", "spec", CHAIN_ID), root / "data")


Call = Callable[..., Awaitable[Any]]


def session(node: Sequencer, script: Callable[[Call], Awaitable[Any]]) -> Any:
    """Run `script(call)` against one server (its filters persist between calls) with a block
    producer running; `call(method, *params)` is the answer's `result`, or its `error`."""

    async def run() -> Any:
        producer = BlockProducer(node, node.manifest.block_interval_ms)
        producer.start()
        try:
            server = RpcServer(node, producer)

            async def call(method: str, *params: Any) -> Any:
                request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
                body = await server.handle_body(orjson.dumps(request), origin=None)
                answer = orjson.loads(body or b"null")
                return answer.get("error") or answer["result"]

            return await asyncio.wait_for(script(call), RUN_TIMEOUT)
        finally:
            await producer.stop()

    return asyncio.run(run())


def rpc(node: Sequencer, method: str, *params: Any) -> Any:
    async def one(call: Call) -> Any:
        return await call(method, *params)

    return session(node, one)


def _word(value: int | str) -> str:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else value.to_bytes(32, "big")
    return raw.rjust(32, b"\x00").hex()


def transfer_data(to: str, amount: int) -> str:
    return TRANSFER + _word(to) + _word(amount)


BALANCES_SLOT = 4  # Token.sol: name, symbol, totalSupply, owner, then balanceOf


def balances_slot(holder: str) -> str:
    """The token's `balanceOf[holder]` slot (Solidity's mapping layout)."""
    return "0x" + keccak(bytes.fromhex(_word(holder) + _word(BALANCES_SLOT))).hex()


@dataclass(frozen=True, slots=True)
class Chain:
    """What the fixture built: a transaction of each type and an ERC-20 transfer, mined."""

    legacy: str
    access_list: str
    dynamic: str
    token_transfer: str  # emits Transfer(ALICE, BOB, 5)
    block: dict[str, Any]  # the token transfer's block, hydrated


def _signed(nonce: int, **fields: Any) -> str:
    tx = {"chainId": CHAIN_ID, "nonce": nonce, "gas": 100_000, "to": BOB, "value": 1, **fields}
    tx["to"] = to_checksum_address(tx["to"])
    return "0x" + bytes(Account.sign_transaction(tx, ALICE_KEY).raw_transaction).hex()


def build_chain(node: Sequencer) -> Chain:
    async def script(call: Call) -> Chain:
        nonce = int(await call("eth_getTransactionCount", ALICE, "latest"), 16)
        fee = {"maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9}
        raws = [
            _signed(nonce, gasPrice=10**9),
            _signed(
                nonce + 1,
                gasPrice=10**9,
                accessList=[{"address": to_checksum_address(BOB), "storageKeys": ()}],
            ),
            _signed(nonce + 2, **fee),
            _signed(nonce + 3, **fee, to=TOKEN, value=0, data=transfer_data(BOB, 5)),
        ]
        hashes = [await call("eth_sendRawTransaction", raw) for raw in raws]
        for tx_hash in hashes:
            while not isinstance(await call("eth_getTransactionReceipt", tx_hash), dict):
                await asyncio.sleep(0.01)
        receipt = await call("eth_getTransactionReceipt", hashes[3])
        assert receipt["status"] == "0x1", receipt
        block = await call("eth_getBlockByHash", receipt["blockHash"], True)
        legacy, access_list, dynamic, token_transfer = hashes
        return Chain(legacy, access_list, dynamic, token_transfer, block)

    chain: Chain = session(node, script)
    return chain


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sequencer, Chain]]:
    node = open_evm_app(tmp_path_factory.mktemp("spec"))
    try:
        yield node, build_chain(node)
    finally:
        node.close()


# ---- the spec's methods, with parameters on our chain ------------------------------------------


def simulate_payload() -> dict[str, Any]:
    """The spec's example (two chained transfers from an overridden balance) and a token
    transfer, which logs, in a second block."""
    rich, middle = (
        "0xc000000000000000000000000000000000000000",
        "0xc100000000000000000000000000000000000000",
    )
    return {
        "blockStateCalls": [
            {
                "stateOverrides": {rich: {"balance": "0x3e8"}},
                "calls": [
                    {"from": rich, "to": middle, "value": "0x3e8"},
                    {
                        "from": middle,
                        "to": "0xc200000000000000000000000000000000000000",
                        "value": "0x3e8",
                    },
                ],
            },
            {"calls": [{"from": ALICE, "to": TOKEN, "input": transfer_data(BOB, 1)}]},
        ]
    }


def spec_calls(chain: Chain) -> dict[str, list[list[Any]]]:
    """Each spec method's parameter lists, from its examples, on our chain. Filter methods take
    the string "FILTER" where a fresh filter's id goes."""
    block = chain.block
    number, block_hash = block["number"], block["hash"]
    index = next(
        t["transactionIndex"] for t in block["transactions"] if t["hash"] == chain.token_transfer
    )
    token_call = {"from": ALICE, "to": TOKEN, "input": transfer_data(BOB, 1)}
    log_filter = {
        "fromBlock": "0x0",
        "toBlock": "latest",
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC],
    }
    return {
        "eth_chainId": [[]],
        "eth_syncing": [[]],
        "eth_coinbase": [[]],
        "eth_accounts": [[]],
        "eth_blockNumber": [[]],
        "eth_config": [[]],
        "eth_capabilities": [[]],
        "eth_getBlockByHash": [[block_hash, False], [block_hash, True]],
        "eth_getBlockByNumber": [[number, False], [number, True], ["latest", True], ["0x0", False]],
        "eth_getHeaderByHash": [[block_hash]],
        "eth_getHeaderByNumber": [[number], ["latest"], ["pending"]],
        "eth_getBlockTransactionCountByHash": [[block_hash]],
        "eth_getBlockTransactionCountByNumber": [[number]],
        "eth_getBlockReceipts": [[number], [{"blockHash": block_hash}]],
        "eth_getBlockAccessList": [[number]],
        "eth_call": [[{"to": TOKEN, "input": BALANCE_OF + _word(ALICE)}, "latest"]],
        "eth_estimateGas": [[{"from": ALICE, "to": BOB, "value": "0x1"}], [token_call]],
        "eth_createAccessList": [[token_call, "latest"]],
        "eth_simulateV1": [[simulate_payload(), "latest"]],
        "eth_gasPrice": [[]],
        "eth_baseFee": [[]],
        "eth_blobBaseFee": [[]],
        "eth_maxPriorityFeePerGas": [[]],
        "eth_feeHistory": [["0x5", "latest", [20, 30]]],
        "eth_fillTransaction": [[{"from": ALICE, "to": BOB, "value": "0x1"}], [token_call]],
        "eth_newFilter": [[log_filter]],
        "eth_newBlockFilter": [[]],
        "eth_newPendingTransactionFilter": [[]],
        "eth_uninstallFilter": [["FILTER"]],
        "eth_getFilterChanges": [["BLOCK_FILTER"]],
        "eth_getFilterLogs": [["FILTER"]],
        "eth_getLogs": [[log_filter], [{"blockHash": block_hash}]],
        "eth_sign": [[ALICE, "0xdeadbeaf"]],
        "eth_signTransaction": [
            [
                {
                    "from": ALICE,
                    "to": BOB,
                    "gas": "0x76c0",
                    "gasPrice": "0x9184e72a000",
                    "value": "0x1",
                }
            ]
        ],
        "eth_getBalance": [[ALICE, "latest"], [NOBODY, number]],
        "eth_getStorageAt": [[TOKEN, balances_slot(BOB), "latest"]],
        "eth_getStorageValues": [[{TOKEN: [balances_slot(BOB), "0x0"], NOBODY: ["0x0"]}, "latest"]],
        "eth_getTransactionCount": [[ALICE, "latest"], [ALICE, "pending"]],
        "eth_getCode": [[TOKEN, "latest"]],
        "eth_getProof": [[TOKEN, [balances_slot(BOB), "0x0"], "latest"], [NOBODY, [], "latest"]],
        "eth_sendTransaction": [[{"from": ALICE, "to": BOB, "value": "0x1"}]],
        "eth_sendRawTransaction": [["RAW"]],
        "eth_getTransactionByHash": [[chain.legacy], [chain.access_list], [chain.dynamic]],
        "eth_getTransactionByBlockHashAndIndex": [[block_hash, index]],
        "eth_getTransactionByBlockNumberAndIndex": [[number, index]],
        "eth_getTransactionReceipt": [[chain.token_transfer], [chain.legacy]],
        "eth_subscribe": [],  # WebSocket only: tests/e2e/test_filters_and_subscriptions.py
        "eth_unsubscribe": [],
    }


# Methods whose spec answer the node cannot give yet, and why; each must still fail, so that a
# fix shows here.
KNOWN_GAPS: dict[str, str] = {}  # method -> why it fails the schema today
# method -> the error code the spec gives for what our chain answers with an error
SPEC_ERRORS = {"eth_getBlockAccessList": -32001}  # pre-Amsterdam blocks: resource not found


async def _fresh_raw(call: Call) -> str:
    nonce = int(await call("eth_getTransactionCount", ALICE, "pending"), 16)
    return _signed(nonce, maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=0)


async def _new_block_filter(call: Call) -> str:
    """A block filter with a block after it (an empty list of changes fits both of
    FilterResults' oneOf branches, so no empty answer is in the schema)."""
    created: str = await call("eth_newBlockFilter")
    tx_hash = await call("eth_sendRawTransaction", await _fresh_raw(call))
    while not isinstance(await call("eth_getTransactionReceipt", tx_hash), dict):
        await asyncio.sleep(0.01)
    return created


async def _answer(call: Call, method: str, params: list[Any]) -> Any:
    if params == ["FILTER"]:
        params = [await call("eth_newFilter", {"fromBlock": "0x0", "address": TOKEN})]
    if params == ["BLOCK_FILTER"]:
        params = [await _new_block_filter(call)]
    if params == ["RAW"]:
        params = [await _fresh_raw(call)]
    return await call(method, *params)


def check_methods(
    call_all: Callable[[list[tuple[str, list[Any]]]], list[Any]], chain: Chain
) -> dict[str, str]:
    """method -> why it fails, for every spec method whose answer is an error or breaks its
    result schema (KNOWN_GAPS included: the caller takes them out)."""
    calls = spec_calls(chain)
    cases = [(name, params) for name in sorted(load_spec()) for params in calls[name]]
    answers = call_all(cases)
    failures: dict[str, str] = {}
    for (name, params), answer in zip(cases, answers, strict=True):
        if (
            isinstance(answer, dict)
            and set(answer) <= {"code", "message", "data"}
            and "code" in answer
        ):
            if SPEC_ERRORS.get(name) != answer["code"]:
                failures.setdefault(name, f"{params!r} answered error {answer}")
            continue
        errors = schema_errors(name, answer)
        if errors:
            failures.setdefault(name, f"{params!r}: " + "; ".join(errors[:3]))
    return failures


def _in_process(node: Sequencer) -> Callable[[list[tuple[str, list[Any]]]], list[Any]]:
    def call_all(cases: list[tuple[str, list[Any]]]) -> list[Any]:
        async def script(call: Call) -> list[Any]:
            return [await _answer(call, name, params) for name, params in cases]

        answers: list[Any] = session(node, script)
        return answers

    return call_all


def _report(failures: dict[str, str], total: int) -> str:
    lines = [f"{len(failures)} of {total} spec methods fail:"]
    lines += [f"  {name}: {why}" for name, why in sorted(failures.items())]
    return "\n".join(lines)


# ---- the tests ---------------------------------------------------------------------------------


def test_the_vendored_spec_loads_and_every_reference_resolves() -> None:
    methods = load_spec()
    assert len(methods) >= 45 and all(name.startswith("eth_") for name in methods)
    for name, spec in methods.items():
        if name != "eth_subscribe":  # its parameter schema is not vendored; its result is
            jsonschema_rs.Draft201909Validator(spec.result)
    for ref in re.findall(
        r"#/\$defs/(\w+)", orjson.dumps(load_spec()["eth_simulateV1"].result).decode()
    ):
        assert ref in load_spec()["eth_simulateV1"].result["$defs"], ref


def test_every_spec_method_has_parameters_here_and_a_handler_on_the_node(
    app: tuple[Sequencer, Chain],
) -> None:
    node, chain = app
    calls = spec_calls(chain)
    assert sorted(calls) == sorted(load_spec()), "spec methods without parameters here"
    missing = [
        name
        for name in load_spec()
        if name not in SERVED_HERE  # eth_subscribe: over WebSocket only, as geth
        and isinstance(answer := rpc(node, name), dict)
        and answer.get("code") == -32601
    ]
    assert not missing, f"spec methods the node does not serve: {missing}"


def test_every_spec_method_answers_in_its_schema(app: tuple[Sequencer, Chain]) -> None:
    node, chain = app
    failures = check_methods(_in_process(node), chain)
    still = {name for name in KNOWN_GAPS if name in failures}
    assert still == set(KNOWN_GAPS), f"fixed, take it out of KNOWN_GAPS: {set(KNOWN_GAPS) - still}"
    unexpected = {k: v for k, v in failures.items() if k not in KNOWN_GAPS}
    assert not unexpected, _report(unexpected, len(load_spec()))


# ---- the new methods, beyond their shape -------------------------------------------------------


def verify_proof_nodes(root: str, key: bytes, nodes: list[str]) -> bytes | None:
    """The value `nodes` prove for `key` under `root` (None: absent), as services/rpc/proofs.py
    documents the format; AssertionError if they prove nothing."""
    path = int.from_bytes(keccak(key), "big")
    expected = bytes.fromhex(root[2:])
    for depth, text in enumerate(bytes.fromhex(n[2:]) for n in nodes):
        assert keccak(text) == expected, f"node {depth} does not hash to its reference"
        if text[0] == 1:
            assert len(text) == 65
            expected = text[33:] if (path >> (255 - depth)) & 1 else text[1:33]
            continue
        assert text[0] == 0 and depth == len(nodes) - 1, "a leaf ends the path"
        return text[33:] if text[1:33] == keccak(key) else None
    assert expected == EMPTY_ROOT, "the path ends on an interior node with a child"
    return None


def test_eth_get_proof_is_eip_1186_over_our_trie(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    slot = balances_slot(BOB)
    proof = rpc(node, "eth_getProof", TOKEN, [slot, "0x63"], "latest")  # 0x63: never written
    root = proof["storageHash"]
    assert root == "0x" + node.head.state_root.hex()
    account = verify_proof_nodes(root, b"\x00" + bytes.fromhex(TOKEN[2:]), proof["accountProof"])
    assert account is not None and int.from_bytes(account[8:], "big") == int(proof["balance"], 16)
    assert int.from_bytes(account[:8], "big") == int(proof["nonce"], 16)
    code = rpc(node, "eth_getCode", TOKEN, "latest")
    assert proof["codeHash"] == "0x" + keccak(bytes.fromhex(code[2:])).hex()
    held, empty = proof["storageProof"]
    key = b"\x01" + bytes.fromhex(TOKEN[2:]) + bytes.fromhex(slot[2:])
    value = verify_proof_nodes(root, key, held["proof"])
    assert value is not None and int.from_bytes(value, "big") == int(held["value"], 16) >= 5
    assert held["value"] == hex(int(rpc(node, "eth_getStorageAt", TOKEN, slot, "latest"), 16))
    assert empty["value"] == "0x0"
    key = b"\x01" + bytes.fromhex(TOKEN[2:]) + (0x63).to_bytes(32, "big")
    assert verify_proof_nodes(root, key, empty["proof"]) is None
    nobody = rpc(node, "eth_getProof", NOBODY, [], "latest")
    assert (
        verify_proof_nodes(root, b"\x00" + bytes.fromhex(NOBODY[2:]), nobody["accountProof"])
        is None
    )
    assert (nobody["balance"], nobody["nonce"], nobody["codeHash"]) == (
        "0x0",
        "0x0",
        "0x" + keccak(b"").hex(),
    )


def test_eth_get_proof_names_the_blocks_it_keeps(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    head = node.head.number
    assert (
        rpc(node, "eth_getProof", TOKEN, [], hex(head))["storageHash"]
        == "0x" + node.head.state_root.hex()
    )
    old = rpc(node, "eth_getProof", TOKEN, [], "0x0")
    assert old["code"] == -32000 and "newest block only" in old["message"]
    too_many = rpc(node, "eth_getProof", TOKEN, ["0x0"] * 257, "latest")
    assert too_many["code"] == -32005


def test_proof_nodes_of_an_empty_trie_are_none() -> None:
    from vm.commitment import StateTree

    assert proof_nodes(StateTree().prove(b"\x00" + bytes(20))) == []
    tree = StateTree([(b"k", b"v")])
    assert (
        verify_proof_nodes(
            "0x" + tree.root.hex(), b"k", ["0x" + n.hex() for n in proof_nodes(tree.prove(b"k"))]
        )
        == b"v"
    )


def test_get_storage_values_is_get_storage_at_for_many(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    slot = balances_slot(BOB)
    values = rpc(node, "eth_getStorageValues", {TOKEN: [slot, "0x0"], NOBODY: ["0x0"]}, "latest")
    assert values == {
        TOKEN: [rpc(node, "eth_getStorageAt", TOKEN, s, "latest") for s in (slot, "0x0")],
        NOBODY: ["0x" + "00" * 32],
    }
    assert rpc(node, "eth_getStorageValues", {}, "latest")["code"] == -32602
    assert rpc(node, "eth_getStorageValues", {TOKEN: ["0x0"] * 1025}, "latest")["code"] == -32005


def test_simulate_v1_chains_calls_and_blocks(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    blocks = rpc(node, "eth_simulateV1", simulate_payload(), "latest")
    first, second = blocks
    assert [c["status"] for c in first["calls"]] == ["0x1", "0x1"]  # the second spends the first's
    assert [c["gasUsed"] for c in first["calls"]] == ["0x5208", "0x5208"]
    assert int(second["number"], 16) == int(first["number"], 16) + 1 == node.committed.number + 2
    assert second["parentHash"] == first["hash"]
    (transfer,) = second["calls"]
    (log,) = transfer["logs"]
    assert (log["address"], log["topics"][0]) == (TOKEN, TRANSFER_TOPIC)
    assert (
        log["transactionHash"] == second["transactions"][0] and log["blockHash"] == second["hash"]
    )
    reverted = rpc(
        node,
        "eth_simulateV1",
        {
            "blockStateCalls": [
                {"calls": [{"from": BOB, "to": TOKEN, "input": transfer_data(ALICE, 10**30)}]}
            ]
        },
    )
    (call,) = reverted[0]["calls"]
    assert call["status"] == "0x0" and call["error"]["code"] == -32000 and call["logs"] == []
    assert schema_errors("eth_simulateV1", reverted) == []


def test_simulate_v1_validation_and_bounds(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    nonce = int(rpc(node, "eth_getTransactionCount", ALICE, "latest"), 16)
    wrong = {"from": ALICE, "to": BOB, "nonce": hex(nonce + 5)}
    answer = rpc(
        node, "eth_simulateV1", {"blockStateCalls": [{"calls": [wrong]}], "validation": True}
    )
    assert answer["code"] == -32000 and "nonce too high" in answer["message"]
    poor = {"blockStateCalls": [{"calls": [{"from": NOBODY, "to": BOB, "value": "0x1"}]}]}
    assert "insufficient funds" in rpc(node, "eth_simulateV1", poor)["message"]
    backwards = {"blockStateCalls": [{"blockOverrides": {"number": "0x1"}}]}
    assert rpc(node, "eth_simulateV1", backwards)["code"] == -32602
    too_many: dict[str, Any] = {"blockStateCalls": [{}] * (MAX_SIMULATE_BLOCKS + 1)}
    assert rpc(node, "eth_simulateV1", too_many)["code"] == -32005
    unsupported_ones: list[dict[str, Any]] = [
        {"blockStateCalls": [], "traceTransfers": True},
        {"blockStateCalls": [{"blockOverrides": {"withdrawals": []}}]},
    ]
    for unsupported in unsupported_ones:
        assert rpc(node, "eth_simulateV1", unsupported)["code"] == -32602
    big = {"from": ALICE, "to": BOB, "gas": hex(60_000_000)}
    over_cap = rpc(node, "eth_simulateV1", {"blockStateCalls": [{"calls": [big]}]})
    assert over_cap["code"] == -32005  # past what is left of the 50M gas cap


def test_fill_transaction_fills_without_signing(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    nonce = rpc(node, "eth_getTransactionCount", ALICE, "pending")
    tx = rpc(node, "eth_fillTransaction", {"from": ALICE, "to": BOB, "value": "0x5"})["tx"]
    assert (tx["nonce"], tx["gas"], tx["type"], tx["to"]) == (nonce, "0x5208", "0x2", BOB)
    assert tx["maxFeePerGas"] == rpc(node, "eth_baseFee") and tx["chainId"] == hex(CHAIN_ID)
    legacy = rpc(node, "eth_fillTransaction", {"from": BOB, "to": ALICE, "gasPrice": "0x3b9aca00"})[
        "tx"
    ]
    assert (legacy["type"], legacy["gasPrice"], legacy["from"]) == ("0x0", "0x3b9aca00", BOB)


def test_pending_block_is_the_next_one_as_web3_expects(app: tuple[Sequencer, Chain]) -> None:
    """web3.py's EthModuleTest: number latest + 1 (sync), hash None (async)."""
    node, _ = app
    pending = rpc(node, "eth_getBlockByNumber", "pending", False)
    latest = rpc(node, "eth_getBlockByNumber", "latest", False)
    assert int(pending["number"], 16) == int(latest["number"], 16) + 1
    assert (pending["hash"], pending["nonce"], pending["miner"]) == (None, None, None)
    assert pending["parentHash"] == latest["hash"] and pending["transactions"] == []
    assert rpc(node, "eth_getHeaderByNumber", "pending") is None


def test_config_and_capabilities_say_what_the_chain_has(app: tuple[Sequencer, Chain]) -> None:
    node, _ = app
    assert SPEC == "Cancun", "eth_config's precompiles are Cancun's: update services/rpc/eth.py"
    current = rpc(node, "eth_config")["current"]
    assert current["chainId"] == hex(CHAIN_ID) and current["blobSchedule"]["max"] == 0
    assert current["precompiles"]["KZG_POINT_EVALUATION"] == "0x" + "00" * 19 + "0a"
    caps = rpc(node, "eth_capabilities")
    assert caps["head"]["number"] == rpc(node, "eth_blockNumber")
    assert caps["blocks"] == {"disabled": False, "oldestBlock": "0x0"}
    assert caps["stateproofs"]["deleteStrategy"]["retentionBlocks"] == "0x1"


def test_simulate_v1_as_web3_py_asks_less_trace_transfers(app: tuple[Sequencer, Chain]) -> None:
    """web3.py's test_eth_simulate_v1 without `traceTransfers` (refused: not implemented)."""
    node, _ = app
    payer = "0xc100000000000000000000000000000000000000"
    block: dict[str, Any] = {
        "blockOverrides": {"baseFeePerGas": "0xa"},
        "stateOverrides": {payer: {"balance": hex(500_000_000)}},
        "calls": [
            {"from": payer, "to": payer, "maxFeePerGas": "0xa", "maxPriorityFeePerGas": "0xa"}
        ],
    }
    (result,) = rpc(
        node, "eth_simulateV1", {"blockStateCalls": [block], "validation": True}, "latest"
    )
    assert result["baseFeePerGas"] == "0xa"
    assert {k: result["calls"][0][k] for k in ("status", "gasUsed")} == {
        "status": "0x1",
        "gasUsed": "0x5208",
    }
    low = {**block, "calls": [{**block["calls"][0], "maxFeePerGas": "0x9"}]}
    answer = rpc(node, "eth_simulateV1", {"blockStateCalls": [low], "validation": True})
    assert "max fee per gas less than block base fee" in answer["message"]


def test_simulate_v1_spends_the_loop_budget_or_asks_for_isolation(
    app: tuple[Sequencer, Chain],
) -> None:
    """A cheap simulation runs within the batch's budget on the loop; one that would need more
    than is left asks to be run isolated (services/rpc/server.py), having spent no more."""
    from sequencer.simulate import Budget, NeedsIsolation
    from services.rpc import eth
    from services.rpc.params import simulate_payload as parse

    node, _ = app
    budget = Budget(1_000_000)
    eth.simulate_v1(node, parse(simulate_payload()), gas_cap=50_000_000, budget=budget)
    assert 0 < 1_000_000 - budget.remaining < 200_000
    loop = {
        "blockStateCalls": [{"calls": [{"from": ALICE, "to": TOKEN, "input": "0x" + "ff" * 4}]}]
    }
    spent = Budget(30_000)
    with pytest.raises(NeedsIsolation):
        eth.simulate_v1(node, parse(loop), gas_cap=50_000_000, budget=spent)
    assert spent.remaining >= 0
