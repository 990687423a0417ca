"""The errors of the DA layer, classified by what the caller must do (as op-node does).

    RollupError                      (rollup.errors: the one root)
    └── DAError
        ├── CodecError               malformed DA data: drop it, never retry (it stays malformed)
        │   ├── BatchError           a batch does not parse, or cannot be encoded
        │   ├── CompressionError     unknown tag, corrupt or truncated stream
        │   │   └── DecompressionLimit   output would exceed the cap (a zip bomb)
        │   └── FrameError           a frame or a channel does not parse or is out of order
        ├── TemporaryDAError         the backend cannot answer now: retry later
        │   ├── SourceNotPosted      (da/derive.py) a source chain's block is not posted yet
        │   └── L1NotReady           (da/l1.py) the L1 cannot answer this yet
        ├── DataNotFound             no data under this reference
        ├── CorruptData              stored bytes do not match their commitment: critical
        ├── Divergence               (da/derive.py) the posted chain is not what was claimed
        └── ForeignBatch             (da/poster.py) the inbox holds a batch we did not build
A derivation loop drops what raises `CodecError`, retries `TemporaryDAError`, and halts on the
rest: their `action` (rollup.errors.Action) says so, FIX_INPUT, RETRY and STOP.
"""

from __future__ import annotations

from rollup.errors import Action, RollupError

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

    action = Action.FIX_INPUT


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

    action = Action.RETRY


class DataNotFound(DAError):
    pass


class CorruptData(DAError):
    """Bytes read back do not hash to their reference: the store is damaged or tampered with."""
