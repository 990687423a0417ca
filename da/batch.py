"""The batch: a contiguous range of one app's blocks, as a verifier needs them to re-execute.

A batch stores what re-execution cannot produce: each block's environment (times, L1 origin and
its hash, coinbase, gas limit, base fee), its inbound cross-app messages and its signed
transactions. Its L1 deposits are not stored: the L1's logs hold them, and a verifier takes
them from there (da/l1.py); the batch names only their hashes, so a verifier knows how many
each block executed and can name a deposit the chain skipped, reordered, repeated or altered
(32 bytes a deposit; a block without deposits costs one count byte, which compression all but
erases). It does not store what re-execution recomputes (senders, transactions root, receipts
root, bloom, gas used, messages and withdrawals roots, and every state root but one), with one
exception: each block's outbound cross-app messages, so that a destination chain's verifier can
check the messages it receives against this chain's DA data without re-executing this chain
(the source's own verifier checks the posted list against its re-execution). It stores one
claim: the state root and the hash of the LAST block. The hash commits to every header of the
range through the parent-hash chain, so a verifier that rebuilds the headers and arrives at the
same last hash agrees with every block; per-block roots would cost 64 incompressible bytes a
block (more than a transfer when blocks are small) and add nothing a mismatch search could not
get by replaying. The state root is redundant with the hash but lets a mismatch say whether
state or a header field diverged.

Encoding (all integers are uvarints unless marked; `_wire` defines uvarint, zigzag, bitlist):

    batch       = version(u8 = 0x02) ++ chain_id ++ first_number ++ block_count
                  ++ parent_hash(32) ++ state_root(32) ++ block_hash(32)
                  ++ env_count ++ env{env_count} ++ block_columns ++ origin_hashes
                  ++ deposit_hashes ++ tx_columns ++ inbound_messages ++ outbound_messages
    env         = coinbase(20) ++ gas_limit ++ base_fee          distinct envs, first use order
    block_columns, each block_count long:
      env_index       < env_count
      timestamp_ms    first block absolute, then the increase over the previous block
      timestamp_skew  zigzag: timestamp - timestamp_ms // 1000    (0 unless the clock stalled)
      l1_origin       first block absolute, then the increase
      tx_count
      deposit_count   L1 deposits the block executes first (one zero byte a block without)
      inbound_count   cross-app messages the block executes before its transactions
      outbound_count  cross-app messages the block's execution sent (one zero byte a block
                      without any, which the compressor all but erases)
    origin_hashes     32 bytes each: the L1 origin's hash of the first block, then of each
                      block whose l1_origin is greater than its predecessor's (a block on its
                      predecessor's origin names the same L1 block, so the same hash)
    deposit_hashes    sum(deposit_count) of 32 bytes: each deposit transaction's hash
                      (rollup/deposits.py: keccak(0x7e ++ rlp(deposit))), in block order
    tx_columns, each n = sum(tx_count) long, in block order:
      kind            u8 each: 0x00 legacy EIP-155, 0x01 EIP-2930, 0x02 EIP-1559,
                      0x80 legacy without chain id (v = 27 | 28)
      y_parity        bitlist(n)
      creation        bitlist(n): 1 when the transaction has no `to`
      nonce           < 2^64
      gas             < 2^64
      fee_cap         < 2^256: gasPrice, or maxFeePerGas for kind 0x02
      tip             < 2^256, kind 0x02 only: maxPriorityFeePerGas
      to              20 bytes, non-creation only
      value           < 2^256
      data            length (<= MAX_TX_SIZE) ++ bytes
      access_list     kinds 0x01 and 0x02 only: length ++ rlp(access list)
      signature       r(32) ++ s(32), big-endian
    inbound_messages  sum(inbound_count) of: message, in block order
    outbound_messages sum(outbound_count) of: message, in block order; each one's source is
                      its place: src_chain = chain_id, src_block = its block's number,
                      src_index = its position in its block's list (0, 1, ...)
    message         = length (<= MAX_MESSAGE) ++ encode_message(m)    (rollup/messages.py)

Transactions are rebuilt byte for byte (their hash is keccak of the raw bytes): the chain id of
EIP-155 and typed transactions is the batch's, and legacy v is `chain_id * 2 + 35 + y_parity`.
Columns group alike fields so the compressor sees runs (fee caps, gas limits, selectors) apart
from the incompressible signatures and addresses, as OP span batches do. Senders are recovered
by the verifier. Limits: block_count <= MAX_BATCH_BLOCKS; n, the deposits, the inbound messages
and the outbound messages each <= MAX_BATCH_TXS; each transaction at most MAX_TX_SIZE bytes
and each message at most MAX_MESSAGE; times and L1 origins never decrease, and two blocks on
the same origin name the same hash. Decoding rejects an unknown version (0x00, the format
before outbound messages, and 0x01, before origin hashes and deposits, included), trailing
bytes, non-canonical varints, nonzero padding bits, unknown kinds, malformed messages,
outbound messages out of their place and envs out of first-use order with `BatchError`, so
the encoding of a batch is unique: decode(d) succeeds only when encode(decode(d)) == d.
(Whether an origin is the L1's, and each deposit the L1's own, is not the codec's to know:
da/l1.py checks that against the L1.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from da._wire import Reader, pack_bits, put_uvarint, put_zigzag
from da.errors import BatchError
from rollup import rlp
from rollup.crypto import keccak
from rollup.errors import MalformedMessage, TxRejected
from rollup.messages import MAX_MESSAGE, CrossMessage, decode_message, encode_message
from rollup.transactions import MAX_TX_SIZE, decode_unsigned
from rollup.types import (
    LEGACY_TX,
    ZERO_ADDRESS,
    ZERO_HASH,
    AccessList,
    Address,
    Block,
    BlockEnv,
    Hash32,
    Transaction,
)

__all__ = [
    "BATCH_VERSION",
    "MAX_BATCH_BLOCKS",
    "MAX_BATCH_TXS",
    "Batch",
    "BatchBlock",
    "batch_from_blocks",
    "encode_batch",
    "encode_blocks",
    "decode_batch",
    "decode_batch_for_replay",
    "PostedTx",
]

BATCH_VERSION = 0x02  # 0x00: without outbound messages; 0x01: without origin hashes, deposits
MAX_BATCH_BLOCKS = 1_000_000
MAX_BATCH_TXS = 10_000_000  # OP's MaxSpanBatchElementCount

KIND_LEGACY = 0x00
KIND_ACCESS_LIST = 0x01
KIND_DYNAMIC_FEE = 0x02
KIND_LEGACY_UNPROTECTED = 0x80
_KINDS = frozenset({KIND_LEGACY, KIND_ACCESS_LIST, KIND_DYNAMIC_FEE, KIND_LEGACY_UNPROTECTED})
_U64 = 1 << 64


@dataclass(frozen=True, slots=True)
class BatchBlock:
    """One block as posted: its environment, its inbound cross-app messages, its raw signed
    transactions, the cross-app messages its execution sent (`outbound`), the hash of its L1
    origin and the hashes of the L1 deposits it executed first (`deposits`, in nonce order)."""

    timestamp_ms: int
    timestamp: int
    l1_origin: int
    coinbase: Address
    gas_limit: int
    base_fee: int
    transactions: tuple[bytes, ...]
    inbound: tuple[CrossMessage, ...] = ()
    outbound: tuple[CrossMessage, ...] = ()
    l1_origin_hash: Hash32 = ZERO_HASH  # zero with origin 0: a chain that follows no L1
    deposits: tuple[Hash32, ...] = ()  # hashes of the deposit transactions, in order

    @classmethod
    def of(cls, block: Block) -> BatchBlock:
        h = block.header
        raws = tuple(tx.raw for tx in block.transactions)
        return cls(
            h.timestamp_ms,
            h.timestamp,
            h.l1_origin,
            h.coinbase,
            h.gas_limit,
            h.base_fee,
            raws,
            tuple(block.inbound),
            tuple(block.outbound),
            h.l1_origin_hash,
            tuple(d.hash for d in block.deposits),
        )

    def env(self, number: int, chain_id: int) -> BlockEnv:
        """The execution environment of this block, for re-execution."""
        return BlockEnv(
            number, self.timestamp, self.coinbase, self.base_fee, self.gas_limit, chain_id
        )


@dataclass(frozen=True, slots=True)
class Batch:
    chain_id: int
    first_number: int
    parent_hash: Hash32  # hash of block first_number - 1
    blocks: tuple[BatchBlock, ...]
    state_root: Hash32  # claimed, after the last block
    block_hash: Hash32  # claimed hash of the last block

    @property
    def last_number(self) -> int:
        return self.first_number + len(self.blocks) - 1

    def tx_count(self) -> int:
        return sum(len(b.transactions) for b in self.blocks)


def batch_from_blocks(chain_id: int, blocks: Sequence[Block]) -> Batch:
    """The batch of `blocks`, which must be contiguous blocks of chain `chain_id`."""
    if not blocks:
        raise BatchError("a batch holds at least one block")
    for prev, block in zip(blocks, blocks[1:]):
        if block.header.number != prev.header.number + 1 or block.header.parent_hash != prev.hash:
            raise BatchError(f"block {block.header.number} does not extend {prev.header.number}")
    if any(b.header.chain_id != chain_id for b in blocks):
        raise BatchError(f"a block does not belong to chain {chain_id}")
    first, last = blocks[0], blocks[-1]
    return Batch(
        chain_id,
        first.header.number,
        first.header.parent_hash,
        tuple(BatchBlock.of(b) for b in blocks),
        last.header.state_root,
        last.hash,
    )


# ---- transactions as columns ----


@dataclass(frozen=True, slots=True)
class _Tx:
    kind: int
    parity: int
    nonce: int
    gas: int
    fee_cap: int
    tip: int  # kind 0x02 only
    to: bytes  # empty for a contract creation
    value: int
    data: bytes
    access_list: bytes  # rlp, kinds 0x01 and 0x02 only
    r: int
    s: int


def _split(raw: bytes, chain_id: int, index: int) -> _Tx:
    """The fields of a raw transaction; raises unless they rebuild `raw` exactly."""
    if len(raw) > MAX_TX_SIZE:
        raise BatchError(f"transaction {index}: {len(raw)} bytes exceed {MAX_TX_SIZE}")
    try:
        tx = decode_unsigned(raw, ZERO_ADDRESS)
    except (TxRejected, rlp.RLPError) as exc:
        raise BatchError(f"transaction {index}: {exc}") from None
    return _fields_of(tx, chain_id, index)


def _fields_of(tx: Transaction, chain_id: int, index: int) -> _Tx:
    """The columns of a decoded transaction; raises unless they rebuild its raw bytes."""
    if len(tx.raw) > MAX_TX_SIZE:
        raise BatchError(f"transaction {index}: {len(tx.raw)} bytes exceed {MAX_TX_SIZE}")
    if tx.tx_type == LEGACY_TX:
        kind = KIND_LEGACY if tx.chain_id is not None else KIND_LEGACY_UNPROTECTED
        parity = (tx.v - 35) % 2 if tx.chain_id is not None else tx.v - 27
    else:
        kind, parity = tx.tx_type, tx.v
    if tx.chain_id is not None and tx.chain_id != chain_id:
        raise BatchError(f"transaction {index}: chain id {tx.chain_id}, batch {chain_id}")
    if parity not in (0, 1) or tx.nonce >= _U64 or tx.gas >= _U64:
        raise BatchError(f"transaction {index}: y-parity, nonce or gas out of range")
    access_list = b""
    if kind in (KIND_ACCESS_LIST, KIND_DYNAMIC_FEE):
        access_list = rlp.encode([[a, list(keys)] for a, keys in tx.access_list])
    fields = _Tx(
        kind,
        parity,
        tx.nonce,
        tx.gas,
        tx.max_fee,
        tx.max_priority_fee,
        tx.to or b"",
        tx.value,
        tx.data,
        access_list,
        tx.r,
        tx.s,
    )
    if _build(fields, chain_id) != tx.raw:
        raise BatchError(f"transaction {index} is not in canonical form")
    return fields


def _build(tx: _Tx, chain_id: int) -> bytes:
    """The raw signed transaction of `tx`'s fields."""
    return _parts(tx, chain_id)[0]


