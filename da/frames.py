"""Frames: a channel cut into pieces that fit the DA backend, in OP Stack's exact format.

    payload = version(u8 = 0x00) ++ frame ++ frame ++ ...      what one DA submission carries
    frame   = channel_id(16) ++ frame_number(u16 BE) ++ frame_data_length(u32 BE)
              ++ frame_data ++ is_last(u8: 0 | 1)
A frame costs FRAME_OVERHEAD = 23 bytes besides its data; frame_data_length <= MAX_FRAME_DATA
(1,000,000, OP's limit); a channel has at most 65,536 frames numbered from 0, and exactly its
last one has is_last = 1. `channel_id` is random and never reused. A payload with an unknown
version or any frame that does not parse is rejected whole, as OP's derivation does.

Reassembly is strict (Holocene): `decode_frames` raises `FrameError` on a frame from another
channel, out of order, duplicated, missing, or after the last; `ChannelAssembler` is the
streaming form a derivation loop feeds frame by frame, which drops what does not fit and
says why instead of raising, since one bad frame must not stop derivation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from da.errors import FrameError

__all__ = [
    "DERIVATION_VERSION",
    "CHANNEL_ID_SIZE",
    "FRAME_OVERHEAD",
    "MAX_FRAME_DATA",
    "MAX_FRAMES",
    "Frame",
    "encode_frame",
    "decode_frame",
    "decode_frame_exact",
    "encode_frames",
    "decode_frames",
    "encode_payload",
    "decode_payload",
    "ChannelAssembler",
]

DERIVATION_VERSION = 0x00
CHANNEL_ID_SIZE = 16
FRAME_OVERHEAD = CHANNEL_ID_SIZE + 2 + 4 + 1
MAX_FRAME_DATA = 1_000_000
MAX_FRAMES = 1 << 16
_HEAD = struct.Struct(">16sHI")


@dataclass(frozen=True, slots=True)
class Frame:
    channel_id: bytes
    number: int
    data: bytes = field(repr=False)
    is_last: bool


def encode_frame(frame: Frame) -> bytes:
    if len(frame.channel_id) != CHANNEL_ID_SIZE:
        raise FrameError(f"channel id must be {CHANNEL_ID_SIZE} bytes")
    if not 0 <= frame.number < MAX_FRAMES or len(frame.data) > MAX_FRAME_DATA:
        raise FrameError("frame number or frame data length out of range")
    head = _HEAD.pack(frame.channel_id, frame.number, len(frame.data))
    return head + frame.data + (b"\x01" if frame.is_last else b"\x00")


def decode_frame(data: bytes, pos: int = 0) -> tuple[Frame, int]:
    """The frame at `pos` and where the next one starts."""
    if len(data) - pos < _HEAD.size:
        raise FrameError("truncated frame header")
    channel_id, number, length = _HEAD.unpack_from(data, pos)
    if length > MAX_FRAME_DATA:
        raise FrameError(f"frame data length {length} exceeds {MAX_FRAME_DATA}")
    start = pos + _HEAD.size
    end = start + length
    if end + 1 > len(data):
        raise FrameError("truncated frame data")
    is_last = data[end]
    if is_last > 1:
        raise FrameError(f"is_last byte must be 0 or 1, not {is_last}")
    return Frame(channel_id, number, data[start:end], is_last == 1), end + 1


def encode_frames(channel_id: bytes, data: bytes, max_frame_size: int) -> list[bytes]:
    """`data` cut into encoded frames of at most `max_frame_size` bytes each."""
    chunk = min(max_frame_size - FRAME_OVERHEAD, MAX_FRAME_DATA)
    if chunk < 1:
        raise FrameError(f"max frame size must exceed the {FRAME_OVERHEAD}-byte frame overhead")
    pieces = [data[at : at + chunk] for at in range(0, len(data), chunk)] or [b""]
    if len(pieces) > MAX_FRAMES:
        raise FrameError(f"{len(pieces)} frames exceed the {MAX_FRAMES} a channel may have")
    last = len(pieces) - 1
    return [encode_frame(Frame(channel_id, i, piece, i == last)) for i, piece in enumerate(pieces)]


def decode_frames(frames: Iterable[Frame | bytes]) -> bytes:
    """The data of one channel from all its frames, in order; raises `FrameError` otherwise."""
    parts: list[bytes] = []
    channel_id: bytes | None = None
    done = False
    for item in frames:
        frame = decode_frame_exact(item) if isinstance(item, bytes) else item
        if done:
            raise FrameError(f"frame {frame.number} after the last frame")
        if channel_id is None:
            channel_id = frame.channel_id
        elif frame.channel_id != channel_id:
            raise FrameError("frame from another channel")
        if frame.number != len(parts):
            raise FrameError(f"frame {frame.number} where frame {len(parts)} was expected")
        parts.append(frame.data)
        done = frame.is_last
    if not done:
        raise FrameError("channel is missing its last frame")
    return b"".join(parts)


def decode_frame_exact(data: bytes) -> Frame:
    frame, end = decode_frame(data)
    if end != len(data):
        raise FrameError(f"{len(data) - end} trailing bytes after the frame")
    return frame


def encode_payload(frames: Sequence[bytes]) -> bytes:
    """One DA submission carrying encoded `frames`."""
    return bytes((DERIVATION_VERSION,)) + b"".join(frames)


def decode_payload(payload: bytes) -> list[Frame]:
    """The frames of one DA submission; any defect rejects the whole payload."""
    if not payload:
        raise FrameError("empty payload")
    if payload[0] != DERIVATION_VERSION:
        raise FrameError(f"unknown derivation version 0x{payload[0]:02x}")
    frames, pos = [], 1
    while pos < len(payload):
        frame, pos = decode_frame(payload, pos)
        frames.append(frame)
    if not frames:
        raise FrameError("payload carries no frame")
    return frames


@dataclass(slots=True)
class _Staging:
    channel_id: bytes
    opened_at: int  # DA height (L1 block) of its first frame
    parts: list[bytes]
    size: int


class ChannelAssembler:
    """Holocene's channel bank: one channel is staged at a time, frames arrive in order.

    `add(frame, height)` returns the channel's data once its last frame arrives, else None.
    A frame numbered 0 with a new id drops the staged channel and opens a new one; any other
    frame that is not the next of the staged channel is dropped. A channel whose first frame
    is more than `timeout` heights old, or larger than `max_size`, is dropped. `dropped` keeps
    (channel id, frame number, reason) of what was dropped, for logs and tests.
    """

    def __init__(self, timeout: int = 50, max_size: int = 100_000_000) -> None:
        self.timeout = timeout  # OP's CHANNEL_TIMEOUT (Granite), in L1 blocks
        self.max_size = max_size
        self.dropped: list[tuple[bytes, int, str]] = []
        self._staging: _Staging | None = None

    def add(self, frame: Frame, height: int) -> bytes | None:
        staging = self._staging
        if staging is not None and height - staging.opened_at > self.timeout:
            self._drop_staging("timed out")
            staging = None
        if frame.number == 0:
            if staging is not None:
                self._drop_staging("replaced by a new channel")
            staging = self._staging = _Staging(frame.channel_id, height, [], 0)
        elif staging is None or frame.channel_id != staging.channel_id:
            self._drop(frame, "no open channel for this frame")
            return None
        elif frame.number != len(staging.parts):
            self._drop(frame, f"out of order: expected frame {len(staging.parts)}")
            return None
        staging.parts.append(frame.data)
        staging.size += len(frame.data)
        if staging.size > self.max_size:
            self._drop_staging("channel too large")
            return None
        if not frame.is_last:
            return None
        self._staging = None
        return b"".join(staging.parts)

    def _drop(self, frame: Frame, reason: str) -> None:
        self.dropped.append((frame.channel_id, frame.number, reason))

    def _drop_staging(self, reason: str) -> None:
        assert self._staging is not None
        self.dropped.append((self._staging.channel_id, len(self._staging.parts), reason))
        self._staging = None
