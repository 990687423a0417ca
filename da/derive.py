"""Derivation: from one L1 commitment to the batch it commits to, checked at every step.

    commitment -> decode_refs(da_ref) -> backend.get(ref) each -> decode_payload -> frames
               -> decode_frames (one channel, strict order) -> keccak == data_hash?
               -> decode_batch_for_replay -> chain id and block range == the commitment's?
    -> recover_senders (threads: libsecp256k1 releases the GIL) -> Transactions per block
A defect of the data raises `Divergence` naming the block it makes unverifiable; a backend or
L1 that cannot answer now raises `TemporaryDAError` (or a ConnectionError); data the backend
does not have raises `DataNotFound` (the verifier waits: it cannot tell late from withheld).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from da.backend import DABackend
from da.batch import Batch, PostedTx, decode_batch_for_replay
from da.commitment import CommitmentRecord, decode_refs
from da.compress import MAX_CHANNEL_BYTES, decompress
from da.errors import CodecError, CorruptData, DAError, DataNotFound
from da.frames import decode_frames, decode_payload
from rollup.crypto import keccak, recover_address
from rollup.types import Address, Transaction

__all__ = [
    "Divergence",
    "DerivedBatch",
    "describe",
    "fetch_channel",
    "derive_batch",
    "SenderRecovery",
]

RECOVERY_CHUNK = 256


class Divergence(DAError):
    """The posted chain cannot be what the sequencer claims, from `block` on."""

    def __init__(self, block: int, reason: str) -> None:
        super().__init__(f"diverged at block {block}: {reason}")
        self.block, self.reason = block, reason


@dataclass(frozen=True, slots=True)
class DerivedBatch:
    commitment: CommitmentRecord
    batch: Batch
    posted: list[PostedTx]  # every transaction of the batch, in order
    channel_size: int


def describe(c: CommitmentRecord) -> str:
    return f"batch {c.index} (blocks {c.first_block}-{c.last_block}, L1 block {c.l1_block})"


def fetch_channel(c: CommitmentRecord, backends: Mapping[str, DABackend]) -> bytes:
    """The channel a commitment names, reassembled and checked against its data hash."""
    where = describe(c)
    try:
        refs = decode_refs(c.da_ref)
    except CodecError as exc:
        raise Divergence(c.first_block, f"{where}: unreadable DA reference: {exc}") from None
    payloads = []
    for ref in refs:
        backend = backends.get(ref.backend)
        if backend is None:
            raise DataNotFound(f"{where}: no '{ref.backend}' DA backend is configured here")
        try:
            payloads.append(backend.get(ref))
        except CorruptData as exc:
            raise Divergence(c.first_block, f"{where}: DA data is corrupt: {exc}") from None
        except ValueError as exc:  # a reference the backend cannot even parse
            raise Divergence(c.first_block, f"{where}: bad DA reference: {exc}") from None
    try:
        channel = decode_frames(frame for payload in payloads for frame in decode_payload(payload))
    except CodecError as exc:
        raise Divergence(c.first_block, f"{where}: frames do not decode: {exc}") from None
    if keccak(channel) != c.data_hash:
        raise Divergence(c.first_block, f"{where}: the data does not match the committed "
                         f"data hash 0x{c.data_hash.hex()}")  # fmt: skip
    return channel


def derive_batch(c: CommitmentRecord, backends: Mapping[str, DABackend], chain_id: int,
                 max_channel_bytes: int = MAX_CHANNEL_BYTES) -> DerivedBatch:  # fmt: skip
    """The batch of commitment `c`, decoded and checked against what `c` says it holds."""
    channel = fetch_channel(c, backends)
    where = describe(c)
    try:
        batch, posted = decode_batch_for_replay(decompress(channel, max_channel_bytes))
    except CodecError as exc:
        raise Divergence(c.first_block, f"{where} does not decode: {exc}") from None
    if (batch.chain_id, batch.first_number, batch.last_number) != (
        chain_id, c.first_block, c.last_block
    ):
        held = f"{batch.first_number}-{batch.last_number} of chain {batch.chain_id}"
        raise Divergence(c.first_block, f"{where}: the data holds blocks {held}, not the "
                         f"committed ones of chain {chain_id} (a misplaced or reordered "
                         "batch)")  # fmt: skip
    return DerivedBatch(c, batch, posted, len(channel))


def _recover_chunk(posted: Sequence[PostedTx]) -> list[tuple[bytes | None, bytes]]:
    """(sender or None, transaction hash) of each: both hashes off the executing thread."""
    return [(recover_address(keccak(p.unsigned), p.y_parity, p.fields.r, p.fields.s),
             keccak(p.raw)) for p in posted]  # fmt: skip


class SenderRecovery:
    """Recovers the senders of a derived batch in `executor`'s threads, block by block.

    `blocks()` yields each block's transactions as soon as their senders are known, so the
    caller executes block N while the threads recover block N + k."""

    def __init__(self, derived: DerivedBatch, executor: Executor | None) -> None:
        self.derived = derived
        posted = derived.posted
        chunks = [posted[at : at + RECOVERY_CHUNK] for at in range(0, len(posted), RECOVERY_CHUNK)]
        self._futures: list[Future[list[tuple[bytes | None, bytes]]]] | None = None
        self._results: list[list[tuple[bytes | None, bytes]]] = []
        if executor is not None:
            self._futures = [executor.submit(_recover_chunk, chunk) for chunk in chunks]
        else:
            self._results = [_recover_chunk(chunk) for chunk in chunks]

    def cancel(self) -> None:
        for future in self._futures or ():
            future.cancel()

    def _sender(self, index: int) -> tuple[bytes | None, bytes]:
        chunk, offset = divmod(index, RECOVERY_CHUNK)
        if self._futures is not None:
            while len(self._results) <= chunk:
                self._results.append(self._futures[len(self._results)].result())
        return self._results[chunk][offset]

    def blocks(self) -> Iterator[tuple[int, list[Transaction]]]:
        """(block number, its transactions); `Divergence` at a signature that recovers no one."""
        batch, posted = self.derived.batch, self.derived.posted
        cursor = 0
        for i, block in enumerate(batch.blocks):
            number = batch.first_number + i
            txs = []
            for j in range(len(block.transactions)):
                sender, tx_hash = self._sender(cursor)
                if sender is None:
                    raise Divergence(number, f"transaction {j} of block {number} "
                                     f"(0x{tx_hash.hex()}) has an invalid signature")  # fmt: skip
                txs.append(posted[cursor].transaction(batch.chain_id, Address(sender), tx_hash))
                cursor += 1
            yield number, txs