def _rlp_int(value: int) -> bytes:
    """rlp.encode(encode_int(value)) for value < 2**256 (always the short string form)."""
    if value < 0x80:
        return bytes((value,)) if value else b"\x80"
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes((0x80 + len(raw),)) + raw


def _parts(tx: _Tx, chain_id: int) -> tuple[bytes, bytes]:
    """(raw signed transaction, the payload its sender signed), sharing the encoded fields."""
    to = b"\x94" + tx.to if tx.to else b"\x80"
    common = _rlp_int(tx.gas) + to + _rlp_int(tx.value) + rlp.encode(tx.data)
    r_s = _rlp_int(tx.r) + _rlp_int(tx.s)
    if tx.kind in (KIND_LEGACY, KIND_LEGACY_UNPROTECTED):
        body = _rlp_int(tx.nonce) + _rlp_int(tx.fee_cap) + common
        protected = tx.kind == KIND_LEGACY
        v = chain_id * 2 + 35 + tx.parity if protected else 27 + tx.parity
        tail = _rlp_int(v) + r_s
        unsigned = body + (_rlp_int(chain_id) + b"\x80\x80" if protected else b"")
        return (
            rlp.list_header(len(body) + len(tail)) + body + tail,
            rlp.list_header(len(unsigned)) + unsigned,
        )
    fees = _rlp_int(tx.fee_cap)
    if tx.kind == KIND_DYNAMIC_FEE:
        fees = _rlp_int(tx.tip) + fees
    body = _rlp_int(chain_id) + _rlp_int(tx.nonce) + fees + common + tx.access_list
    tail = (b"\x01" if tx.parity else b"\x80") + r_s
    prefix = b"\x02" if tx.kind == KIND_DYNAMIC_FEE else b"\x01"
    return (
        prefix + rlp.list_header(len(body) + len(tail)) + body + tail,
        prefix + rlp.list_header(len(body)) + body,
    )


