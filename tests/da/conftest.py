"""Fakes at the DA ports: an in-memory L1 inbox with the contract's rules, a chain of real
blocks (LocalChain), and a block source over it. Test modules get them through fixtures
(importlib mode: tests cannot import each other)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from da.commitment import Commitment
from rollup.crypto import keccak
from rollup.types import Address, Block
from sequencer.harness import LocalChain


@dataclass(frozen=True, slots=True)
class Revert:
    """A `da.commitment.RevertRecord`."""

    chain_id: int
    from_index: int
    next_block: int
    l1_block: int
    l1_tx: bytes


class MemoryInbox:
    """BatchInbox.sol in memory: each chain's commitments numbered and contiguous unless
    `strict` is off (so tests can inject what the contract refuses). Each commit (and each
    owner's `revert`) is one L1 block; the L1's `finalized` block trails `latest` by
    `finality_lag`. `down` makes every call fail as an unreachable L1 does. `commitments`
    returns what is valid now, whatever the range (so what a revert removed never shows)."""

    def __init__(self, strict: bool = True, finality_lag: int = 2) -> None:
        self.items: list[Commitment] = []
        self.reverted: list[Revert] = []
        self.l1 = 0
        self.strict = strict
        self.finality_lag = finality_lag
        self.down = False
        self.calls = 0

    def _reach(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("L1 unreachable (test)")

    def of(self, chain_id: int) -> list[Commitment]:
        return [c for c in self.items if c.chain_id == chain_id]

    def next_block(self, chain_id: int) -> int:
        self._reach()
        mine = self.of(chain_id)
        return mine[-1].last_block + 1 if mine else 1

    def commit(self, chain_id: int, first_block: int, last_block: int, data_hash: bytes,
               output_root: bytes, da_ref: bytes) -> Commitment:  # fmt: skip
        self._reach()
        mine = self.of(chain_id)
        expected = mine[-1].last_block + 1 if mine else 1
        if self.strict and (first_block != expected or last_block < first_block):
            raise ValueError(f"NotNextBlock({chain_id}, {expected}, {first_block})")
        self.l1 += 1
        tx = keccak(self.l1.to_bytes(8, "big"))
        record = Commitment(chain_id, len(mine), first_block, last_block, data_hash,
                            output_root, da_ref, self.l1, tx)  # fmt: skip
        self.items.append(record)
        return record

    def commitments(self, chain_id: int, from_l1_block: int,
                    to_l1_block: int | None = None) -> list[Commitment]:  # fmt: skip
        self._reach()
        end = self.l1 if to_l1_block is None else to_l1_block
        return [c for c in self.items
                if c.chain_id == chain_id and from_l1_block <= c.l1_block <= end]  # fmt: skip

    def reverts(self, chain_id: int, from_l1_block: int,
                to_l1_block: int | None = None) -> list[Revert]:  # fmt: skip
        self._reach()
        end = self.l1 if to_l1_block is None else to_l1_block
        return [r for r in self.reverted
                if r.chain_id == chain_id and from_l1_block <= r.l1_block <= end]  # fmt: skip

    def revert(self, chain_id: int, from_index: int) -> None:
        """The owner's revertBatches(chain_id, from_index)."""
        mine = self.of(chain_id)
        next_block = mine[from_index].first_block
        self.items = [c for c in self.items if c.chain_id != chain_id or c.index < from_index]
        self.l1 += 1
        self.reverted.append(Revert(chain_id, from_index, next_block, self.l1,
                                    keccak(self.l1.to_bytes(8, "big"))))  # fmt: skip

    def l1_block_number(self, tag: str = "latest") -> int:
        self._reach()
        if tag == "finalized":
            return max(0, self.l1 - self.finality_lag)
        return self.l1

    def mine(self, blocks: int = 1) -> None:
        self.l1 += blocks


class ChainSource:
    """The poster's `BlockSource` over a LocalChain."""

    def __init__(self, chain: LocalChain) -> None:
        self.chain = chain

    def committed_number(self) -> int:
        return self.chain.node.committed.number

    def block(self, number: int) -> Block:
        block = self.chain.node.block(number)
        assert block is not None
        return block


def add_blocks(chain: LocalChain, count: int, seed: int = 1) -> None:
    """`count` blocks, each with a native transfer and a token transfer to fresh addresses."""
    rng = random.Random(seed)
    alice = chain.accounts[0]
    for _ in range(count):
        chain.node.submit_raw(chain.sign(alice, Address(rng.randbytes(20)), value=10**15,
                                         gas=21_000))  # fmt: skip
        data = chain.calldata("transfer", Address(rng.randbytes(20)), 10**18)
        chain.send_raw(chain.sign(alice, chain.app.address, data, gas=100_000))


@pytest.fixture
def memory_inbox() -> type[MemoryInbox]:
    return MemoryInbox


@pytest.fixture
def chain(token_app: Path) -> Iterator[LocalChain]:
    with LocalChain.from_dir(token_app) as local:
        yield local


@pytest.fixture
def chain_source() -> type[ChainSource]:
    return ChainSource


@pytest.fixture
def grow() -> Callable[..., Any]:
    return add_blocks
