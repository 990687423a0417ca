"""Block headers, their hash, and the encodings of bodies and receipts that nodes store.

    header   = rlp([chain_id, number, parent_hash, timestamp, timestamp_ms, coinbase,
                    state_root, transactions_root, receipts_root, messages_root,
                    withdrawals_root, logs_bloom, gas_limit, gas_used, base_fee, l1_origin,
                    l1_origin_hash])
    hash     = keccak(header)
    body     = rlp([[raw_tx, sender], ...])          senders kept so a restart skips recovery
    receipts = rlp([[status, gas_used, price, [[address, [topics], data], ...], contract,
                     return_data], ...])              cumulative gas is re-summed on decode
The transactions root and receipts root are binary Merkle roots (`rollup.merkle`) over the
transaction hashes and the receipt encodings, deposits (rollup/deposits.py) first; Ethereum
uses a Patricia trie here, which our Solidity verifiers do not need.

Blocks with cross-app messages (`Block.inbound`, `Block.outbound`, see rollup/messages.py)
store them behind a 0x01 marker, a byte no RLP list starts with, so a block without messages
is stored exactly as before:
    body     = 0x01 ++ rlp([[[raw_tx, sender], ...], [inbound, ...], [outbound, ...]])
    receipts = 0x01 ++ rlp([[receipt, ...], [inbound receipt, ...]])
where each message is `rollup.messages.encode_message`. Blocks with deposits or withdrawals
(bridge/README.md) use the 0x02 marker and carry all of them:
    body     = 0x02 ++ rlp([[[raw_tx, sender], ...], [inbound, ...], [outbound, ...],
                            [deposit, ...], [withdrawal, ...]])
    receipts = 0x02 ++ rlp([[receipt, ...], [inbound receipt, ...], [deposit receipt, ...]])
    deposit    = rollup.deposits.encode_deposit
    withdrawal = rlp([nonce, sender, target, value, l1_token, token_amount, gas_limit, data])
                 (its chain id is the header's)
The header commits to the messages through
    messages_root = merkle_root([0x00 ++ outbound_i ...] ++ [0x01 ++ rlp([inbound_j,
                                 receipt_j]) ...])
so outbound message i is leaf i (its `src_index`), and a block without messages keeps the
empty root keccak(b""). Of the three, only `inbound` is an input a verifier (or a DA batch)
must carry; receipts and outbound messages are re-derived by execution.

A sequencer vouches for a block it produced by signing
    header_digest = keccak("app-rollup/sequencer-header/v1" ++ u64(chain_id) ++ block_hash)
with its key (`sign_header`, 65 bytes r ++ s ++ y_parity, deterministic); the prefix keeps the
signature from meaning anything else (a transaction, another message). Another chain that
knows the sequencer's address checks it with `header_signer`, and a message with its Merkle
proof against that header's `messages_root`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollup import rlp
from rollup.crypto import keccak, recover_signer, sign_digest
from rollup.deposits import Deposit, decode_deposit, encode_deposit
from rollup.merkle import merkle_root
from rollup.messages import CrossMessage, decode_message, encode_message
from rollup.rlp import decode_int, encode_int
from rollup.transactions import decode_unsigned
from rollup.types import Address, Block, BlockHeader, Hash32, Log, Receipt, Transaction
from rollup.withdrawals import Withdrawal

__all__ = [
    "encode_header",
    "decode_header",
    "block_hash",
    "encode_body",
    "decode_body",
    "encode_receipt",
    "encode_receipts",
    "decode_receipts",
    "block_entries",
    "block_entry_receipts",
    "transactions_root",
    "receipts_root",
    "messages_root",
    "message_leaves",
    "outbound_leaf",
    "HEADER_SIGNATURE_DOMAIN",
    "header_digest",
    "sign_header",
    "header_signer",
    "BlockBody",
    "encode_block_body",
    "decode_block_body",
    "encode_block_receipts",
    "decode_block_receipts",
]

_MESSAGES_MARKER = b"\x01"
_BRIDGE_MARKER = b"\x02"


def _header_items(h: BlockHeader) -> list[rlp.RLPItem]:
    return [
        encode_int(h.chain_id),
        encode_int(h.number),
        h.parent_hash,
        encode_int(h.timestamp),
        encode_int(h.timestamp_ms),
        h.coinbase,
        h.state_root,
        h.transactions_root,
        h.receipts_root,
        h.messages_root,
        h.withdrawals_root,
        h.logs_bloom,
        encode_int(h.gas_limit),
        encode_int(h.gas_used),
        encode_int(h.base_fee),
        encode_int(h.l1_origin),
        h.l1_origin_hash,
    ]


def encode_header(header: BlockHeader) -> bytes:
    return rlp.encode(_header_items(header))


def decode_header(data: bytes) -> BlockHeader:
    b = [rlp.as_bytes(item) for item in rlp.as_list(rlp.decode(data), 17)]
    return BlockHeader(
        chain_id=decode_int(b[0]),
        number=decode_int(b[1]),
        parent_hash=Hash32(b[2]),
        timestamp=decode_int(b[3]),
        timestamp_ms=decode_int(b[4]),
        coinbase=Address(b[5]),
        state_root=Hash32(b[6]),
        transactions_root=Hash32(b[7]),
        receipts_root=Hash32(b[8]),
        messages_root=Hash32(b[9]),
        withdrawals_root=Hash32(b[10]),
        logs_bloom=b[11],
        gas_limit=decode_int(b[12]),
        gas_used=decode_int(b[13]),
        base_fee=decode_int(b[14]),
        l1_origin=decode_int(b[15]),
        l1_origin_hash=Hash32(b[16]),
    )


def block_hash(header: BlockHeader) -> Hash32:
    return Hash32(keccak(encode_header(header)))


def encode_body(transactions: Sequence[Transaction]) -> bytes:
    return rlp.encode([[tx.raw, tx.sender] for tx in transactions])


def decode_body(data: bytes) -> tuple[Transaction, ...]:
    txs = []
    for item in rlp.as_list(rlp.decode(data)):
        raw, sender = rlp.as_list(item, 2)
        txs.append(decode_unsigned(rlp.as_bytes(raw), Address(rlp.as_bytes(sender))))
    return tuple(txs)


def _receipt_items(r: Receipt) -> list[rlp.RLPItem]:
    logs: list[rlp.RLPItem] = [[log.address, list(log.topics), log.data] for log in r.logs]
    return [
        encode_int(r.status),
        encode_int(r.gas_used),
        encode_int(r.effective_gas_price),
        logs,
        r.contract_address or b"",
        r.return_data,
    ]


def encode_receipt(receipt: Receipt) -> bytes:
    return rlp.encode(_receipt_items(receipt))


def encode_receipts(receipts: Sequence[Receipt]) -> bytes:
    return rlp.encode([_receipt_items(r) for r in receipts])


def _decode_log(item: rlp.RLPItem) -> Log:
    address, topics, data = rlp.as_list(item, 3)
    return Log(
        Address(rlp.as_bytes(address)),
        tuple(Hash32(rlp.as_bytes(t)) for t in rlp.as_list(topics)),
        rlp.as_bytes(data),
    )


def decode_receipts(data: bytes) -> tuple[Receipt, ...]:
    receipts = []
    cumulative = 0
    for item in rlp.as_list(rlp.decode(data)):
        status, gas_used, price, logs, contract, ret = rlp.as_list(item, 6)
        used = decode_int(rlp.as_bytes(gas_used))
        cumulative += used
        contract_bytes = rlp.as_bytes(contract)
        receipts.append(
            Receipt(
                status=decode_int(rlp.as_bytes(status)),
                gas_used=used,
                cumulative_gas_used=cumulative,
                effective_gas_price=decode_int(rlp.as_bytes(price)),
                logs=tuple(_decode_log(log) for log in rlp.as_list(logs)),
                contract_address=Address(contract_bytes) if contract_bytes else None,
                return_data=rlp.as_bytes(ret),
            )
        )
    return tuple(receipts)


def block_entries(block: Block) -> tuple[Transaction | Deposit, ...]:
    """The block's transactions as Ethereum tools number them: deposits first."""
    return (*block.deposits, *block.transactions)