def _put_txs(out: bytearray, txs: Sequence[_Tx]) -> None:
    out += bytes(tx.kind for tx in txs)
    out += pack_bits([tx.parity for tx in txs])
    out += pack_bits([0 if tx.to else 1 for tx in txs])
    for tx in txs:
        put_uvarint(out, tx.nonce)
    for tx in txs:
        put_uvarint(out, tx.gas)
    for tx in txs:
        put_uvarint(out, tx.fee_cap)
    for tx in txs:
        if tx.kind == KIND_DYNAMIC_FEE:
            put_uvarint(out, tx.tip)
    out += b"".join(tx.to for tx in txs)
    for tx in txs:
        put_uvarint(out, tx.value)
    for tx in txs:
        put_uvarint(out, len(tx.data))
        out += tx.data
    for tx in txs:
        if tx.kind in (KIND_ACCESS_LIST, KIND_DYNAMIC_FEE):
            put_uvarint(out, len(tx.access_list))
            out += tx.access_list
    for tx in txs:
        out += tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big")


def _read_access_list(reader: Reader, index: int) -> bytes:
    size = reader.uvarint("access list length", 32)
    encoded = reader.take(size, "access list")
    if encoded == b"\xc0":  # the empty list, nearly every transaction's
        return encoded
    try:
        item = rlp.decode(encoded)
        for entry in rlp.as_list(item):
            address, keys = rlp.as_list(entry, 2)
            if len(rlp.as_bytes(address)) != 20:
                raise rlp.RLPError("access list address is not 20 bytes")
            if any(len(rlp.as_bytes(key)) != 32 for key in rlp.as_list(keys)):
                raise rlp.RLPError("access list key is not 32 bytes")
    except rlp.RLPError as exc:
        raise BatchError(f"transaction {index}: bad access list: {exc}") from None
    return encoded


