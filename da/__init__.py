"""Data availability: an app's blocks out to a DA backend and back, for anyone to re-execute.

    blocks -> Batch (batch.py: what re-execution needs, transactions column-wise)
           -> channel (compress.py: brotli/zstd/zlib behind a one-byte tag, capped inflation)
           -> frames -> payloads (frames.py: OP Stack's frame format, strict order)
           -> DABackend.submit -> DARef (backend.py; local.py: content-addressed files + index;
              ethereum.py: L1 calldata or EIP-4844 blobs in OP's blob encoding, blobs.py)
           -> a commitment on the L1 inbox (commitment.py: the ports; bridge/inbox.py)
poster.py runs that loop beside a sequencer (retries, heads, back-pressure). And back:
derive.py takes a commitment to its checked batch, l1.py reads what its blocks take from the
L1 (origins' hashes, the Portal's deposits; the sequencing window; reorgs), verifier.py
re-executes it with the STF and compares every claim. `channel.py` wires the stages;
`measure.py` counts DA bytes per transaction. Errors: errors.py. The L1 and the node reach
this package only through ports.
"""
