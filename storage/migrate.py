"""Schema versions: each database carries its Alembic revision and is upgraded when opened.

    upgrade(engine, schema), at open, in ONE transaction that also holds the writer's lock
    (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so a crash leaves the old schema
    whole and two processes opening at once upgrade one after the other:
        revision = the database's (its `alembic_version` row)
        none, and the schema's tables are there    written before migrations: stamp 0001
        none                                       fresh: run every revision
        older than head                            run the revisions after it
        head                                       nothing to do
        unknown to this code                       SchemaError (a newer framework wrote it)

A schema's revisions are the `vNNNN_*.py` files of one directory (`Schema.revisions`), each
with `revision = "NNNN"`, `down_revision` the one before, and `upgrade()` written with
`alembic.op` against the tables as they were then (never importing today's). No alembic.ini
and no env.py: this module is the environment. A new revision: copy the newest file, bump
both ids, change the tables beside their owner to match, and extend the owner's tests.
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from rollup.errors import RollupError

__all__ = [
    "BASELINE",
    "Schema",
    "SchemaError",
    "upgrade",
    "head_of",
    "revision_of",
    "has_tables",
    "drift",
]

log = logging.getLogger(__name__)

BASELINE = "0001"  # the schema each database had when migrations began


class SchemaError(RollupError):
    """The database's schema is not one this code can upgrade: stop, and use a framework
    version that knows it (or a new database)."""


def _no_legacy(_conn: Connection) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Schema:
    """One kind of database: its name in messages, its revisions, and how to recognize one
    written before migrations. `legacy(conn)` is asked only when the database has no revision:
    True if it holds the baseline's tables (they are stamped 0001); it raises `SchemaError`
    for tables older than the baseline."""

    name: str
    revisions: Path
    legacy: Callable[[Connection], bool] = field(default=_no_legacy)


def head_of(schema: Schema) -> str:
    """The newest revision this code has of `schema`."""
    head = _scripts(schema.revisions).get_current_head()
    assert head is not None, f"no revisions in {schema.revisions}"
    return head


def revision_of(conn: Connection) -> str | None:
    """The revision a database is at (None: not under migrations yet)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, schema: Schema) -> None:
    """Bring the database to `head_of(schema)`, or raise `SchemaError` (module docstring)."""
    scripts, head = _scripts(schema.revisions), head_of(schema)
    with engine.connect() as conn:
        _lock(conn, schema)
        # DDL is transactional here: _lock began the transaction, on SQLite too
        opts = {"fn": _steps_to(scripts, head), "transactional_ddl": True}
        context = MigrationContext.configure(conn, opts=opts)
        current = context.get_current_revision()
        if current is None and schema.legacy(conn):
            context.stamp(scripts, BASELINE)
            current = BASELINE
            log.info(
                "%s database from before migrations: stamped revision %s", schema.name, BASELINE
            )
        if current == head:
            conn.commit()
            return
        if current is not None and current not in _known(schema.revisions):
            raise SchemaError(
                f"the {schema.name} database is at schema revision {current}, "
                f"newer than this framework's {head}: run a framework version "
                "that has it"
            )
        with Operations.context(context):
            context.run_migrations()
        conn.commit()
    log.info("%s database upgraded from revision %s to %s", schema.name, current or "none", head)


def _lock(conn: Connection, schema: Schema) -> None:
    """Begin the migration's transaction, holding the database's writer lock till it ends."""
    if conn.dialect.name == "sqlite":
        # the sqlite3 driver would otherwise run DDL outside any transaction (autocommit)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        key = zlib.crc32(f"app-rollup:{schema.name}".encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _steps_to(scripts: ScriptDirectory, head: str) -> Callable[..., list[Any]]:
    def steps(current: tuple[str, ...], _context: MigrationContext) -> list[Any]:
        revisions = scripts.iterate_revisions(head, current, implicit_base=True)
        return [
            MigrationStep.upgrade_from_script(scripts.revision_map, r)
            for r in reversed(list(revisions))
        ]

    return steps


@functools.cache
def _scripts(directory: Path) -> ScriptDirectory:
    return ScriptDirectory(directory, version_locations=[directory])


@functools.cache
def _known(directory: Path) -> frozenset[str]:
    return frozenset(script.revision for script in _scripts(directory).walk_revisions())


def drift(conn: Connection, *metadata: MetaData) -> list[Any]:
    """How the database's tables differ from `metadata`'s (Alembic's autogenerate diff; empty
    when they agree): what a new revision must do, and the tests' check that the revisions
    build the tables the code declares."""
    merged = MetaData()
    for each in metadata:
        for table in each.tables.values():
            table.to_metadata(merged)
    return list(compare_metadata(MigrationContext.configure(conn), merged))


def has_tables(conn: Connection, *names: str) -> bool:
    """True if every one of `names` is a table of the database (for `Schema.legacy`)."""
    present = set(inspect(conn).get_table_names())
    return all(name in present for name in names)