def _read_txs(reader: Reader, count: int, chain_id: int) -> list[PostedTx]:
    kinds = reader.take(count, "tx kinds")
    for index, kind in enumerate(kinds):
        if kind not in _KINDS:
            raise BatchError(f"transaction {index}: unknown kind 0x{kind:02x}")
    parities = reader.bits(count, "y-parity bits")
    creations = reader.bits(count, "contract creation bits")
    nonces = reader.uvarints(count, "nonce")
    gases = reader.uvarints(count, "gas")
    fee_caps = reader.uvarints(count, "fee cap", 256)
    tip_values = iter(reader.uvarints(kinds.count(KIND_DYNAMIC_FEE), "tip", 256))
    tips = [next(tip_values) if k == KIND_DYNAMIC_FEE else 0 for k in kinds]
    tos = [b"" if creation else reader.take(20, "to") for creation in creations]
    values = reader.uvarints(count, "value", 256)
    datas = []
    for _ in range(count):  # each length is followed by its bytes
        size = reader.uvarint("data length", 32)
        if size > MAX_TX_SIZE:
            raise BatchError(f"data of {size} bytes exceeds {MAX_TX_SIZE}")
        datas.append(reader.take(size, "data") if size else b"")
    access_lists = [
        _read_access_list(reader, i) if k in (KIND_ACCESS_LIST, KIND_DYNAMIC_FEE) else b""
        for i, k in enumerate(kinds)
    ]
    signatures = reader.take(64 * count, "signatures")
    out = []
    for i in range(count):
        r = int.from_bytes(signatures[64 * i : 64 * i + 32], "big")
        s = int.from_bytes(signatures[64 * i + 32 : 64 * i + 64], "big")
        tx = _Tx(
            kinds[i],
            parities[i],
            nonces[i],
            gases[i],
            fee_caps[i],
            tips[i],
            tos[i],
            values[i],
            datas[i],
            access_lists[i],
            r,
            s,
        )
        raw, unsigned = _parts(tx, chain_id)
        if len(raw) > MAX_TX_SIZE:
            raise BatchError(f"transaction {i}: {len(raw)} bytes exceed {MAX_TX_SIZE}")
        out.append(PostedTx(raw, unsigned, tx))
    return out


