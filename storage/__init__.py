"""SQL storage for every database of a node: one engine recipe and one migration runner.

    url -> make_engine (engine.py: SQLite in WAL with its pragmas, or PostgreSQL by URL)
        -> upgrade(engine, schema) (migrate.py: Alembic, in process, one transaction)
           fresh database      every revision from the first
           older database      the revisions after its own (one from before migrations is
                               recognized by its tables and stamped at revision 0001 first)
           newer database      refused: `SchemaError` names both revisions
The tables and their revisions sit beside their owners: the chain store in sequencer/store.py
and sequencer/migrations/, the poster's record and the local DA index in da/poster.py,
da/local.py and da/migrations/. This package imports none of ours but `rollup.errors`.
"""
