"""The BatchInbox contract and the L1 client on a real EVM (Anvil): authorship, the strict
block order the poster relies on, events read back as commitments, both Ethereum DA modes,
and clear errors for what the L1 refuses or cannot decode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.build import CONTRACTS_DIR, compile_contract
from bridge.inbox import COMMITTED_TOPIC, INBOX_ABI, BatchInbox, deploy_inbox
from bridge.l1 import L1Client, L1Rejected, L1Unavailable
from da.commitment import decode_refs, encode_refs
from da.ethereum import EthereumDA
from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess, free_port
from services.l1setup import batcher_key, prepare_l1

pytestmark = pytest.mark.e2e

CHAIN = 901001


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    with AnvilProcess() as process:
        yield process


@pytest.fixture(scope="module")
def inbox(anvil: AnvilProcess) -> BatchInbox:
    deployed, _block = deploy_inbox(L1Client(anvil.rpc_url, DEV_KEYS[0]))
    deployed.set_batcher(CHAIN, L1Client(anvil.rpc_url, DEV_KEYS[1]).address)
    return deployed


def _as(anvil: AnvilProcess, inbox: BatchInbox, key: str) -> BatchInbox:
    return BatchInbox(L1Client(anvil.rpc_url, key), inbox.address)


def test_the_kept_abi_is_the_compiled_one() -> None:
    compiled = compile_contract(CONTRACTS_DIR / "BatchInbox.sol", "BatchInbox")
    assert json.dumps(compiled.abi, sort_keys=True) == json.dumps(INBOX_ABI, sort_keys=True)


def test_commitments_are_recorded_in_order(anvil: AnvilProcess, inbox: BatchInbox) -> None:
    batcher = _as(anvil, inbox, DEV_KEYS[1])
    start = inbox.next_block(CHAIN)
    first = batcher.commit(CHAIN, start, start + 4, keccak(b"d1"), keccak(b"o1"), b"\x01ref")
    second = batcher.commit(CHAIN, start + 5, start + 5, keccak(b"d2"), keccak(b"o2"), b"")
    assert second.index == first.index + 1
    assert (second.first_block, second.last_block) == (start + 5, start + 5)
    assert inbox.next_block(CHAIN) == start + 6
    read = inbox.commitments(CHAIN, first.l1_block)
    assert read[-2:] == [first, second]
    assert (first.data_hash, first.output_root, first.da_ref) == (keccak(b"d1"), keccak(b"o1"),
                                                                  b"\x01ref")  # fmt: skip
    assert inbox.commitments(CHAIN + 1, 0) == []


def test_the_inbox_refuses_gaps_repeats_strangers_and_empty_ranges(
    anvil: AnvilProcess, inbox: BatchInbox
) -> None:
    batcher = _as(anvil, inbox, DEV_KEYS[1])
    next_block = inbox.next_block(CHAIN)
    refusals = [
        (lambda: batcher.commit(CHAIN, next_block + 1, next_block + 1, bytes(32), bytes(32), b""),
         f"NotNextBlock({CHAIN}, {next_block}, {next_block + 1})"),  # a gap
        (lambda: batcher.commit(CHAIN, next_block - 1, next_block, bytes(32), bytes(32), b""),
         f"NotNextBlock({CHAIN}, {next_block}, {next_block - 1})"),  # a repeat
        (lambda: _as(anvil, inbox, DEV_KEYS[2]).commit(CHAIN, next_block, next_block, bytes(32),
                                                       bytes(32), b""), "NotBatcher"),
        (lambda: batcher.commit(CHAIN, next_block, next_block - 1, bytes(32), bytes(32), b""),
         "EmptyRange"),
        (lambda: _as(anvil, inbox, DEV_KEYS[1]).set_batcher(CHAIN, bytes(20)), "NotOwner"),
        (lambda: batcher.commit(CHAIN + 7, 1, 1, bytes(32), bytes(32), b""), "NotBatcher"),
    ]  # fmt: skip
    for call, reason in refusals:
        with pytest.raises(L1Rejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
            call()
    assert inbox.next_block(CHAIN) == next_block  # nothing moved


@pytest.mark.parametrize("mode", ["calldata", "blobs"])
def test_ethereum_da_on_anvil(anvil: AnvilProcess, mode: str) -> None:
    l1 = L1Client(anvil.rpc_url, DEV_KEYS[3])
    da = EthereumDA(l1, CHAIN, mode)
    data = bytes(range(256)) * (600 if mode == "blobs" else 100)
    ref = da.submit(data)
    reader = EthereumDA(L1Client(anvil.rpc_url), CHAIN)  # a verifier: no key, any mode
    assert reader.get(ref) == data
    assert decode_refs(encode_refs([ref, ref])) == [ref, ref]


class GarbageL1(L1Client):
    """An L1 answering eth_getLogs with a log that is not a BatchCommitted event."""

    def logs(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [{"address": "0x" + "00" * 20, "topics": [COMMITTED_TOPIC, bytes(32)],
                 "data": b"\x00\x01", "blockNumber": 7, "transactionHash": b"\xab" * 32,
                 "logIndex": 0, "transactionIndex": 0, "blockHash": bytes(32)}]  # fmt: skip

    def block_number(self, tag: str = "latest") -> int:
        return 10


def test_malformed_events_and_an_unreachable_l1_raise_clear_errors(
    anvil: AnvilProcess, inbox: BatchInbox
) -> None:
    garbage = BatchInbox(GarbageL1(anvil.rpc_url), inbox.address)
    with pytest.raises(L1Rejected, match="malformed BatchCommitted log .*L1 block 7"):
        garbage.commitments(CHAIN, 0)
    gone = BatchInbox(L1Client(f"http://127.0.0.1:{free_port()}", DEV_KEYS[1], timeout=1.0),
                      inbox.address)  # fmt: skip
    with pytest.raises(L1Unavailable) as caught:
        gone.next_block(CHAIN)
    assert isinstance(caught.value, ConnectionError)


def test_devnet_setup_is_idempotent(anvil: AnvilProcess, tmp_path: Any) -> None:
    apps = [("alpha", 911), ("beta", 912)]
    first = prepare_l1(anvil.rpc_url, apps, tmp_path)
    again = prepare_l1(anvil.rpc_url, apps, tmp_path)
    assert again == first  # the same inbox, the same keys: nothing redeployed
    owner = BatchInbox(L1Client(anvil.rpc_url, DEV_KEYS[0]), first.inbox)
    for name, chain_id in apps:
        batcher = L1Client(anvil.rpc_url, batcher_key(name))
        assert owner.batcher(chain_id) == batcher.address
        assert batcher.balance(batcher.address) > 0