@dataclass(frozen=True, slots=True)
class PostedTx:
    """A transaction of a decoded batch: its raw bytes, the payload its sender signed, and its
    fields, so re-execution needs no second decode (`transaction`, once the sender is known)."""

    raw: bytes
    unsigned: bytes
    fields: _Tx

    @property
    def y_parity(self) -> int:
        return self.fields.parity

    def transaction(
        self, chain_id: int, sender: Address, tx_hash: bytes | None = None
    ) -> Transaction:
        """The transaction as `rollup.transactions.decode_transaction` would decode it
        (`tx_hash`: keccak(raw), when the caller computed it already)."""
        f = self.fields
        if f.kind in (KIND_LEGACY, KIND_LEGACY_UNPROTECTED):
            protected = f.kind == KIND_LEGACY
            tx_type, tip = LEGACY_TX, f.fee_cap
            tx_chain = chain_id if protected else None
            v = chain_id * 2 + 35 + f.parity if protected else 27 + f.parity
        else:
            tx_type, tx_chain, v = f.kind, chain_id, f.parity
            tip = f.tip if f.kind == KIND_DYNAMIC_FEE else f.fee_cap
        access = _access_tuple(f.access_list) if f.access_list else ()
        return Transaction(
            tx_type,
            tx_chain,
            f.nonce,
            tip,
            f.fee_cap,
            f.gas,
            Address(f.to) if f.to else None,
            f.value,
            f.data,
            access,
            v,
            f.r,
            f.s,
            sender,
            Hash32(tx_hash or keccak(self.raw)),
            self.raw,
        )


def _access_tuple(encoded: bytes) -> AccessList:
    items = rlp.as_list(rlp.decode(encoded))
    return tuple(
        (
            rlp.as_bytes(rlp.as_list(entry)[0]),
            tuple(rlp.as_bytes(k) for k in rlp.as_list(rlp.as_list(entry)[1])),
        )
        for entry in items
    )


