"""The migration runner on a schema of its own: fresh, older, newer, failed and concurrent
upgrades, each one transaction (on SQLite too, whose driver would autocommit DDL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from storage.engine import make_engine, sqlite_url
from storage.migrate import Schema, SchemaError, has_tables, head_of, revision_of, upgrade

REVISION = """
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down}


def upgrade() -> None:
    op.create_table("t{rev}", sa.Column("x", sa.Integer, primary_key=True))
    {extra}
"""


def _schema(tmp_path: Path, count: int, failing: int | None = None) -> Schema:
    """Revisions 0001..count, each creating table tNNNN; `failing` raises after its table.
    A database with table t0001 but no revision is one from before migrations."""
    directory = tmp_path / f"revisions-{count}-{failing}"
    directory.mkdir()
    for n in range(1, count + 1):
        rev, down = f"{n:04d}", repr(f"{n - 1:04d}") if n > 1 else "None"
        extra = "raise RuntimeError('half-way')" if n == failing else ""
        source = REVISION.format(rev=rev, down=down, extra=extra)
        (directory / f"v{rev}_t.py").write_text(source)
    return Schema("test", directory, lambda conn: has_tables(conn, "t0001"))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _engine(tmp_path: Path) -> Engine:
    return make_engine(sqlite_url(tmp_path / "db.sqlite"))


def test_a_fresh_database_runs_every_revision(tmp_path: Path) -> None:
    engine, schema = _engine(tmp_path), _schema(tmp_path, 3)
    upgrade(engine, schema)
    assert _tables(engine) == {"t0001", "t0002", "t0003", "alembic_version"}
    with engine.connect() as conn:
        assert revision_of(conn) == head_of(schema) == "0003"
    upgrade(engine, schema)  # at head: nothing to do
    engine.dispose()


def test_an_older_database_runs_the_revisions_after_its_own(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    upgrade(engine, _schema(tmp_path, 1))
    upgrade(engine, _schema(tmp_path, 3))
    assert _tables(engine) == {"t0001", "t0002", "t0003", "alembic_version"}
    engine.dispose()


def test_a_database_from_before_migrations_is_stamped_then_upgraded(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t0001 (x INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t0001 VALUES (7)"))
    upgrade(engine, _schema(tmp_path, 2))
    with engine.connect() as conn:
        assert revision_of(conn) == "0002"
        assert conn.execute(text("SELECT x FROM t0001")).scalar() == 7  # kept, not re-created
    engine.dispose()


def test_a_newer_database_is_refused_in_one_line_naming_both(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    upgrade(engine, _schema(tmp_path, 3))
    with pytest.raises(SchemaError) as refused:
        upgrade(engine, _schema(tmp_path, 2))
    message = str(refused.value)
    assert "revision 0003, newer than this framework's 0002" in message
    assert "\n" not in message
    engine.dispose()


def test_a_failed_revision_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with pytest.raises(RuntimeError, match="half-way"):
        upgrade(engine, _schema(tmp_path, 2, failing=2))
    assert _tables(engine) == set()  # not even t0001: one transaction
    upgrade(engine, _schema(tmp_path, 1))
    with pytest.raises(RuntimeError, match="half-way"):
        upgrade(engine, _schema(tmp_path, 3, failing=3))
    assert _tables(engine) == {"t0001", "alembic_version"}
    with engine.connect() as conn:
        assert revision_of(conn) == "0001"
    engine.dispose()


def test_processes_opening_at_once_upgrade_one_after_the_other(tmp_path: Path) -> None:
    schema = _schema(tmp_path, 4)
    engines = [_engine(tmp_path) for _ in range(4)]
    errors: list[BaseException] = []

    def open_one(engine: Engine) -> None:
        try:
            upgrade(engine, schema)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engines[0].connect() as conn:
        assert revision_of(conn) == "0004"
    for engine in engines:
        engine.dispose()
