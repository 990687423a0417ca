"""Frames and channels in OP Stack's format: exact bytes, strict order, the assembler."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from da.errors import FrameError
from da.frames import (
    FRAME_OVERHEAD,
    MAX_FRAME_DATA,
    ChannelAssembler,
    Frame,
    decode_frame,
    decode_frame_exact,
    decode_frames,
    decode_payload,
    encode_frame,
    encode_frames,
    encode_payload,
)

CID = bytes(range(16))


def test_frame_bytes_are_op_stack_frames() -> None:
    encoded = encode_frame(Frame(CID, 258, b"abc", True))
    assert encoded == CID + b"\x01\x02" + b"\x00\x00\x00\x03" + b"abc" + b"\x01"
    assert len(encoded) == FRAME_OVERHEAD + 3
    assert decode_frame_exact(encoded) == Frame(CID, 258, b"abc", True)


@given(st.binary(max_size=5_000), st.integers(FRAME_OVERHEAD + 1, 600))
@settings(max_examples=200, deadline=None)
def test_split_and_reassemble(data: bytes, max_frame_size: int) -> None:
    frames = encode_frames(CID, data, max_frame_size)
    assert all(len(f) <= max_frame_size for f in frames)
    decoded = [decode_frame_exact(f) for f in frames]
    assert [f.number for f in decoded] == list(range(len(frames)))
    assert [f.is_last for f in decoded] == [False] * (len(frames) - 1) + [True]
    assert decode_frames(frames) == data
    assert decode_frames(decode_payload(encode_payload(frames))) == data


def test_frame_size_must_leave_room_for_data() -> None:
    with pytest.raises(FrameError, match="overhead"):
        encode_frames(CID, b"x", FRAME_OVERHEAD)
    with pytest.raises(FrameError, match="frames exceed"):
        encode_frames(CID, b"x" * 70_000, FRAME_OVERHEAD + 1)


def _frames(data: bytes = b"0123456789" * 10, size: int = FRAME_OVERHEAD + 25) -> list[Frame]:
    return [decode_frame_exact(f) for f in encode_frames(CID, data, size)]


def test_out_of_order_duplicate_missing_and_foreign_frames_are_rejected() -> None:
    f = _frames()
    assert len(f) == 4
    cases = {
        "out of order": [f[0], f[2], f[1], f[3]],
        "duplicate": [f[0], f[1], f[1], f[2], f[3]],
        "missing middle": [f[0], f[2], f[3]],
        "missing first": f[1:],
        "after the last": [*f, f[3]],
        "other channel": [f[0], Frame(b"\xff" * 16, 1, f[1].data, False), f[2], f[3]],
    }
    for name, frames in cases.items():
        with pytest.raises(FrameError):
            decode_frames(frames)
        assert name
    with pytest.raises(FrameError, match="missing its last"):
        decode_frames(f[:3])
    with pytest.raises(FrameError, match="missing its last"):
        decode_frames([])


def test_malformed_frame_bytes_are_rejected() -> None:
    good = encode_frame(Frame(CID, 0, b"data", True))
    with pytest.raises(FrameError, match="is_last"):
        decode_frame(good[:-1] + b"\x02")
    with pytest.raises(FrameError, match="truncated frame header"):
        decode_frame(good[:10])
    with pytest.raises(FrameError, match="truncated frame data"):
        decode_frame(good[:-1])
    too_long = CID + struct.pack(">HI", 0, MAX_FRAME_DATA + 1)
    with pytest.raises(FrameError, match="exceeds"):
        decode_frame(too_long + bytes(MAX_FRAME_DATA + 2))
    liar = CID + struct.pack(">HI", 0, 100) + b"short" + b"\x01"
    with pytest.raises(FrameError, match="truncated"):
        decode_frame(liar)
    with pytest.raises(FrameError, match="trailing"):
        decode_frame_exact(good + b"\x00")


def test_payload_version_and_whole_payload_rejection() -> None:
    frames = encode_frames(CID, b"x" * 100, 60)
    payload = encode_payload(frames)
    assert payload[0] == 0x00
    with pytest.raises(FrameError, match="derivation version"):
        decode_payload(b"\x01" + payload[1:])
    with pytest.raises(FrameError):
        decode_payload(payload + b"\x00")  # one bad frame rejects the whole payload
    with pytest.raises(FrameError):
        decode_payload(b"")
    with pytest.raises(FrameError, match="no frame"):
        decode_payload(b"\x00")


def test_assembler_returns_the_channel_on_its_last_frame() -> None:
    data = os.urandom(300)
    assembler = ChannelAssembler()
    frames = [decode_frame_exact(f) for f in encode_frames(CID, data, 100)]
    results = [assembler.add(frame, height=10) for frame in frames]
    assert results[:-1] == [None] * (len(frames) - 1)
    assert results[-1] == data
    assert assembler.dropped == []


def test_assembler_drops_what_does_not_fit_holocene_style() -> None:
    f = _frames()
    assembler = ChannelAssembler()
    assert assembler.add(f[1], 1) is None  # no channel open yet
    assert assembler.add(f[0], 1) is None
    assert assembler.add(f[2], 1) is None  # skips frame 1: dropped
    assert assembler.add(f[0], 1) is None  # number 0 again: the channel restarts
    other = _frames()[0]
    assert assembler.add(Frame(b"\x01" * 16, 1, other.data, False), 1) is None  # foreign
    assert [reason for _, _, reason in assembler.dropped] == [
        "no open channel for this frame",
        "out of order: expected frame 1",
        "replaced by a new channel",
        "no open channel for this frame",
    ]
    assert [assembler.add(frame, 2) for frame in f[1:]][-1] == b"0123456789" * 10


def test_assembler_times_out_and_caps_channels() -> None:
    f = _frames()
    assembler = ChannelAssembler(timeout=5)
    assembler.add(f[0], 100)
    assert assembler.add(f[1], 106) is None
    assert assembler.dropped[0][2] == "timed out"
    small = ChannelAssembler(max_size=30)
    for frame in f:
        assert small.add(frame, 1) is None
    assert "channel too large" in [reason for _, _, reason in small.dropped]
