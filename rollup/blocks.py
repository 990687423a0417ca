"""Block headers, their hash, and the encodings of bodies and receipts that nodes store.

    header   = rlp([chain_id, number, parent_hash, timestamp, timestamp_ms, coinbase,
                    state_root, transactions_root, receipts_root, messages_root,
                    withdrawals_root, logs_bloom, gas_limit, gas_used, base_fee, l1_origin])
    hash     = keccak(header)
    body     = rlp([[raw_tx, sender], ...])          senders kept so a restart skips recovery
    receipts = rlp([[status, gas_used, price, [[address, [topics], data], ...], contract,
                     return_data], ...])              cumulative gas is re-summed on decode
The transactions root and receipts root are binary Merkle roots (`rollup.merkle`) over the
transaction hashes and the receipt encodings; Ethereum uses a Patricia trie here, which our
Solidity verifiers do not need.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollup import rlp
from rollup.crypto import keccak
from rollup.merkle import merkle_root
from rollup.rlp import decode_int, encode_int
from rollup.transactions import decode_unsigned
from rollup.types import Address, BlockHeader, Hash32, Log, Receipt, Transaction

__all__ = [
    "encode_header",
    "decode_header",
    "block_hash",
    "encode_body",
    "decode_body",
    "encode_receipt",
    "encode_receipts",
    "decode_receipts",
    "transactions_root",
    "receipts_root",
]


def _header_items(h: BlockHeader) -> list[rlp.RLPItem]:
    return [
        encode_int(h.chain_id), encode_int(h.number), h.parent_hash, encode_int(h.timestamp),
        encode_int(h.timestamp_ms), h.coinbase, h.state_root, h.transactions_root,
        h.receipts_root, h.messages_root, h.withdrawals_root, h.logs_bloom,
        encode_int(h.gas_limit), encode_int(h.gas_used), encode_int(h.base_fee),
        encode_int(h.l1_origin),
    ]  # fmt: skip


def encode_header(header: BlockHeader) -> bytes:
    return rlp.encode(_header_items(header))


def decode_header(data: bytes) -> BlockHeader:
    b = [rlp.as_bytes(item) for item in rlp.as_list(rlp.decode(data), 16)]
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
        encode_int(r.status), encode_int(r.gas_used), encode_int(r.effective_gas_price), logs,
        r.contract_address or b"", r.return_data,
    ]  # fmt: skip


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


def transactions_root(transactions: Sequence[Transaction]) -> Hash32:
    return Hash32(merkle_root([tx.hash for tx in transactions]))


def receipts_root(receipts: Sequence[Receipt]) -> Hash32:
    return Hash32(merkle_root([encode_receipt(r) for r in receipts]))
