"""The node's side of the admin API: token files, a paused `Sequencer` (refuses, keeps its
pool, builds nothing, resumes where it stopped) and the token-protected admin_ JSON-RPC
namespace, through `RpcServer.handle_body` in-process."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from eth_account import Account

from rollup.errors import SequencerPaused
from rollup.genesis import DEV_KEYS
from sequencer.node import Sequencer
from services.admin.tokens import Role, ensure_tokens, read_token
from services.keys import KeyFileError
from services.node import open_node
from services.producer import BlockProducer
from services.rpc import admin
from services.rpc.server import RpcServer
from services.scaffold import scaffold
from vm.state import get_account

CHAIN_ID = 901001
GWEI = 10**9


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Sequencer]:
    app_dir = scaffold(tmp_path / "app", "token", "tok", CHAIN_ID)
    sequencer = open_node(app_dir, tmp_path / "data")
    try:
        yield sequencer
    finally:
        sequencer.close()


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The node's admin token, named to it as the devnet names it ($ROLLUP_ADMIN_TOKEN_FILE)."""
    tokens = ensure_tokens(tmp_path / "devnet")
    monkeypatch.setenv("ROLLUP_ADMIN_TOKEN_FILE", str(tokens.admin_file))
    admin.expected_token.cache_clear()
    yield tokens.admin
    admin.expected_token.cache_clear()


def transfer(node: Sequencer, key_index: int = 0) -> bytes:
    account = Account.from_key(DEV_KEYS[key_index])
    nonce = get_account(node.state, bytes.fromhex(account.address[2:]))[0]
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": "0x" + "42" * 20,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return bytes(account.sign_transaction(tx).raw_transaction)


def handle(node: Sequencer, method: str, *params: Any, origin: str | None = None) -> Any:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})

    async def run() -> bytes | None:
        producer = BlockProducer(node, node.manifest.block_interval_ms)
        producer.start()
        try:
            server = RpcServer(node, producer)
            return await asyncio.wait_for(server.handle_body(body, origin=origin), 20)
        finally:
            await producer.stop()

    out = asyncio.run(run())
    assert out is not None
    return orjson.loads(out)


# ---- token files ----


def test_tokens_are_made_once_in_private_files(tmp_path: Path) -> None:
    tokens = ensure_tokens(tmp_path)
    assert stat.S_IMODE(tokens.admin_file.parent.stat().st_mode) == 0o700
    for path in (tokens.admin_file, tokens.read_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.admin != tokens.read and len(tokens.admin) >= 32
    assert ensure_tokens(tmp_path) == tokens  # the second start reads them
    assert tokens.role_of(tokens.admin) is Role.ADMIN
    assert tokens.role_of(tokens.read) is Role.READ
    assert tokens.role_of(tokens.admin + "x") is None
    assert tokens.role_of("") is None


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    tokens = ensure_tokens(tmp_path)
    os.chmod(tokens.read_file, 0o644)
    with pytest.raises(KeyFileError, match="accessible by other users"):
        read_token(tokens.read_file)


# ---- the paused sequencer ----


def test_a_paused_sequencer_refuses_keeps_its_pool_and_resumes_where_it_stopped(
    node: Sequencer,
) -> None:
    pooled = node.submit_raw(transfer(node, 0))
    head = node.head.number
    woken: list[bool] = []
    node.on_resume.append(lambda: woken.append(True))
    node.pause()
    with pytest.raises(SequencerPaused, match="sequencer paused"):
        node.submit_raw(transfer(node, 1))
    assert pooled.hash in node.mempool.by_hash  # kept
    assert not node.has_work()
    assert node.produce(1_800_000_000_000) is None
    assert node.build_block(1_800_000_000_000, empty_ok=True) is None  # not even a heartbeat
    assert node.head.number == head
    node.resume()
    assert woken == [True]
    sealed = node.produce(1_800_000_000_000)
    assert sealed is not None and sealed.block.header.number == head + 1
    assert [tx.hash for tx in sealed.block.transactions] == [pooled.hash]
    node.submit_raw(transfer(node, 1))  # accepted again


# ---- the admin_ namespace ----


def test_admin_methods_are_disabled_without_a_token_file(
    node: Sequencer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROLLUP_ADMIN_TOKEN_FILE", raising=False)
    admin.expected_token.cache_clear()
    error = handle(node, "admin_pauseSequencer", "anything")["error"]
    assert error["code"] == -32000 and "disabled" in error["message"]
    assert not node.paused


def test_admin_methods_need_the_token(node: Sequencer, token: str) -> None:
    for given in ("wrong", token[:-1], token + "x"):
        error = handle(node, "admin_pauseSequencer", given)["error"]
        assert error["message"] == "wrong admin token"
    assert handle(node, "admin_pauseSequencer")["error"]["code"] == -32602  # no token at all
    assert handle(node, "admin_pauseSequencer", 7)["error"]["code"] == -32602
    assert not node.paused


def test_pages_of_other_origins_cannot_call_admin_methods(node: Sequencer, token: str) -> None:
    answer = handle(node, "admin_pauseSequencer", token, origin="https://evil.example")
    assert "not available to pages of other origins" in answer["error"]["message"]
    assert not node.paused


def test_pause_refuses_transactions_with_a_clear_error_and_resume_accepts_them(
    node: Sequencer, token: str
) -> None:
    status = handle(node, "admin_status", token)["result"]
    assert status["paused"] is False and status["head"] == node.committed.number
    assert handle(node, "admin_pauseSequencer", token)["result"]["paused"] is True
    raw = "0x" + transfer(node, 2).hex()
    error = handle(node, "eth_sendRawTransaction", raw)["error"]
    assert error["code"] == -32002
    assert error["message"].startswith("sequencer paused")
    assert handle(node, "admin_status", token)["result"]["paused"] is True
    assert handle(node, "admin_resumeSequencer", token)["result"]["paused"] is False
    answer = handle(node, "eth_sendRawTransaction", raw)
    assert "result" in answer, answer
    assert node.transaction(bytes.fromhex(answer["result"][2:])) is not None
