"""The shared store: many sensors (proxies, offline imports) writing to one PostgreSQL.

Writes go through a background thread in batches, so the proxy never waits on the
network; while the database is away they wait in a local SQLite spool (owner-only).
psycopg is optional (`pip install 'phonehome[fleet]'`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ..analysis.records import read_flow
from ..model import Marker
from .pg_schema import check_schema, connect, first_line, mask_dsn, migrate, psycopg_module
from .store import FlowT, Reader, StoreError, dumps_record, is_postgres_url

__all__ = [
    "PostgresStore",
    "PostgresContents",
    "StoreSelection",
    "is_postgres_url",
]

log = logging.getLogger(__name__)

_RETRY_EVERY_S = 1.0


# --- the local spool --------------------------------------------------------------

# One row per write, in order: ("flow", id, timestamp, record) | ("marker", …) | ("meta", …).
_SPOOL_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                  item TEXT NOT NULL);
"""


class _Spool:
    """Writes the database could not take yet, on local disk (0600), oldest first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SPOOL_SCHEMA)
        self._lock = threading.Lock()  # the writer thread and the owner both use it

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def put(self, items: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO spool (kind, item) VALUES (?, ?)", items)
            self._db.execute("COMMIT")

    def oldest(self, limit: int) -> list[tuple[int, str, str]]:
        with self._lock:
            return list(self._db.execute(
                "SELECT seq, kind, item FROM spool ORDER BY seq LIMIT ?", (limit,)))

    def drop_through(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))

    def close(self) -> None:
        remaining = self.count()
        with self._lock:
            self._db.close()
        if not remaining:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def spool_path_for(folder: Path, sensor: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sensor)[:64] or "sensor"
    return folder / f".phonehome-spool-{safe}.sqlite"


# --- writing -------------------------------------------------------------------------


class PostgresStore:
    """Append-only writer for one sensor, with the SQLite store's interface.

    `append`, `add_marker` and `set_meta` only queue; a thread writes every
    `commit_interval_s` (or `commit_every` items). A flow id is unique per
    sensor: writing it again replaces it, so a retried batch is harmless.
    """

    def __init__(self, dsn: str, *, sensor: str, spool_dir: Path,
                 commit_interval_s: float = 0.2, commit_every: int = 200,
                 must_connect: bool = True) -> None:
        self.dsn = dsn
        self.sensor = sensor
        self.label = mask_dsn(dsn)
        self._connection: Any = None
        self._down_since: float | None = None
        self._spool = _Spool(spool_path_for(spool_dir, sensor))
        try:
            self._connection = self._open()
        except StoreError as e:
            if must_connect:  # an offline import fails fast on a wrong DSN
                self._spool.close()
                raise
            self._lost(e)
        self.commit_interval_s = commit_interval_s
        self.commit_every = commit_every
        self._queue: deque[tuple[str, str]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_retry = 0.0
        self._thread = threading.Thread(target=self._run, name="phonehome-pg-store",
                                        daemon=True)
        self._thread.start()

    def _open(self) -> Any:
        """A connection with the schema checked (and created or upgraded when needed)."""
        connection = connect(self.dsn)
        try:
            migrate(connection)
        except psycopg_module().Error as e:
            connection.close()
            raise StoreError(f"{self.label}: {first_line(e)}") from e
        except StoreError:
            connection.close()
            raise
        return connection

    # the writer interface ------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        self._put("meta", json.dumps([key, json.dumps(value, default=str)]))

    def append(self, record: dict[str, Any]) -> None:
        record = {**record, "sensor": self.sensor}
        self._put("flow", json.dumps([str(record["id"]), float(record["timestamp"]),
                                      dumps_record(record)]))

    def append_encoded(self, records: Sequence[tuple[str, float, str]]) -> None:
        """Records already written as JSON text (`dumps_record`), each given its sensor."""
        sensor = ',"sensor":' + json.dumps(self.sensor) + "}"
        for record_id, timestamp, text in records:
            self._put("flow", json.dumps([record_id, timestamp, text[:-1] + sensor]))

    def add_marker(self, marker: Marker) -> None:
        self._put("marker", json.dumps([marker.timestamp, marker.label, marker.source,
                                        marker.flow_id]))

    def flush_if_due(self) -> None:
        """The thread commits on its own schedule; nothing to do on the caller's."""

    def flush(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Write what is queued (or spool it), and stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(60)
        with self._lock:
            leftover = list(self._queue)
            self._queue.clear()
        if leftover:
            self._spool.put(leftover)
        left = self._spool.count()
        if left:
            log.warning(f"phonehome: {left} write(s) for {self.label} are queued in "
                        f"{self._spool.path}; they are written the next time sensor "
                        f"{self.sensor!r} reaches the store")
        self._spool.close()
        if self._connection is not None:
            self._connection.close()

    # the thread ----------------------------------------------------------------------

    def _put(self, kind: str, item: str) -> None:
        with self._lock:
            self._queue.append((kind, item))
            if len(self._queue) >= self.commit_every:
                self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.commit_interval_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
            try:
                self._write(batch, final=stopping)
            except Exception as e:  # noqa: BLE001 - never lose a batch to a surprise
                log.error(f"phonehome: store writer: {e}; queueing locally")
                self._spool.put(batch)
            if stopping:
                return

    def _write(self, batch: list[tuple[str, str]], *, final: bool) -> None:
        """Spool first (oldest), then the batch; on a lost connection, spool the batch."""
        if self._connected(final=final):
            try:
                self._drain_spool()
                if batch:
                    self._insert(batch)
                return
            except psycopg_module().OperationalError as e:
                self._lost(e)
        if batch:
            self._spool.put(batch)

    def _connected(self, *, final: bool) -> bool:
        if self._connection is not None and not self._connection.closed:
            return True
        now = time.monotonic()
        if not final and now < self._next_retry:
            return False
        self._next_retry = now + _RETRY_EVERY_S
        try:
            self._connection = self._open()
        except StoreError:
            return False
        log.warning(f"phonehome: store {self.label} is back after "
                    f"{now - (self._down_since or now):.0f}s; writing the queued flows")
        self._down_since = None
        return True

    def _lost(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(f"phonehome: store {self.label} unreachable ({first_line(error)}); "
                        f"queueing flows in {self._spool.path}")
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - it is gone either way
                pass
        self._connection = None

    def _drain_spool(self) -> None:
        while True:
            rows = self._spool.oldest(1000)
            if not rows:
                return
            self._insert([(kind, item) for _, kind, item in rows])
            self._spool.drop_through(rows[-1][0])

    def _insert(self, batch: Sequence[tuple[str, str]]) -> None:
        flows, markers, metas = [], [], []
        for kind, item in batch:
            values = json.loads(item)
            if kind == "flow":
                flows.append((self.sensor, *values))
            elif kind == "marker":
                markers.append((self.sensor, *values))
            else:
                metas.append((self.sensor, *values))
        connection = self._connection
        with connection.transaction(), connection.cursor() as cursor:
            if flows:
                cursor.executemany(
                    "INSERT INTO phonehome_flows (sensor, id, timestamp, record) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (sensor, id) DO UPDATE "
                    "SET timestamp = EXCLUDED.timestamp, record = EXCLUDED.record", flows)
            if markers:
                cursor.executemany(
                    "INSERT INTO phonehome_markers (sensor, timestamp, label, source, flow_id) "
                    "VALUES (%s, %s, %s, %s, %s)", markers)
            if metas:
                cursor.executemany(
                    "INSERT INTO phonehome_meta (sensor, key, value) VALUES (%s, %s, %s) "
                    "ON CONFLICT (sensor, key) DO UPDATE SET value = EXCLUDED.value", metas)


# --- reading -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSelection:
    """Which part of a shared store a report covers: sensors and a time window."""

    sensors: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None

    def where(self, time_column: str = "timestamp") -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.sensors:
            clauses.append("sensor = ANY(%s)")
            params.append(list(self.sensors))
        if self.since is not None:
            clauses.append(f"{time_column} >= %s")
            params.append(self.since)
        if self.until is not None:
            clauses.append(f"{time_column} < %s")
            params.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class PostgresContents(Reader):
    """A read-only view of the shared store, with the SQLite reader's interface."""

    def __init__(self, dsn: str, selection: StoreSelection | None = None) -> None:
        self.dsn = dsn
        self.label = mask_dsn(dsn)
        self.selection = selection or StoreSelection()
        self._db = connect(dsn)
        try:
            self._db.read_only = True
            # one snapshot for every pass a report makes over the flows
            self._db.isolation_level = psycopg_module().IsolationLevel.REPEATABLE_READ
            check_schema(self._db, dsn)
        except BaseException:
            self._db.close()
            raise

    def sensors(self) -> list[str]:
        """The sensors this selection covers that have flows or meta in the store."""
        where, params = self.selection.where()
        found = {row[0] for row in self._db.execute(
            f"SELECT DISTINCT sensor FROM phonehome_flows{where}", params)}
        if self.selection.sensors:
            found |= {row[0] for row in self._db.execute(
                "SELECT DISTINCT sensor FROM phonehome_meta WHERE sensor = ANY(%s)",
                (list(self.selection.sensors),))}
        return sorted(found)

    def meta(self) -> dict[str, Any]:
        """One sensor's meta as it is; for several, their inputs merged."""
        per_sensor: dict[str, dict[str, Any]] = {}
        sensors = self.sensors()
        for sensor, key, value in self._db.execute(
                "SELECT sensor, key, value FROM phonehome_meta WHERE sensor = ANY(%s) "
                "ORDER BY sensor, key", (sensors,)):
            try:
                per_sensor.setdefault(sensor, {})[key] = json.loads(value)
            except ValueError:
                per_sensor.setdefault(sensor, {})[key] = value
        if len(per_sensor) <= 1:
            return next(iter(per_sensor.values()), {})
        return {"inputs": _merge_inputs([m.get("inputs") or {} for m in per_sensor.values()])}

    def markers(self) -> list[Marker]:
        where, params = self.selection.where()
        rows = self._db.execute(
            "SELECT timestamp, label, source, flow_id FROM phonehome_markers"
            f"{where} ORDER BY timestamp, seq", params)
        return [Marker(ts, label, source, flow_id) for ts, label, source, flow_id in rows]

    def count(self) -> int:
        where, params = self.selection.where()
        return int(self._db.execute(f"SELECT count(*) FROM phonehome_flows{where}",
                                    params).fetchone()[0])

    def _rows(self) -> Iterator[tuple[str, str, float, str]]:
        """(sensor, id, time, record text) in the order reports list flows: time, then id."""
        where, params = self.selection.where()
        with self._db.cursor(name="phonehome_records") as cursor:
            cursor.itersize = 500
            cursor.execute(f"SELECT sensor, id, timestamp, record FROM phonehome_flows{where} "
                           'ORDER BY timestamp, id COLLATE "C", sensor, seq', params)
            yield from cursor

    def records(self, *, decoded: bool = True) -> Iterator[dict[str, Any]]:
        """Records in time order, streamed; an id two sensors share gets its sensor prefixed."""
        owners: dict[str, str] = {}
        for sensor, flow_id, _, text in self._rows():
            record = json.loads(text)  # not orjson: it reads wide integers as floats
            record["sensor"] = sensor
            owner = owners.setdefault(flow_id, sensor)
            if owner != sensor:
                record["id"] = f"{sensor}/{record['id']}"
            if not decoded:
                record["decoded"] = None
            yield record

    def flows(self, kind: type[FlowT]) -> Iterator[FlowT]:
        """Typed records in time order, streamed (see StoreContents.flows), each with
        its sensor; an id two sensors share gets its sensor prefixed."""
        owners: dict[str, str] = {}
        for index, (sensor, flow_id, stored_at, text) in enumerate(self._rows()):
            flow = read_flow(text, kind, index, stored_at)
            owner = owners.setdefault(flow_id, sensor)
            flow_id = flow.id if owner == sensor else f"{sensor}/{flow.id}"  # type: ignore[attr-defined]
            yield msgspec.structs.replace(flow, sensor=sensor, id=flow_id)  # type: ignore[type-var]


def _merge_inputs(all_inputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(all_inputs[0])
    for inputs in all_inputs[1:]:
        for key, value in inputs.items():
            if isinstance(value, list):
                merged[key] = list(merged.get(key) or []) + [
                    v for v in value if v not in (merged.get(key) or [])]
            elif isinstance(value, bool):
                merged[key] = bool(merged.get(key)) or value
            else:
                merged.setdefault(key, value)
    return merged
