"""Store: flow records and markers appended durably as they are audited (SQLite, WAL).

Commits are batched by time and count, so a SIGKILL loses at most the last batch.
Reports are rebuilt from the store, opened read-only. `.phonehome-key` (0600) beside
it keys every fingerprint and is never written into the store or a report.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, Union

import orjson

from ..analysis.records import read_flow
from ..model import Marker

if TYPE_CHECKING:
    from .store_pg import PostgresContents, PostgresStore, StoreSelection

FlowT = TypeVar("FlowT")
StoreTarget = Union[Path, str]
"""A file path (the embedded SQLite store) or a postgresql:// URL (the shared store)."""

__all__ = ["FindingsStore", "StoreError", "StoreTarget", "read_store", "open_store", "Reader",
           "StoreContents", "dumps_record", "is_postgres_url", "store_key", "store_label",
           "default_sensor", "fingerprint_key", "record_default"]

SCHEMA_VERSION = "1"
KEY_FILE = ".phonehome-key"
KEY_BYTES = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    timestamp REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flows_by_time ON flows (timestamp, seq);
CREATE TABLE IF NOT EXISTS markers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp REAL NOT NULL,
    label TEXT NOT NULL,
    source TEXT NOT NULL,
    flow_id TEXT
);
"""


class StoreError(Exception):
    """A store that cannot be opened or read."""


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def store_label(target: StoreTarget) -> str:
    """How to name a store in messages: a DSN never shows its password."""
    if is_postgres_url(target):
        from .pg_schema import mask_dsn

        return mask_dsn(str(target))
    return str(target)


def default_sensor() -> str:
    return socket.gethostname() or "localhost"


def open_store(target: StoreTarget, *, fresh: bool = True, sensor: str | None = None,
               spool_dir: Path | None = None, must_connect: bool = True
               ) -> FindingsStore | PostgresStore:
    """The writer for a store target. A shared store is never emptied (`fresh` is for
    files); with `must_connect` False it starts queueing locally when it is away."""
    if is_postgres_url(target):
        from .store_pg import PostgresStore

        return PostgresStore(str(target), sensor=sensor or default_sensor(),
                             spool_dir=spool_dir or Path("reports"), must_connect=must_connect)
    store = FindingsStore(Path(target), fresh=fresh)
    store.set_meta("sensor", sensor or default_sensor())
    return store


def record_default(value: Any) -> Any:
    """How a record's odd values are written: bytes as hex, sets and tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps_record(record: Mapping[str, Any]) -> str:
    try:
        return orjson.dumps(record, default=record_default,
                            option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an integer wider than 64 bits in a decoded body
        return json.dumps(record, default=record_default, separators=(",", ":"))


def store_key(target: StoreTarget) -> bytes:
    """The fingerprint key of a store: a shared store keeps one for all its sensors (so
    fingerprints link across them); a file store's lives in `.phonehome-key` beside it."""
    if is_postgres_url(target):
        from .pg_schema import check_shared_store

        return check_shared_store(str(target))
    return fingerprint_key(Path(target).parent)


def fingerprint_key(folder: Path) -> bytes:
    """The per-install secret that keys fingerprints, kept in `folder`: the SQLite
    store's, or the report folder of a shared (PostgreSQL) store.

    Read when present (so two audits written to one folder link the same values),
    else created owner-only and atomically: written under a temporary name, then
    hard-linked into place, which fails if another process got there first."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / KEY_FILE
    for _ in range(3):
        try:
            return _read_key(path)
        except FileNotFoundError:
            pass
        temporary = folder / f"{KEY_FILE}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, os.urandom(KEY_BYTES).hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another audit made it first: read theirs
        finally:
            temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # someone loosened it: owner-only again
        text = os.read(fd, 4 * KEY_BYTES).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise OSError(f"{path}: not a phonehome key ({KEY_BYTES * 2} hex digits); "
                      "delete it to start a new one")
    return key


class FindingsStore:
    """Append-only writer. One per audit session; not thread-safe."""

    def __init__(
        self,
        path: Path,
        *,
        commit_interval_s: float = 0.2,
        commit_every: int = 100,
        fresh: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        # Owner-only from the first byte: create the file 0600 before SQLite opens it.
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )
        self.commit_interval_s = commit_interval_s
        self.commit_every = commit_every
        self._pending = 0
        self._last_commit = time.monotonic()
        self._in_transaction = False

    # --- writing ---------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN")
            self._in_transaction = True

    def set_meta(self, key: str, value: Any) -> None:
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str))
        )
        self._pending += 1
        self.flush_if_due()

    def append(self, record: Mapping[str, Any]) -> None:
        self._begin()
        self._db.execute(
            "INSERT INTO flows (id, timestamp, record) VALUES (?, ?, ?)",
            (
                str(record["id"]),
                float(record["timestamp"]),
                dumps_record(record),
            ),
        )
        self._pending += 1
        self.flush_if_due()

    def append_encoded(self, records: Sequence[tuple[str, float, str]]) -> None:
        """Records already written as JSON text: (id, timestamp, text) each."""
        self._begin()
        self._db.executemany("INSERT INTO flows (id, timestamp, record) VALUES (?, ?, ?)",
                             records)
        self._pending += len(records)
        self.flush_if_due()

    def add_marker(self, marker: Marker) -> None:
        self._begin()
        self._db.execute(
            "INSERT INTO markers (timestamp, label, source, flow_id) VALUES (?, ?, ?, ?)",
            (marker.timestamp, marker.label, marker.source, marker.flow_id),
        )
        self._pending += 1
        self.flush_if_due()

    def flush_if_due(self) -> None:
        if not self._pending:
            return
        if (
            self._pending >= self.commit_every
            or time.monotonic() - self._last_commit >= self.commit_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False
        self._pending = 0
        self._last_commit = time.monotonic()

    def close(self) -> None:
        """Commit, and leave a single self-contained file (no -wal or -shm)."""
        self.flush()
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError:
            pass  # a reader still has it open: stay in WAL mode, nothing is lost
        self._db.close()


# --- reading ---------------------------------------------------------------


class Reader:
    """A reader over one database connection (`_db`), closed at the end of a with block."""

    _db: Any

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreContents(Reader):
    """A read-only view of a store: meta, markers, and records streamed in time order.

    `since`/`until` (epoch seconds, until exclusive) narrow it to a time window.
    """

    def __init__(self, path: Path, *, since: float | None = None,
                 until: float | None = None) -> None:
        self.path = Path(path)
        clauses, self._params = [], []
        if since is not None:
            clauses.append("timestamp >= ?")
            self._params.append(since)
        if until is not None:
            clauses.append("timestamp < ?")
            self._params.append(until)
        self._where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such store")
        try:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._db.execute("SELECT count(*) FROM flows").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a phonehome store ({e})") from e

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self._db.execute("SELECT key, value FROM meta"):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        return out

    def markers(self) -> list[Marker]:
        rows = self._db.execute(
            f"SELECT timestamp, label, source, flow_id FROM markers{self._where} "
            "ORDER BY timestamp, seq", self._params)
        return [Marker(ts, label, source, flow_id) for ts, label, source, flow_id in rows]

    def count(self) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM flows{self._where}",
                                    self._params).fetchone()[0])

    def _rows(self) -> Iterator[tuple[float, str]]:
        # time, then id: the order reports list flows in (the index serves the time part)
        yield from self._db.execute(
            f"SELECT timestamp, record FROM flows{self._where} ORDER BY timestamp, id, seq",
            self._params)

    def records(self, *, decoded: bool = True) -> Iterator[dict[str, Any]]:
        """Records as stored, in time order; without their decoded bodies if `decoded`
        is False."""
        for _, text in self._rows():
            record = json.loads(text)  # not orjson: it reads wide integers as floats
            if not decoded:
                record["decoded"] = None
            yield record

    def flows(self, kind: type[FlowT]) -> Iterator[FlowT]:
        """Typed records in time order, streamed: `FlowRecord` whole, `FlowView` without
        the decoded body. A damaged record comes repaired, saying what was unusable."""
        for index, (stored_at, text) in enumerate(self._rows()):
            yield read_flow(text, kind, index, stored_at)



def read_store(target: StoreTarget, selection: StoreSelection | None = None
               ) -> StoreContents | PostgresContents:
    """A reader for a store target; `selection` picks sensors and a time window."""
    if is_postgres_url(target):
        from .store_pg import PostgresContents

        return PostgresContents(str(target), selection)
    if selection is not None and selection.sensors:
        raise StoreError(f"{target}: --sensor needs a shared (postgresql://) store")
    return StoreContents(Path(target), since=selection.since if selection else None,
                         until=selection.until if selection else None)
