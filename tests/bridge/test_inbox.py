"""The BatchInbox contract and the L1 client on a real EVM (Anvil): authorship, the strict
block order the poster relies on, the bound on a batch's range, the owner's revert of bad
batches, events read back as the valid commitments, both Ethereum DA modes, clear errors for
what the L1 refuses or cannot decode, and the devnet's L1 setup with random key files."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.build import CONTRACTS_DIR, compile_contract
from bridge.inbox import COMMITTED_TOPIC, INBOX_ABI, BatchInbox, InboxRevert, deploy_inbox
from bridge.l1 import L1Client, L1Rejected, L1Unavailable
from da.commitment import MAX_BATCH_BLOCKS, decode_refs, encode_refs
from da.ethereum import EthereumDA
from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess, free_port
from services.keys import KeyFileError, create_key, load_key
from services.l1setup import BatcherSpec, prepare_l1

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


def test_the_kept_abi_is_the_compiled_one(inbox: BatchInbox) -> None:
    compiled = compile_contract(CONTRACTS_DIR / "BatchInbox.sol", "BatchInbox")
    assert json.dumps(compiled.abi, sort_keys=True) == json.dumps(INBOX_ABI, sort_keys=True)
    assert inbox.max_batch_blocks() == MAX_BATCH_BLOCKS  # the poster's bound is the contract's


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
    assert (first.data_hash, first.output_root, first.da_ref) == (
        keccak(b"d1"),
        keccak(b"o1"),
        b"\x01ref",
    )
    assert inbox.commitments(CHAIN + 1, 0) == []


def test_the_inbox_refuses_gaps_repeats_strangers_and_empty_ranges(
    anvil: AnvilProcess, inbox: BatchInbox
) -> None:
    batcher = _as(anvil, inbox, DEV_KEYS[1])
    next_block = inbox.next_block(CHAIN)
    refusals = [
        (
            lambda: batcher.commit(
                CHAIN, next_block + 1, next_block + 1, bytes(32), bytes(32), b""
            ),
            f"NotNextBlock({CHAIN}, {next_block}, {next_block + 1})",
        ),  # a gap
        (
            lambda: batcher.commit(CHAIN, next_block - 1, next_block, bytes(32), bytes(32), b""),
            f"NotNextBlock({CHAIN}, {next_block}, {next_block - 1})",
        ),  # a repeat
        (
            lambda: _as(anvil, inbox, DEV_KEYS[2]).commit(
                CHAIN, next_block, next_block, bytes(32), bytes(32), b""
            ),
            "NotBatcher",
        ),
        (
            lambda: batcher.commit(CHAIN, next_block, next_block - 1, bytes(32), bytes(32), b""),
            "EmptyRange",
        ),
        (
            lambda: _as(anvil, inbox, DEV_KEYS[0]).commit(
                CHAIN, next_block, next_block, bytes(32), bytes(32), b""
            ),
            "NotBatcher",
        ),  # owner
        (lambda: _as(anvil, inbox, DEV_KEYS[1]).set_batcher(CHAIN, bytes(20)), "NotOwner"),
        (
            lambda: batcher.commit(
                CHAIN, next_block, next_block + MAX_BATCH_BLOCKS, bytes(32), bytes(32), b""
            ),
            f"RangeTooLong({next_block}, {next_block + MAX_BATCH_BLOCKS}, {MAX_BATCH_BLOCKS})",
        ),
        (
            lambda: batcher.commit(CHAIN, next_block, 2**64 - 1, bytes(32), bytes(32), b""),
            "RangeTooLong",
        ),  # a jump to the end of the chain's block numbers
        (lambda: _as(anvil, inbox, DEV_KEYS[1]).revert_batches(CHAIN, 0), "NotOwner"),
        (lambda: _as(anvil, inbox, DEV_KEYS[2]).revert_batches(CHAIN, 0), "NotOwner"),
        (lambda: batcher.commit(CHAIN + 7, 1, 1, bytes(32), bytes(32), b""), "NotBatcher"),
    ]
    for call, reason in refusals:
        with pytest.raises(L1Rejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
            call()
    assert inbox.next_block(CHAIN) == next_block  # nothing moved


def test_a_batch_of_the_bound_is_accepted(anvil: AnvilProcess, inbox: BatchInbox) -> None:
    chain = CHAIN + 3
    inbox.set_batcher(chain, L1Client(anvil.rpc_url, DEV_KEYS[1]).address)
    full = _as(anvil, inbox, DEV_KEYS[1]).commit(
        chain, 1, MAX_BATCH_BLOCKS, keccak(b"d"), keccak(b"o"), b""
    )
    assert full.last_block - full.first_block + 1 == MAX_BATCH_BLOCKS
    assert inbox.next_block(chain) == MAX_BATCH_BLOCKS + 1


def test_the_owner_reverts_a_bad_batch_and_the_batcher_commits_the_range_again(
    anvil: AnvilProcess, inbox: BatchInbox
) -> None:
    chain = CHAIN + 1
    inbox.set_batcher(chain, L1Client(anvil.rpc_url, DEV_KEYS[1]).address)
    batcher = _as(anvil, inbox, DEV_KEYS[1])
    good = batcher.commit(chain, 1, 3, keccak(b"good"), keccak(b"o3"), b"")
    bad = [
        batcher.commit(chain, 4, 40, keccak(b"bad"), keccak(b"x"), b""),
        batcher.commit(chain, 41, 41, keccak(b"bad2"), keccak(b"y"), b""),
    ]
    assert inbox.next_block(chain) == 42 and inbox.batch_count(chain) == 3
    with pytest.raises(L1Rejected, match=rf"NoSuchBatch\({chain}, 3, 3\)"):
        inbox.revert_batches(chain, 3)

    reverted = inbox.revert_batches(chain, 1)
    assert (reverted.chain_id, reverted.from_index, reverted.next_block) == (chain, 1, 4)
    assert inbox.next_block(chain) == 4 and inbox.batch_count(chain) == 1
    with pytest.raises(L1Rejected, match=rf"NotNextBlock\({chain}, 4, 42\)"):
        batcher.commit(chain, 42, 42, bytes(32), bytes(32), b"")  # the bad range is gone
    again = batcher.commit(chain, 4, 5, keccak(b"honest"), keccak(b"o5"), b"")
    assert again.index == 1 and inbox.next_block(chain) == 6

    # what a reader sees: the valid set from the deployment on, and the revert itself
    assert inbox.commitments(chain, 0) == [good, again]
    assert inbox.reverts(chain, 0) == [reverted]
    events = inbox.events(chain, 0)
    assert events == [good, *bad, reverted, again]
    # a reader that consumed the bad batches in an earlier range learns of the revert
    assert inbox.commitments(chain, bad[-1].l1_block + 1) == [again]
    assert inbox.reverts(chain, bad[-1].l1_block + 1) == [reverted]
    assert inbox.reverts(CHAIN, 0) == []  # other chains are not touched


class SameBlockL1(L1Client):
    """Replays real inbox logs as if all were in one L1 block, in their original order."""

    def __init__(self, rpc_url: str, logs: list[Any]) -> None:
        super().__init__(rpc_url)
        self._logs = [dict(log, blockNumber=99, logIndex=i) for i, log in enumerate(logs)]

    def logs(self, *args: Any, **kwargs: Any) -> list[Any]:
        return list(reversed(self._logs))  # an RPC's order is not relied on

    def block_number(self, tag: str = "latest") -> int:
        return 100


def test_a_revert_in_the_same_l1_block_removes_only_what_came_before_it(
    anvil: AnvilProcess, inbox: BatchInbox
) -> None:
    chain = CHAIN + 2
    inbox.set_batcher(chain, L1Client(anvil.rpc_url, DEV_KEYS[1]).address)
    batcher = _as(anvil, inbox, DEV_KEYS[1])
    start = inbox.l1_block_number()
    batcher.commit(chain, 1, 2, keccak(b"bad"), bytes(32), b"")
    inbox.revert_batches(chain, 0)
    batcher.commit(chain, 1, 2, keccak(b"good"), bytes(32), b"")
    logs = L1Client(anvil.rpc_url).logs(
        inbox.address, [None, chain.to_bytes(32, "big")], start, inbox.l1_block_number()
    )
    replay = BatchInbox(SameBlockL1(anvil.rpc_url, logs), inbox.address)
    (kept,) = replay.commitments(chain, 0)
    assert kept.data_hash == keccak(b"good") and kept.index == 0
    assert [type(e) for e in replay.events(chain, 0)][-3:] == [type(kept), InboxRevert, type(kept)]


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
        return [
            {
                "address": "0x" + "00" * 20,
                "topics": [COMMITTED_TOPIC, bytes(32)],
                "data": b"\x00\x01",
                "blockNumber": 7,
                "transactionHash": b"\xab" * 32,
                "logIndex": 0,
                "transactionIndex": 0,
                "blockHash": bytes(32),
            }
        ]

    def block_number(self, tag: str = "latest") -> int:
        return 10


def test_malformed_events_and_an_unreachable_l1_raise_clear_errors(
    anvil: AnvilProcess, inbox: BatchInbox
) -> None:
    garbage = BatchInbox(GarbageL1(anvil.rpc_url), inbox.address)
    with pytest.raises(L1Rejected, match="malformed BatchCommitted log .*L1 block 7"):
        garbage.commitments(CHAIN, 0)
    gone = BatchInbox(
        L1Client(f"http://127.0.0.1:{free_port()}", DEV_KEYS[1], timeout=1.0), inbox.address
    )
    with pytest.raises(L1Unavailable) as caught:
        gone.next_block(CHAIN)
    assert isinstance(caught.value, ConnectionError)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_devnet_setup_uses_random_key_files_and_is_idempotent(
    anvil: AnvilProcess, tmp_path: Path
) -> None:
    apps = [
        BatcherSpec("alpha", 911, tmp_path / "apps" / "alpha" / "batcher.key"),
        BatcherSpec("beta", 912, tmp_path / "apps" / "beta" / "batcher.key"),
    ]
    first = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    again = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    assert again == first  # the same inbox, the same keys: nothing redeployed
    owner_file = tmp_path / "l1" / "owner.key"
    files = [owner_file, *(app.key_file for app in apps)]
    assert all(_mode(f) == 0o600 for f in files)
    keys = [load_key(f) for f in files]
    assert len(set(keys)) == 3  # distinct, and none of them a published dev key
    assert not {"0x" + k.hex() for k in keys} & set(DEV_KEYS)
    owner = BatchInbox(L1Client(anvil.rpc_url, "0x" + keys[0].hex()), first.inbox)
    assert owner.owner() == first.owner == owner.l1.address
    for app, key in zip(apps, keys[1:], strict=True):
        batcher = L1Client(anvil.rpc_url, "0x" + key.hex())
        assert first.batchers[app.name] == app.key_file
        assert owner.batcher(app.chain_id) == batcher.address
        assert batcher.balance(batcher.address) > 0
    # dev account 0 only funded the owner: it owns nothing and commits nothing
    dev0 = _as(anvil, owner, DEV_KEYS[0])
    for call in (
        lambda: dev0.set_batcher(911, dev0.l1.address),
        lambda: dev0.revert_batches(911, 0),
        lambda: dev0.commit(911, 1, 1, bytes(32), bytes(32), b""),
    ):
        with pytest.raises(L1Rejected, match="NotOwner|NotBatcher"):
            call()


def test_an_operator_names_the_owner_key_file(anvil: AnvilProcess, tmp_path: Path) -> None:
    apps = [BatcherSpec("gamma", 913, tmp_path / "gamma.key")]
    with pytest.raises(KeyFileError, match="key file .*mine.key does not exist"):
        prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", tmp_path / "mine.key")
    mine = create_key(tmp_path / "mine.key")
    funder = L1Client(anvil.rpc_url, DEV_KEYS[5])
    funder.send(L1Client(anvil.rpc_url, "0x" + mine.hex()).address, value=10**21)
    setup = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", tmp_path / "mine.key")
    assert setup.owner == L1Client(anvil.rpc_url, "0x" + mine.hex()).address
    assert not (tmp_path / "l1" / "owner.key").exists()
    # another owner key (an older devnet's inbox): a new inbox, owned by the new key
    other = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    assert other.inbox != setup.inbox and other.owner != setup.owner
