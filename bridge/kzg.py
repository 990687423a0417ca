"""KZG commitments and proofs of EIP-4844 blobs (ckzg), with the trusted setup loaded once.

eth-account can build a blob transaction's sidecar itself, but it loads the trusted setup
again for every commitment and proof (~1.8 s a load here, ~5 s a blob in all), so the L1
client signs the transaction with eth-account and builds the sidecar with these functions.

    versioned_hash = 0x01 ++ sha256(commitment)[1:]
    cell proofs    = EIP-7594: 128 per blob (the wrapper Osaka-era nodes take)
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import ckzg
from eth_account.typed_transactions.base import TRUSTED_SETUP

__all__ = ["VERSIONED_HASH_VERSION", "commitment", "versioned_hash", "cell_proofs", "check_blob"]

VERSIONED_HASH_VERSION = b"\x01"


@functools.cache
def _setup() -> Any:
    return ckzg.load_trusted_setup(TRUSTED_SETUP, 0)


def commitment(blob: bytes) -> bytes:
    return bytes(ckzg.blob_to_kzg_commitment(blob, _setup()))


def versioned_hash(kzg_commitment: bytes) -> bytes:
    return VERSIONED_HASH_VERSION + hashlib.sha256(kzg_commitment).digest()[1:]


def cell_proofs(blob: bytes) -> list[bytes]:
    _cells, proofs = ckzg.compute_cells_and_kzg_proofs(blob, _setup())
    return [bytes(proof) for proof in proofs]


def check_blob(blob: bytes, expected_hash: bytes) -> bool:
    """True if `blob` is the blob whose versioned hash is `expected_hash`."""
    return versioned_hash(commitment(blob)) == expected_hash
