"""The chain store's schema revisions (sequencer/store.py, sequencer/outbox.py), run by
storage/migrate.py when a `Store` opens:

    0001  baseline: the schema of `meta.schema = 2` (blocks, state, tx_index, withdrawals,
          meta, outbox, bus_acks), as nodes wrote it before migrations
    0002  index withdrawals(block, nonce): `Store.withdrawals_upto` (every withdrawal proof)
          seeks it instead of scanning every withdrawal of the chain
"""
