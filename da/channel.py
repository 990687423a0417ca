"""A channel carries one batch: `channel = compress(encode_batch(batch))`, cut into frames.

    post:    batch -> encode_batch -> compress -> encode_frames -> encode_payload -> submit
    derive:  get -> decode_payload -> ChannelAssembler -> decompress -> decode_batch
One batch a channel (OP allows several): a batch already spans any range of blocks, so a
channel is the unit the poster opens, fills and closes. Each payload carries one frame, so a
lost submission loses one frame and the verifier sees exactly which.
"""

from __future__ import annotations

import os

from da.batch import Batch, decode_batch, encode_batch
from da.compress import MAX_CHANNEL_BYTES, Compressor, decompress
from da.frames import CHANNEL_ID_SIZE, encode_frames, encode_payload

__all__ = ["encode_channel", "decode_channel", "new_channel_id", "batch_payloads"]


def encode_channel(batch: Batch, compressor: Compressor | None = None) -> bytes:
    return (compressor or Compressor()).compress(encode_batch(batch))


def decode_channel(data: bytes, max_size: int = MAX_CHANNEL_BYTES) -> Batch:
    """The batch of a reassembled channel; raises a `CodecError` subclass on any defect."""
    return decode_batch(decompress(data, max_size))


def new_channel_id() -> bytes:
    return os.urandom(CHANNEL_ID_SIZE)


def batch_payloads(
    batch: Batch,
    max_payload_size: int,
    compressor: Compressor | None = None,
    channel_id: bytes | None = None,
) -> list[bytes]:
    """The DA submissions of `batch`, one frame each, each at most `max_payload_size` bytes."""
    channel = encode_channel(batch, compressor)
    frames = encode_frames(channel_id or new_channel_id(), channel, max_payload_size - 1)
    return [encode_payload([frame]) for frame in frames]
