"""Engines by URL, and the two upserts SQLite and PostgreSQL share a syntax for.

SQLite files run in WAL mode, so readers never wait for the writer; `synchronous` is the
owner's choice of durability: NORMAL survives a killed process (SIGKILL), FULL also a power
loss. PostgreSQL connections are checked before use (a restarted server drops them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import BigInteger, Engine, Integer, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["Int64", "make_engine", "sqlite_url", "upsert", "insert_ignore"]

Synchronous = Literal["NORMAL", "FULL"]

# A 64-bit integer column, spelled INTEGER on SQLite so that an integer primary key is the
# rowid (and may be AUTOINCREMENT); BIGINT elsewhere.
Int64 = BigInteger().with_variant(Integer(), "sqlite")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, synchronous: Synchronous = "NORMAL") -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    engine = create_engine(url, pool_size=8, max_overflow=8)

    def pragmas(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    return engine


def upsert(engine: Engine, table: Table, keys: list[str], values: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET each of `values` to the new row's."""
    stmt = _dialect(engine).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={v: stmt.excluded[v] for v in values}
    )


def insert_ignore(engine: Engine, table: Table, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING."""
    return _dialect(engine).insert(table).on_conflict_do_nothing(index_elements=keys)


def _dialect(engine: Engine) -> Any:
    return postgresql if engine.dialect.name == "postgresql" else sqlite
