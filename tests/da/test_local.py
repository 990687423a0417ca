"""The embedded DA backend: content addressing, durability across reopen, tamper detection, an
index written before migrations."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

import pytest

from da.backend import DABackend, DARef
from da.errors import CodecError, CorruptData, DataNotFound
from da.local import INDEX_SCHEMA, LocalDA, index_metadata
from rollup.crypto import keccak
from storage.migrate import SchemaError, drift, head_of, revision_of


def _clock() -> itertools.count[int]:
    return itertools.count(1_000)


def test_submit_get_and_list_in_submission_order(tmp_path: Path) -> None:
    ticks = _clock()
    with LocalDA(tmp_path / "da", clock=lambda: next(ticks)) as da:
        backend: DABackend = da
        refs = [backend.submit(f"blob {i}".encode()) for i in range(5)]
        assert refs[0] == DARef("local", keccak(b"blob 0"))
        assert [backend.get(r) for r in refs] == [f"blob {i}".encode() for i in range(5)]
        entries = da.entries()
        assert [e.ref for e in entries] == refs
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert [e.submitted_ms for e in entries] == [1000, 1001, 1002, 1003, 1004]
        assert [e.ref for e in da.entries(after=3, limit=1)] == [refs[3]]
        assert da.head() == 5


def test_same_bytes_are_stored_once_at_their_first_position(tmp_path: Path) -> None:
    with LocalDA(tmp_path) as da:
        first = da.submit(b"a")
        da.submit(b"b")
        assert da.submit(b"a") == first
        assert [e.ref for e in da.entries()] == [first, DARef("local", keccak(b"b"))]
        assert da.seq_of(first) == 1


def test_durable_across_reopen(tmp_path: Path) -> None:
    blobs = [os.urandom(n) for n in (0, 1, 1000, 300_000)]
    with LocalDA(tmp_path) as da:
        refs = [da.submit(b) for b in blobs]
    with LocalDA(tmp_path) as da:
        assert [da.get(r) for r in refs] == blobs
        assert [e.ref for e in da.entries()] == refs
        assert [e.size for e in da.entries()] == [len(b) for b in blobs]


def test_tampered_and_lost_objects_are_detected(tmp_path: Path) -> None:
    with LocalDA(tmp_path) as da:
        ref = da.submit(b"the batch")
        lost = da.submit(b"another batch")
    name = ref.id.hex()
    path = tmp_path / "objects" / name[:2] / name[2:]
    assert path.read_bytes() == b"the batch"
    path.write_bytes(b"the botch")
    lost_name = lost.id.hex()
    (tmp_path / "objects" / lost_name[:2] / lost_name[2:]).unlink()
    with LocalDA(tmp_path) as da:
        with pytest.raises(CorruptData, match="does not match"):
            da.get(ref)
        with pytest.raises(CorruptData, match="missing"):
            da.get(lost)
        with pytest.raises(DataNotFound):
            da.get(DARef("local", keccak(b"never submitted")))
        assert da.submit(b"the batch") == ref  # a resubmission repairs the object
        assert da.get(ref) == b"the batch"


def test_crash_leftovers_are_harmless(tmp_path: Path) -> None:
    with LocalDA(tmp_path) as da:
        da.submit(b"kept")
    (tmp_path / "tmp" / "half-written").write_bytes(b"partial")
    orphan = keccak(b"orphan")  # written before a crash, its index row never committed
    (tmp_path / "objects" / orphan.hex()[:2]).mkdir(exist_ok=True)
    (tmp_path / "objects" / orphan.hex()[:2] / orphan.hex()[2:]).write_bytes(b"orphan")
    with LocalDA(tmp_path) as da:
        assert list((tmp_path / "tmp").iterdir()) == []
        assert da.head() == 1
        assert da.submit(b"orphan") == DARef("local", orphan)  # adopted
        assert da.head() == 2


def test_limits_and_foreign_refs(tmp_path: Path) -> None:
    with LocalDA(tmp_path, max_blob_size=10) as da:
        with pytest.raises(ValueError, match="blob limit"):
            da.submit(b"x" * 11)
        with pytest.raises(ValueError, match="local backend"):
            da.get(DARef("celestia", b"\x01" * 40))


def test_refs_encode_and_decode() -> None:
    ref = DARef("local", keccak(b"x"))
    assert DARef.decode(ref.encode()) == ref
    assert ref.encode()[:6] == b"\x05local"
    assert str(ref) == "local:" + keccak(b"x").hex()
    for bad in (b"", b"\x09local", b"\x05LOCAL" + bytes(32)):
        with pytest.raises(CodecError):
            DARef.decode(bad)
    with pytest.raises(ValueError):
        DARef("", b"")


def test_an_index_from_before_migrations_keeps_its_order(tmp_path: Path) -> None:
    with LocalDA(tmp_path) as da:
        refs = [da.submit(b"first"), da.submit(b"second")]
    index = tmp_path / "index.sqlite"
    with sqlite3.connect(index) as db:  # back to what LocalDA wrote before migrations
        db.execute("DROP TABLE alembic_version")
        db.execute("DROP TABLE submissions")
        db.execute(
            "CREATE TABLE submissions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT "
            "NULL UNIQUE, size INTEGER NOT NULL, submitted_ms INTEGER NOT NULL)"
        )
        db.executemany(
            "INSERT INTO submissions (id, size, submitted_ms) VALUES (?, ?, 1)",
            [(r.id, 6) for r in refs],
        )
        db.execute("PRAGMA user_version=1")
    with LocalDA(tmp_path) as da:
        assert da._engine is not None
        with da._engine.connect() as conn:
            assert revision_of(conn) == head_of(INDEX_SCHEMA)
            # the old DDL's primary key lacked NOT NULL: a rowid, never NULL
            nullable = [(d[0][0], d[0][2], d[0][3]) for d in drift(conn, index_metadata)]
            assert nullable == [("modify_nullable", "submissions", "seq")]
        assert [e.ref for e in da.entries()] == refs
        third = da.submit(b"third")
        assert da.seq_of(third) == 3 and da.get(refs[0]) == b"first"
    with sqlite3.connect(index) as db:
        db.execute("DROP TABLE alembic_version")
        db.execute("PRAGMA user_version=7")
    with pytest.raises(SchemaError, match="DA index has schema 7"):
        LocalDA(tmp_path)


def test_a_fresh_index_has_the_declared_tables(tmp_path: Path) -> None:
    with LocalDA(tmp_path) as da:
        assert da._engine is not None
        with da._engine.connect() as conn:
            assert drift(conn, index_metadata) == []
