"""`LocalDA`: the embedded DA backend, a content-addressed store in one directory.

    PATH/objects/ab/cdef...   one file per blob, named by the hex of keccak(data); the first
                              byte fans out into 256 directories
    PATH/tmp/                 files being written; emptied at open
    PATH/index.sqlite         submissions(seq, id, size, submitted_ms), in submission order

`submit` writes the object first (tmp file, fsync, rename into place, fsync the directory)
and then its index row (SQLite, synchronous=FULL), so after a crash an object may lack a row
(the next submit of the same bytes adopts it) but a row never lacks its object. Submitting
the same bytes twice stores them once, at their first position (and repairs a damaged
object). One process owns a store at a time; others (verifiers) open it with `readonly=True`,
which reads objects only and touches nothing. `get` re-hashes what it reads: a tampered or
lost object raises `CorruptData`, an unknown id `DataNotFound`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from da.backend import DARef
from da.errors import CorruptData, DataNotFound
from rollup.crypto import keccak

__all__ = ["LocalDA", "LocalEntry"]

NAME = "local"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    submitted_ms INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class LocalEntry:
    seq: int  # 1, 2, ... in submission order
    ref: DARef
    size: int
    submitted_ms: int


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalDA:
    name = NAME

    def __init__(self, path: str | Path, max_blob_size: int = 1 << 20,
                 clock: Callable[[], int] = _wall_clock_ms,
                 readonly: bool = False) -> None:  # fmt: skip
        self.path = Path(path)
        self.max_blob_size = max_blob_size
        self.readonly = readonly
        self._clock = clock
        self._objects = self.path / "objects"
        self._tmp = self.path / "tmp"
        self._lock = threading.Lock()
        if readonly:  # another process owns the store: no index, no clean-up, no writes
            self._conn: sqlite3.Connection | None = None
            return
        for directory in (self.path, self._objects, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():  # half-written objects of a crashed submit
            leftover.unlink()
        db = sqlite3.connect(self.path / "index.sqlite", check_same_thread=False,
                             isolation_level=None)  # fmt: skip
        self._conn = db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(f"DA index schema {version}, this node needs {SCHEMA_VERSION}")
        db.execute(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def __enter__(self) -> LocalDA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the DABackend port ----

    def submit(self, data: bytes) -> DARef:
        if len(data) > self.max_blob_size:
            raise ValueError(f"{len(data)} bytes exceed the blob limit of {self.max_blob_size}")
        blob_id = keccak(data)
        db = self._index()
        with self._lock:
            if not self._intact(blob_id):
                self._write_object(blob_id, data)
            db.execute(
                "INSERT OR IGNORE INTO submissions (id, size, submitted_ms) VALUES (?, ?, ?)",
                (blob_id, len(data), self._clock()),
            )
        return DARef(NAME, blob_id)

    def get(self, ref: DARef) -> bytes:
        blob_id = self._check_ref(ref)
        try:
            data = self._object_path(blob_id).read_bytes()
        except FileNotFoundError:
            if self._seq_of(blob_id) is not None:
                raise CorruptData(f"{ref} is indexed but its object is missing") from None
            raise DataNotFound(f"no data under {ref}") from None
        if keccak(data) != blob_id:
            raise CorruptData(f"the object of {ref} does not match its hash")
        return data

    # ---- listing, for the verifier ----

    def entries(self, after: int = 0, limit: int = 1_000) -> list[LocalEntry]:
        """Submissions with seq > `after`, oldest first."""
        db = self._index()
        with self._lock:
            rows = db.execute(
                "SELECT seq, id, size, submitted_ms FROM submissions WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [LocalEntry(seq, DARef(NAME, bytes(i)), size, ms) for seq, i, size, ms in rows]

    def head(self) -> int:
        """The seq of the newest submission, 0 when empty."""
        db = self._index()
        with self._lock:
            row = db.execute("SELECT MAX(seq) FROM submissions").fetchone()
        return int(row[0] or 0)

    def seq_of(self, ref: DARef) -> int | None:
        return self._seq_of(self._check_ref(ref))

    # ---- internals ----

    def _check_ref(self, ref: DARef) -> bytes:
        if ref.backend != NAME or len(ref.id) != 32:
            raise ValueError(f"{ref} is not a reference of the local backend")
        return ref.id

    def _index(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the DA store in {self.path} is open read-only")
        return self._conn

    def _seq_of(self, blob_id: bytes) -> int | None:
        if self._conn is None:
            return None
        with self._lock:
            query = "SELECT seq FROM submissions WHERE id = ?"
            row = self._conn.execute(query, (blob_id,)).fetchone()
        return None if row is None else int(row[0])

    def _intact(self, blob_id: bytes) -> bool:
        try:
            return keccak(self._object_path(blob_id).read_bytes()) == blob_id
        except FileNotFoundError:
            return False

    def _object_path(self, blob_id: bytes) -> Path:
        name = blob_id.hex()
        return self._objects / name[:2] / name[2:]

    def _write_object(self, blob_id: bytes, data: bytes) -> None:
        target = self._object_path(blob_id)
        if not target.parent.exists():
            target.parent.mkdir()
            _fsync_dir(self._objects)
        tmp = self._tmp / f"{blob_id.hex()}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
