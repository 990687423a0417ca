"""`LocalDA`: the embedded DA backend, a content-addressed store in one directory.

    PATH/objects/ab/cdef...   one file per blob, named by the hex of keccak(data); the first
                              byte fans out into 256 directories
    PATH/tmp/                 files being written; emptied at open
    PATH/index.sqlite         submissions(seq, id, size, submitted_ms), in submission order
                              (SQLAlchemy; versioned by da/migrations/local/)

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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Connection, Engine, LargeBinary, MetaData, Table, func, select, text

from da.backend import DARef
from da.errors import CorruptData, DataNotFound
from rollup.crypto import keccak
from storage.engine import Int64, insert_ignore, make_engine, sqlite_url
from storage.migrate import Schema, SchemaError, has_tables, upgrade

__all__ = ["LocalDA", "LocalEntry", "INDEX_SCHEMA", "index_metadata"]

NAME = "local"

index_metadata = MetaData()
submissions_table = Table(
    "submissions",
    index_metadata,
    Column("seq", Int64, primary_key=True, autoincrement=True),
    Column("id", LargeBinary, nullable=False, unique=True),
    Column("size", Int64, nullable=False),
    Column("submitted_ms", Int64, nullable=False),
    sqlite_autoincrement=True,  # a seq is never used twice
)


def _legacy(conn: Connection) -> bool:
    """An index from before migrations has the table and `PRAGMA user_version` 1."""
    if not has_tables(conn, "submissions"):
        return False
    version = conn.execute(text("PRAGMA user_version")).scalar()
    if version not in (0, 1):
        raise SchemaError(f"the DA index has schema {version}, which no framework version wrote")
    return True


INDEX_SCHEMA = Schema("DA index", Path(__file__).parent / "migrations" / "local", _legacy)


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

    def __init__(
        self,
        path: str | Path,
        max_blob_size: int = 1 << 20,
        clock: Callable[[], int] = _wall_clock_ms,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.max_blob_size = max_blob_size
        self.readonly = readonly
        self._clock = clock
        self._objects = self.path / "objects"
        self._tmp = self.path / "tmp"
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        if readonly:  # another process owns the store: no index, no clean-up, no writes
            return
        for directory in (self.path, self._objects, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():  # half-written objects of a crashed submit
            leftover.unlink()
        engine = make_engine(sqlite_url(self.path / "index.sqlite"), synchronous="FULL")
        try:
            upgrade(engine, INDEX_SCHEMA)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> LocalDA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the DABackend port ----

    def submit(self, data: bytes) -> DARef:
        if len(data) > self.max_blob_size:
            raise ValueError(f"{len(data)} bytes exceed the blob limit of {self.max_blob_size}")
        blob_id = keccak(data)
        index = self._index()
        row = {"id": blob_id, "size": len(data), "submitted_ms": self._clock()}
        with self._lock:
            if not self._intact(blob_id):
                self._write_object(blob_id, data)
            with index.begin() as conn:
                conn.execute(insert_ignore(index, submissions_table, ["id"]), row)
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
        table = submissions_table
        query = select(table).where(table.c.seq > after).order_by(table.c.seq).limit(limit)
        with self._index().connect() as conn:
            rows = conn.execute(query).all()
        return [LocalEntry(r.seq, DARef(NAME, bytes(r.id)), r.size, r.submitted_ms) for r in rows]

    def head(self) -> int:
        """The seq of the newest submission, 0 when empty."""
        with self._index().connect() as conn:
            return int(conn.execute(select(func.max(submissions_table.c.seq))).scalar() or 0)

    def seq_of(self, ref: DARef) -> int | None:
        return self._seq_of(self._check_ref(ref))

    # ---- internals ----

    def _check_ref(self, ref: DARef) -> bytes:
        if ref.backend != NAME or len(ref.id) != 32:
            raise ValueError(f"{ref} is not a reference of the local backend")
        return ref.id

    def _index(self) -> Engine:
        if self._engine is None:
            raise RuntimeError(f"the DA store in {self.path} is open read-only")
        return self._engine

    def _seq_of(self, blob_id: bytes) -> int | None:
        if self._engine is None:
            return None
        query = select(submissions_table.c.seq).where(submissions_table.c.id == blob_id)
        with self._engine.connect() as conn:
            seq = conn.execute(query).scalar()
        return None if seq is None else int(seq)

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
