"""Fakes at the DA ports: an in-memory L1 inbox with the contract's rules, an L1 around it
(block hashes, the Portal's deposits, reorgs) and the node's view of that L1, a chain of real
blocks (LocalChain), and a block source over it. Test modules get them through fixtures
(importlib mode: tests cannot import each other)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from da.batch import Batch, batch_from_blocks
from da.channel import encode_channel
from da.commitment import Commitment, encode_refs
from da.frames import encode_frames, encode_payload
from da.l1 import L1Inputs
from da.local import LocalDA
from da.poster import Poster, PosterConfig, PosterStore, channel_id_for
from da.verifier import Verifier
from rollup.crypto import keccak
from rollup.deposits import Deposit, deposit_from_event
from rollup.outputs import output_root
from rollup.types import Address, Block, Hash32
from sequencer.harness import LocalChain
from services.verifier import build_replayer
from vm.stf import L1Origin

L1_WORLD_WINDOW = 4  # L1 blocks (the templates' is 10; small here to keep the tests short)
L1_WORLD_POSTING = PosterConfig(max_delay_s=0.0, max_batch_blocks=2, finality_poll_s=0.0)


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

    def commit(
        self,
        chain_id: int,
        first_block: int,
        last_block: int,
        data_hash: bytes,
        output_root: bytes,
        da_ref: bytes,
    ) -> Commitment:
        self._reach()
        mine = self.of(chain_id)
        expected = mine[-1].last_block + 1 if mine else 1
        if self.strict and (first_block != expected or last_block < first_block):
            raise ValueError(f"NotNextBlock({chain_id}, {expected}, {first_block})")
        self.l1 += 1
        tx = keccak(self.l1.to_bytes(8, "big"))
        record = Commitment(
            chain_id,
            len(mine),
            first_block,
            last_block,
            data_hash,
            output_root,
            da_ref,
            self.l1,
            tx,
        )
        self.items.append(record)
        return record

    def commitments(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Commitment]:
        self._reach()
        end = self.l1 if to_l1_block is None else to_l1_block
        return [
            c for c in self.items if c.chain_id == chain_id and from_l1_block <= c.l1_block <= end
        ]

    def reverts(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Revert]:
        self._reach()
        end = self.l1 if to_l1_block is None else to_l1_block
        return [
            r
            for r in self.reverted
            if r.chain_id == chain_id and from_l1_block <= r.l1_block <= end
        ]

    def revert(self, chain_id: int, from_index: int) -> None:
        """The owner's revertBatches(chain_id, from_index)."""
        mine = self.of(chain_id)
        next_block = mine[from_index].first_block
        self.items = [c for c in self.items if c.chain_id != chain_id or c.index < from_index]
        self.l1 += 1
        self.reverted.append(
            Revert(chain_id, from_index, next_block, self.l1, keccak(self.l1.to_bytes(8, "big")))
        )

    def l1_block_number(self, tag: str = "latest") -> int:
        self._reach()
        if tag == "finalized":
            return max(0, self.l1 - self.finality_lag)
        return self.l1

    def mine(self, blocks: int = 1) -> None:
        self.l1 += blocks


class FakeL1:
    """The L1 around a MemoryInbox (its block counter is the L1's height): block hashes, the
    Portal's deposits (each `deposit` mines an L1 block holding one), and `reorg`, which
    replaces the newest blocks: new hashes, and the commitments, reverts and deposits they held
    are gone (`keep` deposits are included again in the new blocks, as a mempool would). Both a
    `da.l1.DepositReader` and, through `view`, the node's `L1View`. `down` makes every call
    fail as an unreachable L1 does; `lag` hides the newest blocks' hashes (an RPC behind)."""

    def __init__(self, inbox: MemoryInbox) -> None:
        self.inbox = inbox
        self.generation: dict[int, int] = {}  # block -> times a reorg replaced it
        self.held: list[tuple[int, Deposit]] = []  # (chain id, deposit)
        self.down = False
        self.lag = 0

    def _reach(self) -> None:
        if self.down:
            raise ConnectionError("L1 unreachable (test)")

    @property
    def height(self) -> int:
        return self.inbox.l1

    def hash(self, number: int) -> Hash32:
        generation = self.generation.get(number, 0)
        return Hash32(keccak(b"l1" + number.to_bytes(8, "big") + generation.to_bytes(4, "big")))

    def l1_block_number(self, tag: str = "latest") -> int:
        self._reach()
        return self.inbox.l1_block_number(tag)

    def l1_block_hash(self, number: int) -> bytes | None:
        self._reach()
        return self.hash(number) if 0 <= number <= self.height - self.lag else None

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Deposit]:
        self._reach()
        end = self.height if to_l1_block is None else to_l1_block
        return [
            d for chain, d in self.held if chain == chain_id and from_l1_block <= d.l1_block <= end
        ]

    def deposit(
        self,
        chain_id: int,
        to: bytes,
        mint: int = 10**18,
        data: bytes = b"",
        gas: int = 100_000,
        sender: bytes = b"\xd0" * 20,
    ) -> Deposit:
        """depositETH in a new L1 block."""
        self.inbox.mine()
        nonce = len([d for chain, d in self.held if chain == chain_id])
        opaque = (
            to
            + mint.to_bytes(32, "big")
            + mint.to_bytes(32, "big")
            + gas.to_bytes(8, "big")
            + bytes(20)
            + bytes(32)
            + bytes(1)
            + bytes(32)
            + data
        )
        made = deposit_from_event(
            chain_id, nonce, sender, opaque, self.hash(self.height), 0, self.height
        )
        self.held.append((chain_id, made))
        return made

    def reorg(self, depth: int, keep: bool = False) -> None:
        """Replace the newest `depth` blocks by as many others."""
        fork = self.height - depth
        for number in range(fork + 1, self.height + 1):
            self.generation[number] = self.generation.get(number, 0) + 1
        inbox = self.inbox
        inbox.items = [c for c in inbox.items if c.l1_block <= fork]
        inbox.reverted = [r for r in inbox.reverted if r.l1_block <= fork]
        gone = [(chain, d) for chain, d in self.held if d.l1_block > fork]
        self.held = [(chain, d) for chain, d in self.held if d.l1_block <= fork]
        if keep:  # each again, in the next new block (same nonce, another L1 block hash)
            for at, (chain, d) in enumerate(gone, start=fork + 1):
                again = deposit_from_event(
                    chain, d.nonce, d.sender, _opaque(d), self.hash(at), 0, at
                )
                self.held.append((chain, again))

    def view(self, chain_id: int, confirmations: int = 1) -> FakeView:
        return FakeView(self, chain_id, confirmations)


