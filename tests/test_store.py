"""The findings store: batched durable appends, read-only reopening."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from phonehome.audit.store import FindingsStore, StoreError, read_store
from phonehome.model import Marker


def _record(i: int) -> dict:
    return {"id": f"f{i}", "timestamp": 1000.0 + i, "findings": [], "n": i}


def test_records_and_markers_round_trip_in_time_order(tmp_path):
    store = FindingsStore(tmp_path / "s.sqlite")
    for i in (3, 1, 2):
        store.append(_record(i))
    store.add_marker(Marker(1001.5, "meeting_join", "auditor"))
    store.set_meta("inputs", {"captures": ["a.mitm"]})
    store.close()
    with read_store(tmp_path / "s.sqlite") as contents:
        assert [r["id"] for r in contents.records()] == ["f1", "f2", "f3"]
        assert contents.markers() == [Marker(1001.5, "meeting_join", "auditor", None)]
        assert contents.meta()["inputs"] == {"captures": ["a.mitm"]}
        assert contents.count() == 3


def test_store_file_is_owner_only(tmp_path):
    store = FindingsStore(tmp_path / "s.sqlite")
    store.close()
    assert stat.S_IMODE(os.stat(tmp_path / "s.sqlite").st_mode) == 0o600


@pytest.mark.parametrize(("commit_every", "appended", "visible"), [
    (10, 9, 0),      # below the batch size and within the interval: not yet committed
    (10, 10, 10),    # a full batch commits
    (10, 25, 20),    # two full batches commit, five pending
])
def test_commits_are_batched(tmp_path, commit_every, appended, visible):
    store = FindingsStore(tmp_path / "s.sqlite", commit_every=commit_every,
                          commit_interval_s=3600)
    for i in range(appended):
        store.append(_record(i))
    # Another connection sees only what was committed, as a crash would leave it.
    other = sqlite3.connect(tmp_path / "s.sqlite")
    assert other.execute("SELECT count(*) FROM flows").fetchone()[0] == visible
    other.close()
    store.close()


def test_commit_interval_elapses(tmp_path):
    store = FindingsStore(tmp_path / "s.sqlite", commit_every=1000, commit_interval_s=0.0)
    store.append(_record(1))
    other = sqlite3.connect(tmp_path / "s.sqlite")
    assert other.execute("SELECT count(*) FROM flows").fetchone()[0] == 1
    other.close()
    store.close()


def test_reading_does_not_modify_the_store(tmp_path):
    store = FindingsStore(tmp_path / "s.sqlite")
    store.append(_record(1))
    store.close()
    before = (tmp_path / "s.sqlite").read_bytes()
    with read_store(tmp_path / "s.sqlite") as contents:
        list(contents.records())
    assert (tmp_path / "s.sqlite").read_bytes() == before


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such store"),
    (b"this is not sqlite at all" * 10, "not a phonehome store"),
])
def test_bad_stores_raise_store_error(tmp_path, content, message):
    path = tmp_path / "bad.sqlite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StoreError, match=message):
        read_store(path)


def test_values_orjson_cannot_encode_are_still_stored(tmp_path):
    store = FindingsStore(tmp_path / "s.sqlite")
    record = {"id": "big", "timestamp": 1.0, "decoded": {"n": 10**40, "b": b"\x00\x01"}}
    store.append(record)
    store.close()
    with read_store(tmp_path / "s.sqlite") as contents:
        (stored,) = list(contents.records())
    assert stored["decoded"] == {"n": 10**40, "b": "0001"}


def test_closing_while_a_reader_is_open_keeps_everything(tmp_path):
    store = FindingsStore(tmp_path / "s.sqlite")
    store.append(_record(1))
    store.flush()
    reader = sqlite3.connect(tmp_path / "s.sqlite")
    reader.execute("SELECT count(*) FROM flows").fetchone()
    store.append(_record(2))
    store.close()  # cannot leave WAL mode while the reader is open; must not fail
    reader.close()
    with read_store(tmp_path / "s.sqlite") as contents:
        assert [r["id"] for r in contents.records()] == ["f1", "f2"]
