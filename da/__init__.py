"""Data availability: an app's blocks out to a DA backend and back, for anyone to re-execute.

    blocks -> Batch (batch.py: what re-execution needs, transactions column-wise)
           -> channel (compress.py: brotli/zstd/zlib behind a one-byte tag, capped inflation)
           -> frames -> payloads (frames.py: OP Stack's frame format, strict order)
           -> DABackend.submit -> DARef (backend.py; local.py: content-addressed files + index)
and back: get -> decode_payload -> ChannelAssembler -> decode_channel -> Batch -> re-execute.
`channel.py` wires the stages; `measure.py` counts DA bytes per transaction. Errors: errors.py.
"""
