"""The port every DA backend implements, and the reference a submission gets back.

    ref = len(backend)(u8) ++ backend(ascii, [a-z0-9-], 1..32) ++ id
Each backend gives `id` its own meaning: `local` uses keccak(data); a Celestia backend would
use height ++ commitment, an Ethereum one the batcher transaction's hash ++ blob index. The
poster records refs, the verifier hands them back; neither looks inside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from da.errors import CodecError

__all__ = ["DARef", "DABackend"]

_NAME = re.compile(r"[a-z0-9-]{1,32}")


@dataclass(frozen=True, slots=True)
class DARef:
    backend: str
    id: bytes

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.backend):
            raise ValueError(f"backend name {self.backend!r} is not 1-32 of [a-z0-9-]")

    def encode(self) -> bytes:
        name = self.backend.encode("ascii")
        return bytes((len(name),)) + name + self.id

    @classmethod
    def decode(cls, data: bytes) -> DARef:
        if not data or len(data) < 1 + data[0]:
            raise CodecError("truncated DA reference")
        name = data[1 : 1 + data[0]]
        if not _NAME.fullmatch(name.decode("latin-1")):
            raise CodecError("DA reference has an invalid backend name")
        return cls(name.decode("ascii"), data[1 + data[0] :])

    def __str__(self) -> str:
        return f"{self.backend}:{self.id.hex()}"


class DABackend(Protocol):
    """Where batches are posted. `submit` returns once the data is durable on the backend."""

    name: str
    max_blob_size: int  # the largest `data` submit accepts

    def submit(self, data: bytes) -> DARef:
        """Store `data`; raises `TemporaryDAError` if the backend cannot take it now."""
        ...

    def get(self, ref: DARef) -> bytes:
        """The data under `ref`, checked against it; `DataNotFound` or `CorruptData` if not."""
        ...
