"""`EthereumDA`: DA payloads on the L1 itself, as calldata or as EIP-4844 blobs.

    ref id       = mode(u8: 0x00 calldata | 0x01 blobs) ++ tx_hash(32) ++ keccak(data)(32)
    calldata     one transaction whose input is the payload (at most MAX_CALLDATA bytes)
    blobs        one blob transaction carrying the payload in ceil(len / 130,044) blobs
                 (at most `max_blobs`, 6 by default), in OP's blob encoding (da/blobs.py)
Both go to the app's batch inbox address, `0xff` ++ 11 zero bytes ++ chain id (8 bytes BE),
an address without code, as OP Stack's batcher does; the transaction's hash locates the data
and the ref's data hash pins it, so `get` re-hashes what the L1 returns and raises
`CorruptData` on a mismatch. Blobs are also checked against their versioned hashes by the
transport (bridge/l1.py).

The transport (bridge.l1.L1Client) raises ConnectionError while the L1 cannot be reached
(-> `TemporaryDAError`) and ValueError when the L1's answer contradicts its own commitments
(-> `CorruptData`); it returns None for data it does not have (-> `DataNotFound`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from da.backend import DARef
from da.blobs import MAX_BLOB_DATA, BlobError, decode_blobs, encode_blobs
from da.errors import CorruptData, DAError, DataNotFound, TemporaryDAError
from rollup.crypto import keccak
from rollup.errors import RollupError

__all__ = ["NAME", "MODES", "MAX_CALLDATA", "L1DataTransport", "EthereumDA", "inbox_address"]

NAME = "ethereum"
MODES = ("calldata", "blobs")
MAX_CALLDATA = 120_000 - 1  # op-batcher's max-l1-tx-size-bytes less the version byte
_MODE_BYTE = {"calldata": 0x00, "blobs": 0x01}


class _Sent(Protocol):
    @property
    def tx_hash(self) -> bytes: ...


class L1DataTransport(Protocol):
    def send(
        self, to: bytes | None, data: bytes = b"", blobs: Sequence[bytes] = (), value: int = 0
    ) -> _Sent: ...

    def transaction_input(self, tx_hash: bytes) -> bytes | None: ...

    def blobs(self, tx_hash: bytes) -> list[bytes] | None: ...


def inbox_address(chain_id: int) -> bytes:
    """Where an app's DA transactions go (no code lives there)."""
    return b"\xff" + bytes(11) + chain_id.to_bytes(8, "big")


class EthereumDA:
    name = NAME

    def __init__(
        self, transport: L1DataTransport, chain_id: int, mode: str = "calldata", max_blobs: int = 6
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown ethereum DA mode {mode!r}, one of {MODES}")
        if not 1 <= max_blobs <= 6:
            raise ValueError("a blob transaction carries 1 to 6 blobs")
        self.transport = transport
        self.mode = mode
        self.to = inbox_address(chain_id)
        self.max_blob_size = MAX_CALLDATA if mode == "calldata" else max_blobs * MAX_BLOB_DATA

    def submit(self, data: bytes) -> DARef:
        if len(data) > self.max_blob_size:
            raise ValueError(f"{len(data)} bytes exceed the {self.mode} limit {self.max_blob_size}")
        try:
            if self.mode == "calldata":
                sent = self.transport.send(self.to, data)
            else:
                sent = self.transport.send(self.to, b"", encode_blobs(data))
        except ConnectionError as exc:
            raise TemporaryDAError(str(exc)) from None
        except RollupError as exc:  # the L1 refused (fees, funds): the poster backs off, retries
            raise DAError(f"the L1 refused the DA transaction: {exc}") from None
        return DARef(NAME, bytes((_MODE_BYTE[self.mode],)) + sent.tx_hash + keccak(data))

    def get(self, ref: DARef) -> bytes:
        mode, tx_hash, data_hash = _parse(ref)
        try:
            if mode == "calldata":
                data = self.transport.transaction_input(tx_hash)
            else:
                blobs = self.transport.blobs(tx_hash)
                data = None if blobs is None else decode_blobs(blobs)
        except ConnectionError as exc:
            raise TemporaryDAError(str(exc)) from None
        except BlobError as exc:
            raise CorruptData(f"{ref}: {exc}") from None
        except ValueError as exc:
            raise CorruptData(f"{ref}: {exc}") from None
        if data is None:
            raise DataNotFound(f"the L1 has no {mode} data under {ref}")
        if keccak(data) != data_hash:
            raise CorruptData(f"the {mode} data of {ref} does not match its hash")
        return data


def _parse(ref: DARef) -> tuple[str, bytes, bytes]:
    if ref.backend != NAME or len(ref.id) != 65 or ref.id[0] not in (0x00, 0x01):
        raise ValueError(f"{ref} is not a reference of the ethereum backend")
    mode = "calldata" if ref.id[0] == 0x00 else "blobs"
    return mode, ref.id[1:33], ref.id[33:65]