def block_entry_receipts(block: Block) -> tuple[Receipt, ...]:
    """Their receipts, in the same order."""
    return (*block.deposit_receipts, *block.receipts)


def transactions_root(
    transactions: Sequence[Transaction], deposits: Sequence[Deposit] = ()
) -> Hash32:
    hashes: list[bytes] = [d.hash for d in deposits]
    return Hash32(merkle_root(hashes + [tx.hash for tx in transactions]))


def receipts_root(receipts: Sequence[Receipt], deposit_receipts: Sequence[Receipt] = ()) -> Hash32:
    return Hash32(merkle_root([encode_receipt(r) for r in (*deposit_receipts, *receipts)]))


# ---- cross-app messages ----------------------------------------------------------------------


def outbound_leaf(message: CrossMessage) -> bytes:
    """Leaf `message.src_index` of its source block's messages root."""
    return b"\x00" + encode_message(message)


def _inbound_leaf(message: CrossMessage, receipt: Receipt) -> bytes:
    return b"\x01" + rlp.encode([encode_message(message), encode_receipt(receipt)])


def message_leaves(
    outbound: Sequence[CrossMessage],
    inbound: Sequence[CrossMessage] = (),
    inbound_receipts: Sequence[Receipt] = (),
) -> list[bytes]:
    """The leaves of `messages_root`, in order: outbound message i is leaf i."""
    leaves = [outbound_leaf(m) for m in outbound]
    leaves += [_inbound_leaf(m, r) for m, r in zip(inbound, inbound_receipts, strict=True)]
    return leaves


def messages_root(
    outbound: Sequence[CrossMessage],
    inbound: Sequence[CrossMessage] = (),
    inbound_receipts: Sequence[Receipt] = (),
) -> Hash32:
    return Hash32(merkle_root(message_leaves(outbound, inbound, inbound_receipts)))


# ---- signed headers --------------------------------------------------------------------------

