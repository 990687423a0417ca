"""Derivation: from one L1 commitment to the batch it commits to, checked at every step.

    commitment -> decode_refs(da_ref) -> backend.get(ref) each -> decode_payload -> frames
               -> decode_frames (one channel, strict order) -> keccak == data_hash?
               -> decode_batch_for_replay -> chain id and block range == the commitment's?
    -> recover_senders (threads: libsecp256k1 releases the GIL) -> Transactions per block
A defect of the data raises `Divergence` naming the block it makes unverifiable; a backend or
L1 that cannot answer now raises `TemporaryDAError` (or a ConnectionError); data the backend
does not have raises `DataNotFound` (the verifier waits: it cannot tell late from withheld).

`SourceOutbox` runs the same derivation for OTHER chains committing to the same inbox: a
destination's verifier asks it for what source chain S posted as sent, in block M, to the
destination, and checks each inbound message against that (da/verifier.py). S's block M not
posted yet, not available or not derivable raises `SourceNotPosted` (wait: S may still post,
or its owner replace the batch); S is never re-executed here, its own verifier does that.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from da.backend import DABackend
from da.batch import Batch, PostedTx, decode_batch_for_replay
from da.commitment import CommitmentRecord, InboxReader, RevertRecord, decode_refs
from da.compress import MAX_CHANNEL_BYTES, decompress
from da.errors import CodecError, CorruptData, DAError, DataNotFound, TemporaryDAError
from da.frames import decode_frames, decode_payload
from rollup.crypto import keccak, recover_address
from rollup.messages import CrossMessage, encode_message
from rollup.types import Address, Transaction

__all__ = [
    "Divergence",
    "DerivedBatch",
    "describe",
    "fetch_channel",
    "derive_batch",
    "SenderRecovery",
    "SourceNotPosted",
    "SourceOutbox",
    "MAX_SOURCE_BYTES",
    "MAX_SOURCE_COMMITMENTS",
]

RECOVERY_CHUNK = 256
MAX_SOURCE_BYTES = 32 * 1024 * 1024  # decoded messages from other chains held, all sources
MAX_SOURCE_COMMITMENTS = 65_536  # commitments held per source chain, beyond what was consumed
SOURCE_SCAN_L1_BLOCKS = 10_000  # L1 blocks per scan of a source chain's commitments
_MESSAGE_OVERHEAD = 512  # a decoded CrossMessage's Python objects, roughly, beside its bytes


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
        raise Divergence(
            c.first_block,
            f"{where}: the data does not match the committed data hash 0x{c.data_hash.hex()}",
        )
    return channel


def derive_batch(
    c: CommitmentRecord,
    backends: Mapping[str, DABackend],
    chain_id: int,
    max_channel_bytes: int = MAX_CHANNEL_BYTES,
) -> DerivedBatch:
    """The batch of commitment `c`, decoded and checked against what `c` says it holds."""
    channel = fetch_channel(c, backends)
    where = describe(c)
    try:
        batch, posted = decode_batch_for_replay(decompress(channel, max_channel_bytes))
    except CodecError as exc:
        raise Divergence(c.first_block, f"{where} does not decode: {exc}") from None
    claimed = (chain_id, c.first_block, c.last_block)
    if (batch.chain_id, batch.first_number, batch.last_number) != claimed:
        held = f"{batch.first_number}-{batch.last_number} of chain {batch.chain_id}"
        raise Divergence(
            c.first_block,
            f"{where}: the data holds blocks {held}, not the "
            f"committed ones of chain {chain_id} (a misplaced or reordered "
            "batch)",
        )
    return DerivedBatch(c, batch, posted, len(channel))


def _recover_chunk(posted: Sequence[PostedTx]) -> list[tuple[bytes | None, bytes]]:
    """(sender or None, transaction hash) of each: both hashes off the executing thread."""
    return [
        (recover_address(keccak(p.unsigned), p.y_parity, p.fields.r, p.fields.s), keccak(p.raw))
        for p in posted
    ]


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
                    raise Divergence(
                        number,
                        f"transaction {j} of block {number} "
                        f"(0x{tx_hash.hex()}) has an invalid signature",
                    )
                txs.append(posted[cursor].transaction(batch.chain_id, Address(sender), tx_hash))
                cursor += 1
            yield number, txs


# ---- other chains' outbound messages ----


class SourceNotPosted(TemporaryDAError):
    """Source chain `chain_id` has not (validly, readably) posted block `block` yet: retry."""

    def __init__(self, chain_id: int, block: int, reason: str) -> None:
        super().__init__(reason)
        self.chain_id, self.block, self.reason = chain_id, block, reason


@dataclass(slots=True)
class _Source:
    """What is known of one source chain's commitments."""

    scanned: int  # the inbox is scanned up to this L1 block
    commitments: list[CommitmentRecord] = field(default_factory=list)  # L1 order, unconsumed
    consumed: int = 0  # blocks below it are no longer asked for
    newest: int | None = None  # the newest block the chain has posted, if any
    hint: CommitmentRecord | None = None  # the last one found (the next lookup's likely one)


