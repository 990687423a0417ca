"""Blocks of a real chain through the whole DA path and back, then re-executed from the batch.

The re-execution here is a minimal verifier: it proves the batch carries everything needed to
rebuild every header exactly (the last block's hash is the batch's one claim).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from da.batch import Batch, batch_from_blocks, decode_batch, encode_batch
from da.channel import batch_payloads, decode_channel
from da.errors import BatchError
from da.frames import ChannelAssembler, decode_payload
from da.local import LocalDA
from da.measure import KINDS, bytes_per_tx, workload
from rollup.blocks import block_hash
from rollup.transactions import decode_transaction
from rollup.types import Address, Block, BlockHeader, Receipt
from sequencer.harness import LocalChain
from sequencer.node import Sequencer
from vm.commitment import StateTree
from vm.genesis import build_genesis
from vm.native import NativeVM
from vm.state import DictReader, State
from vm.stf import L1Origin, apply_transaction, begin_block, env_of, seal_block


def _chain_blocks(token_app: Path) -> tuple[LocalChain, list[Block]]:
    rng = random.Random(7)
    chain = LocalChain.from_dir(token_app)
    senders = chain.accounts[:4]
    for sender in senders[1:]:  # give the other senders tokens, one block each
        chain.transact(senders[0], "transfer", sender, 10**21)
    clock = 1_700_000_100_000
    for _ in range(6):  # blocks of several native and ERC-20 transfers
        for sender in senders:
            to = Address(rng.randbytes(20))
            chain.node.submit_raw(
                chain.sign(sender, to, value=rng.randrange(1, 10**18), gas=21_000)
            )
            data = chain.calldata("transfer", Address(rng.randbytes(20)), rng.randrange(1, 10**18))
            chain.node.submit_raw(chain.sign(sender, chain.app.address, data, gas=100_000))
        clock += rng.randrange(0, 1_500)
        assert chain.node.produce(clock) is not None
    chain.transfer(senders[2], Address(b"\x42" * 20), 5)
    head = chain.node.committed.number
    blocks = [chain.node.block(n) for n in range(1, head + 1)]
    assert all(b is not None for b in blocks)
    return chain, [b for b in blocks if b is not None]


def _replay(chain: LocalChain, batch: Batch) -> list[BlockHeader]:
    """Re-execute the batch from genesis with the one state-transition function."""
    manifest = chain.node.manifest
    runtime = Sequencer._load_runtime(manifest, chain.app.source)
    genesis, changes = build_genesis(manifest, runtime, DictReader())
    world = {k: v for k, (_, v) in changes.items() if v is not None}
    tree = StateTree(world.items())
    vm = NativeVM()
    parent, headers = genesis, []
    assert block_hash(genesis) == batch.parent_hash or batch.first_number > 1
    for i, posted in enumerate(batch.blocks):
        env = posted.env(batch.first_number + i, batch.chain_id)
        state = State(DictReader(world))
        begin_block(state, env, vm)
        txs = [decode_transaction(raw, batch.chain_id) for raw in posted.transactions]
        receipts: list[Receipt] = []
        for tx in txs:
            gas = receipts[-1].cumulative_gas_used if receipts else 0
            receipts.append(apply_transaction(state, env, vm, tx, gas))
        sealed = seal_block(
            state, parent, env, posted.timestamp_ms, txs, receipts, tree, L1Origin(posted.l1_origin)
        )
        for key, (_, after) in sealed.changes.items():
            if after is None:
                world.pop(key, None)
            else:
                world[key] = after
        parent = sealed.block.header
        headers.append(parent)
    return headers


def test_chain_blocks_through_da_and_re_executed(token_app: Path, tmp_path: Path) -> None:
    chain, blocks = _chain_blocks(token_app)
    with chain:
        batch = batch_from_blocks(chain.node.chain_id, blocks)
        assert batch.tx_count() == 3 + 6 * 8 + 1
        assert decode_batch(encode_batch(batch)) == batch
        with pytest.raises(BatchError, match="does not extend"):
            batch_from_blocks(chain.node.chain_id, [blocks[0], blocks[2]])
        with pytest.raises(BatchError, match="chain"):
            batch_from_blocks(chain.node.chain_id + 1, blocks)

        with LocalDA(tmp_path / "da", max_blob_size=1_000) as da:
            refs = [da.submit(p) for p in batch_payloads(batch, da.max_blob_size)]
            assert len(refs) > 3  # the channel needed several frames
        with LocalDA(tmp_path / "da") as da:  # a verifier, later, reads them back in order
            assembler = ChannelAssembler()
            channels = [
                channel
                for entry in da.entries()
                for frame in decode_payload(da.get(entry.ref))
                if (channel := assembler.add(frame, height=entry.seq)) is not None
            ]
        assert len(channels) == 1 and assembler.dropped == []
        derived = decode_channel(channels[0])
        assert derived == batch

        headers = _replay(chain, derived)
        assert headers == [b.header for b in blocks]  # every header rebuilt exactly
        assert block_hash(headers[-1]) == derived.block_hash
        assert headers[-1].state_root == derived.state_root
        assert [env_of(h) for h in headers] == [
            p.env(derived.first_number + i, derived.chain_id) for i, p in enumerate(derived.blocks)
        ]


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_per_tx_runs(kind: str) -> None:
    raw_size = sum(map(len, workload(kind, 200))) / 200
    measured = bytes_per_tx(kind, count=200)
    assert 64 < measured < raw_size
