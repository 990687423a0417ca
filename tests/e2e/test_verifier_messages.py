"""Verifiers check cross-app messages against the source chain's DA data, with real processes:
`rollup up --verify` with the token and orderbook templates, which message each other (a
deposit call, and the result that runs the token's callback). Both verifiers report in sync,
each having checked the message it received against the other chain's batches: on the L1
(`--da ethereum`), or in the other app's local store (`--da local`). Then destination chains
built in process execute messages the token chain never sent (a mint of 10^30 tokens), or
sent from a block it has not posted, and post them to the same inbox with their own
batchers: their verifier processes report the first diverged, naming the message, and the
second waiting on the token chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from da.batch import batch_from_blocks
from da.channel import encode_channel
from da.commitment import encode_refs
from da.ethereum import EthereumDA
from da.frames import encode_frames, encode_payload
from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from rollup.manifest import parse_manifest
from rollup.messages import CALL, CrossMessage
from rollup.outputs import output_root
from rollup.types import Address, Block, BlockEnv
from services.keys import load_key
from services.l1setup import BatcherSpec, prepare_l1
from services.verifier import build_replayer
from tests.conftest import BOOK_CHAIN, TOKEN_CHAIN, render_book, render_pair
from tests.e2e.devnet import detached_devnet, rollup
from tests.support import rpc, wait_for
from vm.native.abi import encode_values, selector
from vm.state import DictReader, State
from vm.stf import execute_block

pytestmark = pytest.mark.e2e

FORGED_CHAIN, EARLY_CHAIN = 903003, 903004
DEADLINE = 90.0


@pytest.fixture
def devnet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    token, book = render_pair(tmp_path)
    with detached_devnet(
        tmp_path / "data", "--da", request.param, "--verify", str(token), str(book)
    ) as net:
        yield net.data_dir, net.state


def deposit(token: dict[str, Any], book: dict[str, Any], amount: int) -> int:
    """Dev account 0 sends `amount` tokens to the orderbook; the block that sent it."""
    alice = Account.from_key(DEV_KEYS[0])
    data = selector("send_to(uint64,address,address,uint256)") + encode_values(
        ["uint64", "address", "address", "uint256"],
        [BOOK_CHAIN, bytes.fromhex(book["address"][2:]), bytes.fromhex(alice.address[2:]), amount],
    )
    nonce = int(rpc(token["rpc_url"], "eth_getTransactionCount", alice.address, "pending"), 16)
    tx = alice.sign_transaction(
        {
            "type": 2,
            "chainId": TOKEN_CHAIN,
            "nonce": nonce,
            "to": token["address"],
            "value": 0,
            "gas": 1_000_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 0,
            "data": data,
        }
    )
    tx_hash = rpc(token["rpc_url"], "eth_sendRawTransaction", "0x" + tx.raw_transaction.hex())
    receipt = rpc(token["rpc_url"], "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1", receipt
    return int(receipt["blockNumber"], 16)


def verifier_status(app: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(
        app["verifier"]["status_url"], timeout=5.0, trust_env=False
    ).json()
    return body


def forge(app_dir: Path, inbound: Sequence[CrossMessage]) -> Block:
    """Block 1 of the app's chain as a dishonest sequencer builds it with the one STF:
    executing `inbound` as if the token chain had sent them."""
    _name, chain = build_replayer(app_dir)
    genesis = chain.head
    env = BlockEnv(
        1, int(time.time()), genesis.coinbase, genesis.base_fee, genesis.gas_limit, chain.chain_id
    )
    executed = execute_block(State(DictReader(chain.world)), env, chain.vm, inbound, [], True)
    assert [r.status for r in executed.inbound_receipts] == [1] * len(inbound)
    return executed.seal(genesis, env.timestamp * 1000, chain.tree).block


def post(l1_rpc: str, inbox: bytes, batcher_key: Path, block: Block) -> None:
    """Post `block` to the L1 (calldata) and commit it on the inbox, as a batcher does."""
    chain_id = block.header.chain_id
    batcher = L1Client(l1_rpc, "0x" + load_key(batcher_key).hex())
    channel = encode_channel(batch_from_blocks(chain_id, [block]))
    da = EthereumDA(batcher, chain_id)
    refs = [
        da.submit(encode_payload([frame]))
        for frame in encode_frames(os.urandom(16), channel, 100_000)
    ]
    BatchInbox(batcher, inbox).commit(
        chain_id, 1, 1, keccak(channel), output_root(block.header), encode_refs(refs)
    )


def verify_once(app_dir: Path, l1_rpc: str, inbox: str, from_block: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.verifier",
            "--app-dir",
            str(app_dir),
            "--l1-rpc",
            l1_rpc,
            "--inbox",
            inbox,
            "--from-l1-block",
            str(from_block),
            "--once",
            "--json",
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, ETH_HASH_BACKEND="pysha3"),
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    status: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1, status
    return status


def exchange_and_verify(data_dir: Path, token: dict[str, Any], book: dict[str, Any]) -> int:
    """A deposit call from the token chain, and the orderbook's result back: each verifier
    checks the one message its chain received against the other chain's posted batches.
    Returns the token block that sent the call."""
    sent_at = deposit(token, book, 5 * 10**18)

    def both_verified() -> bool:
        for app in (token, book):
            status = verifier_status(app)
            head = int(rpc(app["rpc_url"], "eth_blockNumber"), 16)
            safe = int(rpc(app["rpc_url"], "eth_getBlockByNumber", "safe", False)["number"], 16)
            if not (
                status["status"] == "in_sync"
                and status["block"] == head == safe
                and status["messages_checked"] == 1
            ):
                return False
        return True

    wait_for(
        both_verified,
        "both verifiers to check the message their chain received",
        DEADLINE,
        interval=0.25,
    )
    verify = rollup("verify", "book", "--data-dir", str(data_dir), "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    checked = json.loads(verify.stdout)
    assert checked["status"] == "in_sync" and checked["messages_checked"] == 1
    return sent_at


@pytest.mark.parametrize("devnet", ["local"], indirect=True)
def test_on_local_da_each_verifier_reads_the_other_app_s_store(
    devnet: tuple[Path, dict[str, Any]],
) -> None:
    data_dir, state = devnet
    apps = {a["name"]: a for a in state["apps"]}
    exchange_and_verify(data_dir, apps["token"], apps["book"])


@pytest.mark.parametrize("devnet", ["ethereum"], indirect=True)
def test_verifiers_check_messages_against_the_source_chain(
    devnet: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data_dir, state = devnet
    apps = {a["name"]: a for a in state["apps"]}
    token, book = apps["token"], apps["book"]
    sent_at = exchange_and_verify(data_dir, token, book)

    # Two destination chains built in process, each with its own batcher on the same inbox:
    # one mints from a token block that sent it nothing, one from a block not posted yet.
    l1_rpc, inbox = state["l1"]["rpc_url"], state["da"]["inbox"]
    from_block = state["da"]["from_block"]
    forged_dir = render_book(tmp_path / "forged", "forged", FORGED_CHAIN)
    early_dir = render_book(tmp_path / "early", "early", EARLY_CHAIN)
    batchers = [
        BatcherSpec(name, chain_id, tmp_path / f"{name}-batcher.key")
        for name, chain_id in (("forged", FORGED_CHAIN), ("early", EARLY_CHAIN))
    ]
    setup = prepare_l1(l1_rpc, batchers, data_dir / "l1", fund_owner_from=DEV_KEYS[0])
    assert "0x" + setup.inbox.hex() == inbox.lower()
    token_app = bytes.fromhex(token["address"][2:])
    mallory = bytes.fromhex(Account.from_key(DEV_KEYS[2]).address[2:])
    receive = selector("receive_tokens(address,uint256)")

    def mint(dst_chain: int, dst_app: Path, src_block: int) -> CrossMessage:
        target = parse_manifest((dst_app / "rollup.toml").read_text()).address
        return CrossMessage(
            src_chain=TOKEN_CHAIN,
            src_block=src_block,
            src_index=0,
            channel_nonce=0,
            dst_chain=dst_chain,
            sender=Address(token_app),
            target=Address(target),
            kind=CALL,
            gas=500_000,
            expiry=2**40,
            data=receive + encode_values(["address", "uint256"], [mallory, 10**30]),
        )

    forged_message = mint(FORGED_CHAIN, forged_dir, sent_at)
    post(l1_rpc, setup.inbox, setup.batchers["forged"], forge(forged_dir, [forged_message]))
    status = verify_once(forged_dir, l1_rpc, inbox, from_block)
    assert status["status"] == "diverged" and status["block"] == 1, status
    assert status["reason"] == (
        f"inbound message 0x{forged_message.id.hex()} from chain "
        f"{TOKEN_CHAIN} block {sent_at} index 0 is not in chain "
        f"{TOKEN_CHAIN}'s DA data"
    )

    early_message = mint(EARLY_CHAIN, early_dir, 1_000_000)
    post(l1_rpc, setup.inbox, setup.batchers["early"], forge(early_dir, [early_message]))
    status = verify_once(early_dir, l1_rpc, inbox, from_block)
    assert status["status"] == "in_sync" and status["verified"] == 0, status
    waiting = status["waiting"]
    assert waiting.startswith(
        f"source chain {TOKEN_CHAIN} has not posted block 1000000 yet (its newest posted block is "
    )
    assert waiting.endswith(f"inbound message 0x{early_message.id.hex()} of block 1 comes from it")

    # the devnet's own verifiers are unaffected
    assert verifier_status(book)["status"] == verifier_status(token)["status"] == "in_sync"
