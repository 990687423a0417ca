"""One app's node: admission, mempool, block building and the store.

    raw tx -> admission (decode, chain id, signature, nonce, balance) -> mempool
           -> builder (vm.stf.apply_transaction per tx, seal_block)   -> ChainState (in memory)
           -> Store.write_block (one DB transaction per block)        -> receipts visible
Only committed blocks are visible to readers; a block built but not yet written is invisible.
"""