# ---- blocks ----


def _envs(blocks: Sequence[BatchBlock]) -> tuple[list[tuple[Address, int, int]], list[int]]:
    """The distinct (coinbase, gas limit, base fee) in first-use order, and each block's index."""
    table: dict[tuple[Address, int, int], int] = {}
    indexes = [table.setdefault((b.coinbase, b.gas_limit, b.base_fee), len(table)) for b in blocks]
    return list(table), indexes


def _check_block(block: BatchBlock, prev: BatchBlock | None, number: int, chain_id: int) -> None:
    if len(block.coinbase) != 20:
        raise BatchError(f"block {number}: coinbase is not 20 bytes")
    if not all(
        0 <= v < _U64
        for v in (
            block.timestamp_ms,
            block.timestamp,
            block.l1_origin,
            block.gas_limit,
            block.base_fee,
        )
    ):
        raise BatchError(f"block {number}: a field is out of the uint64 range")
    if prev is not None and (
        block.timestamp_ms < prev.timestamp_ms or block.l1_origin < prev.l1_origin
    ):
        raise BatchError(f"block {number}: timestamp_ms or l1_origin decreases")
    if len(block.l1_origin_hash) != 32 or any(len(h) != 32 for h in block.deposits):
        raise BatchError(f"block {number}: an L1 origin or deposit hash is not 32 bytes")
    if (
        prev is not None
        and block.l1_origin == prev.l1_origin
        and block.l1_origin_hash != prev.l1_origin_hash
    ):
        raise BatchError(
            f"block {number}: L1 origin {block.l1_origin} with another hash than "
            "in the block before"
        )
    for index, message in enumerate(block.outbound):
        _check_source(message, chain_id, number, index)


def _check_source(message: CrossMessage, chain_id: int, number: int, index: int) -> None:
    """An outbound message must say where it is: this chain, this block, this position."""
    where = (message.src_chain, message.src_block, message.src_index)
    if where != (chain_id, number, index):
        raise BatchError(
            f"outbound message {index} of block {number} claims chain, block and "
            f"index {where}, not its place {(chain_id, number, index)}"
        )


def _check_batch(batch: Batch) -> None:
    blocks = batch.blocks
    if not 1 <= len(blocks) <= MAX_BATCH_BLOCKS:
        raise BatchError(f"a batch holds 1 to {MAX_BATCH_BLOCKS} blocks, not {len(blocks)}")
    if not 0 <= batch.chain_id < _U64 or not 0 <= batch.first_number <= _U64 - len(blocks):
        raise BatchError("chain id or block numbers out of the uint64 range")
    for name in ("parent_hash", "state_root", "block_hash"):
        if len(getattr(batch, name)) != 32:
            raise BatchError(f"{name} is not 32 bytes")
    for i, block in enumerate(blocks):
        _check_block(block, blocks[i - 1] if i else None, batch.first_number + i, batch.chain_id)
    if batch.tx_count() > MAX_BATCH_TXS:
        raise BatchError(f"a batch holds at most {MAX_BATCH_TXS} transactions")
    for way in ("deposits", "inbound", "outbound"):
        if sum(len(getattr(b, way)) for b in blocks) > MAX_BATCH_TXS:
            raise BatchError(f"a batch holds at most {MAX_BATCH_TXS} {way}")