def _opaque(d: Deposit) -> bytes:
    return (
        d.to
        + d.mint.to_bytes(32, "big")
        + d.value.to_bytes(32, "big")
        + d.gas.to_bytes(8, "big")
        + d.l1_token
        + d.token_amount.to_bytes(32, "big")
        + bytes((d.decimals,))
        + d.symbol
        + d.data
    )


class FakeView:
    """The node's `sequencer.l1view.L1View` over a FakeL1."""

    def __init__(self, l1: FakeL1, chain_id: int, confirmations: int) -> None:
        self.l1, self.chain_id, self.confirmations = l1, chain_id, confirmations

    def origin(self) -> L1Origin:
        number = max(0, self.l1.height - self.confirmations)
        return L1Origin(number, self.l1.hash(number))

    def deposits(self, next_nonce: int, origin: L1Origin, limit: int) -> list[Deposit]:
        mine = sorted(self.l1.deposits(self.chain_id, 0, origin.number), key=lambda d: d.nonce)
        out = []
        for d in mine:
            if d.nonce == next_nonce + len(out) and len(out) < limit:
                out.append(d)
        return out


class L1World:
    """A chain whose node follows a FakeL1 (one confirmation), that L1 and its inbox, a DA
    store, a poster (batches of two blocks, at once); `verifier()` reads them back with the
    L1 (sequencing window L1_WORLD_WINDOW), `commit` posts a batch altered by hand."""

    def __init__(
        self, tmp_path: Path, token_app: Path, chain: Any, inbox: Any, l1: Any, source: Any
    ) -> None:
        self.tmp_path, self.token_app, self.chain, self.inbox, self.l1 = (
            tmp_path,
            token_app,
            chain,
            inbox,
            l1,
        )
        self.chain_id = chain.node.chain_id
        chain.node.l1 = l1.view(self.chain_id, confirmations=1)
        self.da = LocalDA(tmp_path / "da")
        self.poster = Poster(
            self.chain_id,
            source,
            self.da,
            inbox,
            PosterStore(tmp_path / "poster.sqlite"),
            L1_WORLD_POSTING,
        )
        self._clock = itertools.count(1_800_000_000_000, 1_000)

    def produce(self) -> int:
        """One block with whatever is due (deposits); its number."""
        assert self.chain.node.produce(next(self._clock)) is not None
        return int(self.chain.node.committed.number)

    def post(self) -> None:
        while self.poster.step():
            pass

    def commit(self, first: int, last: int, batch: Callable[[Batch], Batch]) -> None:
        """Commit blocks first..last, their batch altered by `batch`, one L1 block."""
        real = [self.chain.node.block(n) for n in range(first, last + 1)]
        encoded = encode_channel(batch(batch_from_blocks(self.chain_id, real)))
        frames = encode_frames(channel_id_for(self.chain_id, first, last), encoded, 400)
        refs = [self.da.submit(encode_payload([frame])) for frame in frames]
        self.inbox.commit(
            self.chain_id,
            first,
            last,
            keccak(encoded),
            output_root(real[-1].header),
            encode_refs(refs),
        )

    def verifier(
        self, portal: bool = True, window: int = L1_WORLD_WINDOW, deposits_from: int | None = None
    ) -> Verifier:
        _name, replayer = build_replayer(self.token_app)
        local = LocalDA(self.tmp_path / "da", readonly=True)
        rebuild = lambda: build_replayer(self.token_app)[1]  # noqa: E731
        l1 = L1Inputs(self.l1, self.l1 if portal else None, window, deposits_from)
        return Verifier(replayer, self.inbox, {"local": local}, 0, 0, rebuild=rebuild, l1=l1)


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
        chain.node.submit_raw(
            chain.sign(alice, Address(rng.randbytes(20)), value=10**15, gas=21_000)
        )
        data = chain.calldata("transfer", Address(rng.randbytes(20)), 10**18)
        chain.send_raw(chain.sign(alice, chain.app.address, data, gas=100_000))


@pytest.fixture
def memory_inbox() -> type[MemoryInbox]:
    return MemoryInbox


@pytest.fixture
def fake_l1() -> type[FakeL1]:
    return FakeL1


@pytest.fixture
def chain(token_app: Path) -> Iterator[LocalChain]:
    with LocalChain.from_dir(token_app) as local:
        yield local


@pytest.fixture
def chain_source() -> type[ChainSource]:
    return ChainSource


@pytest.fixture
def l1_world(tmp_path: Path, token_app: Path, chain: LocalChain) -> L1World:
    inbox = MemoryInbox(strict=False)
    return L1World(tmp_path, token_app, chain, inbox, FakeL1(inbox), ChainSource(chain))


@pytest.fixture
def grow() -> Callable[..., Any]:
    return add_blocks