HEADER_SIGNATURE_DOMAIN = b"app-rollup/sequencer-header/v1"


def header_digest(chain_id: int, hash_: bytes) -> Hash32:
    """What a sequencer signs to vouch for its block `hash_` of chain `chain_id`."""
    return Hash32(keccak(HEADER_SIGNATURE_DOMAIN + chain_id.to_bytes(8, "big") + hash_))


def sign_header(key: bytes, header: BlockHeader) -> bytes:
    return sign_digest(key, header_digest(header.chain_id, block_hash(header)))


def header_signer(chain_id: int, hash_: bytes, signature: bytes) -> bytes | None:
    """The address that signed block `hash_` of chain `chain_id`, or None (no valid signature)."""
    return recover_signer(header_digest(chain_id, hash_), signature)


def encode_block_body(block: Block) -> bytes:
    txs: list[rlp.RLPItem] = [[tx.raw, tx.sender] for tx in block.transactions]
    if block.deposits or block.withdrawals:
        return _BRIDGE_MARKER + rlp.encode(
            [
                txs,
                [encode_message(m) for m in block.inbound],
                [encode_message(m) for m in block.outbound],
                [encode_deposit(d) for d in block.deposits],
                [_withdrawal_items(w) for w in block.withdrawals],
            ]
        )
    if not (block.inbound or block.outbound):
        return encode_body(block.transactions)
    return _MESSAGES_MARKER + rlp.encode(
        [
            txs,
            [encode_message(m) for m in block.inbound],
            [encode_message(m) for m in block.outbound],
        ]
    )


@dataclass(frozen=True, slots=True)
class BlockBody:
    """What a stored body holds besides the header and the receipts."""

    transactions: tuple[Transaction, ...]
    inbound: tuple[CrossMessage, ...] = ()
    outbound: tuple[CrossMessage, ...] = ()
    deposits: tuple[Deposit, ...] = ()
    withdrawals: tuple[Withdrawal, ...] = ()


def decode_block_body(data: bytes, chain_id: int) -> BlockBody:
    """A stored body (any of the three forms); `chain_id` completes its withdrawals."""
    marker = data[:1]
    if marker not in (_MESSAGES_MARKER, _BRIDGE_MARKER):
        return BlockBody(decode_body(data))
    parts = rlp.as_list(rlp.decode(data[1:]), 3 if marker == _MESSAGES_MARKER else 5)
    body = BlockBody(
        decode_body(rlp.encode(parts[0])),
        tuple(decode_message(rlp.as_bytes(m)) for m in rlp.as_list(parts[1])),
        tuple(decode_message(rlp.as_bytes(m)) for m in rlp.as_list(parts[2])),
    )
    if marker == _MESSAGES_MARKER:
        return body
    deposits = tuple(decode_deposit(rlp.as_bytes(d)) for d in rlp.as_list(parts[3]))
    withdrawals = tuple(_decode_withdrawal(w, chain_id) for w in rlp.as_list(parts[4]))
    return BlockBody(body.transactions, body.inbound, body.outbound, deposits, withdrawals)


def _withdrawal_items(w: Withdrawal) -> list[rlp.RLPItem]:
    return [
        encode_int(w.nonce),
        w.sender,
        w.target,
        encode_int(w.value),
        w.l1_token,
        encode_int(w.token_amount),
        encode_int(w.gas_limit),
        w.data,
    ]


def _decode_withdrawal(item: rlp.RLPItem, chain_id: int) -> Withdrawal:
    nonce, sender, target, value, token, amount, gas, data = (
        rlp.as_bytes(x) for x in rlp.as_list(item, 8)
    )
    return Withdrawal(
        chain_id,
        decode_int(nonce),
        Address(sender),
        Address(target),
        decode_int(value),
        Address(token),
        decode_int(amount),
        decode_int(gas),
        data,
    )


def encode_block_receipts(block: Block) -> bytes:
    receipts: list[rlp.RLPItem] = [_receipt_items(r) for r in block.receipts]
    inbound: list[rlp.RLPItem] = [_receipt_items(r) for r in block.inbound_receipts]
    if block.deposit_receipts:
        deposits: list[rlp.RLPItem] = [_receipt_items(r) for r in block.deposit_receipts]
        return _BRIDGE_MARKER + rlp.encode([receipts, inbound, deposits])
    if not block.inbound_receipts:
        return encode_receipts(block.receipts)
    return _MESSAGES_MARKER + rlp.encode([receipts, inbound])


def decode_block_receipts(
    data: bytes,
) -> tuple[tuple[Receipt, ...], tuple[Receipt, ...], tuple[Receipt, ...]]:
    """(transaction receipts, inbound message receipts, deposit receipts) of a stored blob."""
    marker = data[:1]
    if marker not in (_MESSAGES_MARKER, _BRIDGE_MARKER):
        return decode_receipts(data), (), ()
    parts = rlp.as_list(rlp.decode(data[1:]), 2 if marker == _MESSAGES_MARKER else 3)
    decoded = [decode_receipts(rlp.encode(part)) for part in parts]
    return decoded[0], decoded[1], decoded[2] if len(decoded) == 3 else ()