def _put_blocks(out: bytearray, blocks: Sequence[BatchBlock]) -> None:
    envs, env_indexes = _envs(blocks)
    put_uvarint(out, len(envs))
    for coinbase, gas_limit, base_fee in envs:
        out += coinbase
        put_uvarint(out, gas_limit)
        put_uvarint(out, base_fee)
    for index in env_indexes:
        put_uvarint(out, index)
    for prev, block in zip((None, *blocks), blocks):
        put_uvarint(out, block.timestamp_ms - (prev.timestamp_ms if prev else 0))
    for block in blocks:
        put_zigzag(out, block.timestamp - block.timestamp_ms // 1000)
    for prev, block in zip((None, *blocks), blocks):
        put_uvarint(out, block.l1_origin - (prev.l1_origin if prev else 0))
    for way in ("transactions", "deposits", "inbound", "outbound"):
        for block in blocks:
            put_uvarint(out, len(getattr(block, way)))
    for prev, block in zip((None, *blocks), blocks):
        if prev is None or block.l1_origin != prev.l1_origin:
            out += block.l1_origin_hash
    for block in blocks:
        out += b"".join(block.deposits)


def _put_messages(out: bytearray, messages: Sequence[CrossMessage], way: str) -> None:
    for index, message in enumerate(messages):
        encoded = encode_message(message)
        try:  # what decoding would refuse (sizes, ranges) is refused here, so both agree
            decode_message(encoded)
        except MalformedMessage as exc:
            raise BatchError(f"{way} message {index}: {exc}") from None
        put_uvarint(out, len(encoded))
        out += encoded


def _read_messages(reader: Reader, count: int, way: str) -> list[CrossMessage]:
    messages = []
    for index in range(count):
        size = reader.uvarint("message length", 32)
        if size > MAX_MESSAGE:
            raise BatchError(f"{way} message {index}: {size} bytes exceed {MAX_MESSAGE}")
        try:
            messages.append(decode_message(reader.take(size, f"{way} message")))
        except MalformedMessage as exc:
            raise BatchError(f"{way} message {index}: {exc}") from None
    return messages


def encode_batch(batch: Batch) -> bytes:
    """The bytes of `batch` (see the module docstring); raises `BatchError` if not encodable."""
    _check_batch(batch)
    raws = [raw for block in batch.blocks for raw in block.transactions]
    return _encode(batch, [_split(raw, batch.chain_id, i) for i, raw in enumerate(raws)])


def encode_blocks(chain_id: int, blocks: Sequence[Block]) -> bytes:
    """`encode_batch(batch_from_blocks(chain_id, blocks))`, from the blocks' already decoded
    transactions (the poster's path: no second decode of every transaction)."""
    batch = batch_from_blocks(chain_id, blocks)
    _check_batch(batch)
    txs = [tx for block in blocks for tx in block.transactions]
    return _encode(batch, [_fields_of(tx, chain_id, i) for i, tx in enumerate(txs)])


def _encode(batch: Batch, txs: list[_Tx]) -> bytes:
    out = bytearray((BATCH_VERSION,))
    for value in (batch.chain_id, batch.first_number, len(batch.blocks)):
        put_uvarint(out, value)
    out += batch.parent_hash + batch.state_root + batch.block_hash
    _put_blocks(out, batch.blocks)
    _put_txs(out, txs)
    _put_messages(out, [m for block in batch.blocks for m in block.inbound], "inbound")
    _put_messages(out, [m for block in batch.blocks for m in block.outbound], "outbound")
    return bytes(out)


def _running(reader: Reader, count: int, name: str) -> list[int]:
    """A column stored as a first value and increases; each value must fit 64 bits."""
    values, total = [], 0
    for _ in range(count):
        total += reader.uvarint(name)
        if total >= _U64:
            raise BatchError(f"{name} overflows 64 bits")
        values.append(total)
    return values


def _read_blocks(reader: Reader, count: int) -> tuple[list[BatchBlock], list[list[int]]]:
    """The blocks' environments, L1 origins and deposits (without transactions or messages)
    and their transaction, inbound message and outbound message counts."""
    env_count = reader.uvarint("env count")
    if not 1 <= env_count <= count:
        raise BatchError(f"env count {env_count} outside 1..{count}")
    envs = [
        (
            Address(reader.take(20, "coinbase")),
            reader.uvarint("gas limit"),
            reader.uvarint("base fee"),
        )
        for _ in range(env_count)
    ]
    env_indexes = [reader.uvarint("env index") for _ in range(count)]
    if len(set(envs)) != env_count or list(dict.fromkeys(env_indexes)) != list(range(env_count)):
        raise BatchError("envs are not distinct and in first-use order")
    times_ms = _running(reader, count, "timestamp_ms")
    times = [ms // 1000 + reader.zigzag("timestamp skew") for ms in times_ms]
    if any(not 0 <= t < _U64 for t in times):
        raise BatchError("timestamp out of the uint64 range")
    origins = _running(reader, count, "l1 origin")
    tx_counts, deposit_counts, inbound_counts, outbound_counts = (
        [reader.uvarint(f"{name} count") for _ in range(count)]
        for name in ("tx", "deposit", "inbound", "outbound")
    )
    totals = [sum(tx_counts), sum(deposit_counts), sum(inbound_counts), sum(outbound_counts)]
    if max(totals) > MAX_BATCH_TXS:
        raise BatchError(
            f"a batch holds at most {MAX_BATCH_TXS} transactions, deposits, inbound "
            f"and outbound messages each, not {totals}"
        )
    hashes: list[Hash32] = []
    for i, origin in enumerate(origins):
        new = i == 0 or origin != origins[i - 1]
        hashes.append(Hash32(reader.take(32, "l1 origin hash")) if new else hashes[-1])
    blocks = []
    for ms, t, origin, index, origin_hash, deposits in zip(
        times_ms, times, origins, env_indexes, hashes, deposit_counts
    ):
        held = tuple(Hash32(reader.take(32, "deposit hash")) for _ in range(deposits))
        coinbase, gas_limit, base_fee = envs[index]
        blocks.append(
            BatchBlock(
                ms,
                t,
                origin,
                coinbase,
                gas_limit,
                base_fee,
                (),
                l1_origin_hash=origin_hash,
                deposits=held,
            )
        )
    return blocks, [tx_counts, inbound_counts, outbound_counts]


def decode_batch(data: bytes) -> Batch:
    """The batch encoded in `data`; raises `BatchError` on any defect."""
    return decode_batch_for_replay(data)[0]


def decode_batch_for_replay(data: bytes) -> tuple[Batch, list[PostedTx]]:
    """The batch in `data` and its transactions in order, as `PostedTx`; `BatchError` on any
    defect (a verifier recovers the senders, in parallel, and re-executes)."""
    reader = Reader(data, BatchError)
    version = reader.u8("version")
    if version != BATCH_VERSION:
        raise BatchError(f"unknown batch version 0x{version:02x}")
    chain_id = reader.uvarint("chain id")
    first_number = reader.uvarint("first block number")
    count = reader.uvarint("block count")
    if not 1 <= count <= MAX_BATCH_BLOCKS:
        raise BatchError(f"a batch holds 1 to {MAX_BATCH_BLOCKS} blocks, not {count}")
    if first_number + count > _U64:
        raise BatchError("block numbers overflow 64 bits")
    parent_hash = Hash32(reader.take(32, "parent hash"))
    state_root = Hash32(reader.take(32, "state root"))
    block_hash = Hash32(reader.take(32, "block hash"))
    blocks, (tx_counts, inbound_counts, outbound_counts) = _read_blocks(reader, count)
    totals = [sum(tx_counts), sum(inbound_counts), sum(outbound_counts)]
    posted = _read_txs(reader, totals[0], chain_id)
    inbound = iter(_read_messages(reader, totals[1], "inbound"))
    outbound = iter(_read_messages(reader, totals[2], "outbound"))
    reader.expect_end("batch")
    cursor = 0
    for i, (n, m, k) in enumerate(zip(tx_counts, inbound_counts, outbound_counts, strict=True)):
        raws = tuple(p.raw for p in posted[cursor : cursor + n])
        sent = tuple(next(outbound) for _ in range(k))
        for index, message in enumerate(sent):
            _check_source(message, chain_id, first_number + i, index)
        blocks[i] = replace(
            blocks[i],
            transactions=raws,
            inbound=tuple(next(inbound) for _ in range(m)),
            outbound=sent,
        )
        cursor += n
    batch = Batch(chain_id, first_number, parent_hash, tuple(blocks), state_root, block_hash)
    return batch, posted
