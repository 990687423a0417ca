"""`EthereumDA` against a fake L1 transport: references, both modes, and every failure the
L1 can produce mapped to the DA errors a poster or verifier acts on. (On Anvil itself:
tests/bridge/test_inbox.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from da.backend import DARef
from da.blobs import MAX_BLOB_DATA, decode_blobs
from da.commitment import decode_refs, encode_refs
from da.errors import CodecError, CorruptData, DAError, DataNotFound, TemporaryDAError
from da.ethereum import MAX_CALLDATA, EthereumDA, inbox_address
from rollup.crypto import keccak
from rollup.errors import RollupError


@dataclass
class Sent:
    tx_hash: bytes


class FakeL1:
    def __init__(self) -> None:
        self.txs: dict[bytes, tuple[bytes, bytes, list[bytes]]] = {}
        self.down = False
        self.refuse = False
        self.lie = False

    def send(
        self, to: bytes | None, data: bytes = b"", blobs: Sequence[bytes] = (), value: int = 0
    ) -> Sent:
        if self.down:
            raise ConnectionError("connection refused")
        if self.refuse:
            raise RollupError("insufficient funds for gas * price + value")
        tx_hash = keccak(len(self.txs).to_bytes(8, "big"))
        self.txs[tx_hash] = (to or b"", data, list(blobs))
        return Sent(tx_hash)

    def transaction_input(self, tx_hash: bytes) -> bytes | None:
        if self.down:
            raise ConnectionError("connection refused")
        tx = self.txs.get(tx_hash)
        return None if tx is None else tx[1] + (b"!" if self.lie else b"")

    def blobs(self, tx_hash: bytes) -> list[bytes] | None:
        if self.lie:
            raise ValueError("blobs do not match their versioned hashes")
        tx = self.txs.get(tx_hash)
        return None if tx is None else tx[2]


@pytest.mark.parametrize("mode", ["calldata", "blobs"])
def test_submit_and_get(mode: str) -> None:
    l1 = FakeL1()
    da = EthereumDA(l1, 901001, mode)
    data = bytes(range(256)) * (1000 if mode == "blobs" else 100)
    ref = da.submit(data)
    assert ref.backend == "ethereum" and len(ref.id) == 65 and ref.id[33:] == keccak(data)
    to, calldata, blobs = l1.txs[ref.id[1:33]]
    assert to == inbox_address(901001) == b"\xff" + bytes(11) + (901001).to_bytes(8, "big")
    if mode == "blobs":
        assert calldata == b"" and len(blobs) == 2 and decode_blobs(blobs) == data
    else:
        assert calldata == data and blobs == []
    assert da.get(ref) == data
    assert decode_refs(encode_refs([ref])) == [ref]


def test_limits() -> None:
    assert EthereumDA(FakeL1(), 1, "calldata").max_blob_size == MAX_CALLDATA
    assert EthereumDA(FakeL1(), 1, "blobs", max_blobs=3).max_blob_size == 3 * MAX_BLOB_DATA
    with pytest.raises(ValueError):
        EthereumDA(FakeL1(), 1, "calldata").submit(bytes(MAX_CALLDATA + 1))
    with pytest.raises(ValueError):
        EthereumDA(FakeL1(), 1, "ssz")


def test_l1_failures_become_da_errors() -> None:
    l1 = FakeL1()
    da = EthereumDA(l1, 1)
    ref = da.submit(b"payload")
    l1.down = True
    with pytest.raises(TemporaryDAError, match="refused"):
        da.submit(b"x")
    with pytest.raises(TemporaryDAError):
        da.get(ref)
    l1.down, l1.refuse = False, True
    with pytest.raises(DAError, match="refused the DA transaction"):
        da.submit(b"x")
    l1.refuse, l1.lie = False, True
    with pytest.raises(CorruptData, match="does not match its hash"):
        da.get(ref)
    blob_ref = EthereumDA(l1, 1, "blobs")
    l1.lie = False
    stored = blob_ref.submit(b"blob")
    l1.lie = True
    with pytest.raises(CorruptData, match="versioned hashes"):
        blob_ref.get(stored)
    l1.lie = False
    unknown = DARef("ethereum", b"\x00" + bytes(32) + keccak(b""))
    with pytest.raises(DataNotFound):
        da.get(unknown)


def test_foreign_and_malformed_references() -> None:
    da = EthereumDA(FakeL1(), 1)
    for ref in (
        DARef("local", bytes(32)),
        DARef("ethereum", b"\x00" * 10),
        DARef("ethereum", b"\x07" + bytes(64)),
    ):
        with pytest.raises(ValueError):
            da.get(ref)
    for bad in (b"", b"\xc0", b"\xc1\x80", b"\xc2\x81\x00", b"\x83abc"):
        with pytest.raises(CodecError):
            decode_refs(bad)