@dataclass(frozen=True, slots=True)
class _Derived:
    """The messages to this chain of one derived source batch: block -> index -> message."""

    chain_id: int
    last_block: int
    sent: dict[int, dict[int, CrossMessage]]
    size: int


class SourceOutbox:
    """Other chains' outbound messages to chain `chain_id`, as their DA data holds them.

    `sent(S, M)` finds the valid commitment of chain S on the inbox (the owner's reverts
    applied; were two to hold M, the newest in L1 order) whose range holds block M, derives
    it with `derive_batch(c, backends, S)` (references, data hash, decoding, chain id and
    range all checked) and returns M's outbound messages to `chain_id` by index. Each
    source's commitments and reverts are scanned once a round (`new_round`, the verifier's
    step), from where the last scan ended.

    Bounds: the decoded messages held total at most `max_bytes` (encoded size plus
    _MESSAGE_OVERHEAD each; the least recently used batch goes first, and is derived again if
    asked for again; the batch just derived always stays), and only messages to `chain_id`
    are kept. `consumed(S, M)` says blocks of S below M will not be asked for again (channels
    execute in nonce order, so an honest destination asks in block order): commitments and
    batches wholly below M are dropped. A scan stops early, between chunks of L1 blocks, once
    it holds `max_commitments` records of a source and one covering the wanted block; a later
    lookup goes on from there. A lookup below a source's consumed block (only a dishonest
    order asks for one) starts that source over.
    """

    def __init__(
        self,
        chain_id: int,
        inbox: InboxReader,
        backends: Mapping[str, DABackend],
        from_l1_block: int = 0,
        max_bytes: int = MAX_SOURCE_BYTES,
        max_commitments: int = MAX_SOURCE_COMMITMENTS,
    ) -> None:
        self.chain_id, self.inbox, self.backends = chain_id, inbox, backends
        self.from_l1_block = from_l1_block
        self.max_bytes, self.max_commitments = max_bytes, max_commitments
        self._sources: dict[int, _Source] = {}
        self._fresh: set[int] = set()  # sources scanned this round
        self._cache: OrderedDict[tuple[int, int, int, bytes], _Derived] = OrderedDict()
        self.cached_bytes = 0
        self.derived = 0  # source batches derived (a re-derivation counts again)

    @property
    def cached_batches(self) -> int:
        return len(self._cache)

    def new_round(self) -> None:
        """The next lookup of each source scans the inbox for its new commitments first."""
        self._fresh.clear()

    def reset(self) -> None:
        """Forget every source's commitments and batches (an L1 reorg may have replaced them):
        the next lookups scan the inbox again from `from_l1_block`."""
        self._sources.clear()
        self._fresh.clear()
        self._cache.clear()
        self.cached_bytes = 0

    def sent(self, chain_id: int, block: int) -> Mapping[int, CrossMessage]:
        """Chain `chain_id`'s messages to this chain sent in `block`, by index, as posted."""
        source = self._source(chain_id, block)
        if chain_id not in self._fresh:
            self._scan(chain_id, source, block)
        commitment = self._covering(source, block)
        if commitment is None:
            raise SourceNotPosted(chain_id, block, _not_posted(chain_id, block, source.newest))
        return self._derive(chain_id, commitment, block).sent.get(block, {})

    def consumed(self, chain_id: int, block: int) -> None:
        """Blocks of `chain_id` below `block` will not be asked for again."""
        source = self._sources.get(chain_id)
        if source is None or block <= source.consumed:
            return
        source.consumed = block
        source.commitments = [c for c in source.commitments if c.last_block >= block]
        for key in [
            k for k, d in self._cache.items() if d.chain_id == chain_id and d.last_block < block
        ]:
            self._drop(key)

    def _source(self, chain_id: int, block: int) -> _Source:
        source = self._sources.get(chain_id)
        if source is not None and block < source.consumed:
            for key in [k for k in self._cache if k[0] == chain_id]:
                self._drop(key)
            source = None
        if source is None:
            source = self._sources[chain_id] = _Source(self.from_l1_block - 1)
            self._fresh.discard(chain_id)
        return source

    @staticmethod
    def _covering(source: _Source, block: int) -> CommitmentRecord | None:
        hint = source.hint
        if hint is not None and hint.first_block <= block <= hint.last_block:
            return hint
        for c in reversed(source.commitments):
            if c.first_block <= block <= c.last_block:
                source.hint = c
                return c
        return None

    def _scan(self, chain_id: int, source: _Source, block: int) -> None:
        """Read the source's new commitments and reverts, up to the L1's latest block or the
        bound; a revert removes what earlier scans found (da/commitment.py)."""
        if self._full(source, block):
            return
        latest = self.inbox.l1_block_number("latest")
        while source.scanned < latest:
            start, end = source.scanned + 1, min(latest, source.scanned + SOURCE_SCAN_L1_BLOCKS)
            for revert in self.inbox.reverts(chain_id, start, end):
                self._revert(chain_id, source, revert)
            # valid within the range: a revert in it has removed what came before it there
            found = [
                c for c in self.inbox.commitments(chain_id, start, end) if c.chain_id == chain_id
            ]
            source.scanned = end
            if found:
                newest = max(c.last_block for c in found)
                source.newest = newest if source.newest is None else max(source.newest, newest)
                source.commitments += [c for c in found if c.last_block >= source.consumed]
                source.hint = None
            if self._full(source, block):
                return  # enough held for now: the next lookup that needs more goes on
        self._fresh.add(chain_id)

    def _revert(self, chain_id: int, source: _Source, revert: RevertRecord) -> None:
        if revert.chain_id != chain_id:
            return
        gone = revert.from_index
        source.commitments = [c for c in source.commitments if c.index < gone]
        source.hint = None
        for key in [k for k in self._cache if k[0] == chain_id and k[1] >= gone]:
            self._drop(key)
        if source.newest is not None and source.newest >= revert.next_block:
            source.newest = revert.next_block - 1 if revert.next_block > 1 else None

    def _full(self, source: _Source, block: int) -> bool:
        return (
            len(source.commitments) >= self.max_commitments
            and self._covering(source, block) is not None
        )

    def _derive(self, chain_id: int, c: CommitmentRecord, block: int) -> _Derived:
        key = (chain_id, c.index, c.l1_block, bytes(c.l1_tx))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            derived = derive_batch(c, self.backends, chain_id)
        except DataNotFound as exc:
            why = f"source chain {chain_id}'s DA data of {describe(c)} is not available: {exc}"
            raise SourceNotPosted(chain_id, block, why) from None
        except Divergence as exc:  # S's own verifier reports S; here S has not posted M validly
            why = f"source chain {chain_id}'s {describe(c)} does not derive: {exc}"
            raise SourceNotPosted(chain_id, block, why) from None
        self.derived += 1
        sent: dict[int, dict[int, CrossMessage]] = {}
        size = 0
        batch = derived.batch
        for offset, posted in enumerate(batch.blocks):
            mine = {m.src_index: m for m in posted.outbound if m.dst_chain == self.chain_id}
            if mine:
                sent[batch.first_number + offset] = mine
                size += sum(len(encode_message(m)) + _MESSAGE_OVERHEAD for m in mine.values())
        entry = _Derived(chain_id, batch.last_number, sent, size)
        self._cache[key] = entry
        self.cached_bytes += size
        while self.cached_bytes > self.max_bytes and len(self._cache) > 1:
            self._drop(next(iter(self._cache)))  # least recently used first; never `entry`
        return entry

    def _drop(self, key: tuple[int, int, int, bytes]) -> None:
        self.cached_bytes -= self._cache.pop(key).size


def _not_posted(chain_id: int, block: int, newest: int | None) -> str:
    if newest is None:
        return (
            f"source chain {chain_id} has not posted block {block} yet: it has no batch on "
            "this inbox (no batcher, or not posting)"
        )
    return (
        f"source chain {chain_id} has not posted block {block} yet (its newest posted block "
        f"is {newest})"
    )
