"""The errors of the DA layer, classified by what the caller must do (as op-node does).

    RollupError                      (rollup.errors: the one root)
    └── DAError
        ├── CodecError               malformed DA data: drop it, never retry (it stays malformed)
        │   ├── BatchError           a batch does not parse, or cannot be encoded
        │   ├── CompressionError     unknown tag, corrupt or truncated stream
        │   │   └── DecompressionLimit   output would exceed the cap (a zip bomb)
        │   └── FrameError           a frame or a channel does not parse or is out of order
        ├── TemporaryDAError         the backend cannot answer now: retry later
        ├── DataNotFound             no data under this reference
        └── CorruptData              stored bytes do not match their commitment: critical
A derivation loop drops what raises `CodecError`, retries `TemporaryDAError`, and halts on the rest.
"""

from __future__ import annotations

from rollup.errors import RollupError

__all__ = [
    "DAError",
    "CodecError",
    "BatchError",
    "CompressionError",
    "DecompressionLimit",
    "FrameError",
    "TemporaryDAError",
    "DataNotFound",
    "CorruptData",
]


class DAError(RollupError):
    """Root of the DA layer's errors."""


class CodecError(DAError):
    """DA data that does not decode; the same bytes will never decode, so drop them."""


class BatchError(CodecError):
    pass


class CompressionError(CodecError):
    pass


class DecompressionLimit(CompressionError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"decompressed data exceeds the limit of {limit} bytes")
        self.limit = limit


class FrameError(CodecError):
    pass


class TemporaryDAError(DAError):
    """The backend is unreachable or busy; the same call may succeed later."""


class DataNotFound(DAError):
    pass


class CorruptData(DAError):
    """Bytes read back do not hash to their reference: the store is damaged or tampered with."""
