"""The shared store on a real PostgreSQL server: schema, writes, reads, the local spool,
and a least-privilege role."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from builders import ROOT
from phonehome.audit.pg_schema import SCHEMA_VERSION, check_shared_store, mask_dsn
from phonehome.audit.store import StoreError, read_store
from phonehome.audit.store_pg import PostgresContents, PostgresStore, StoreSelection
from phonehome.model import Marker


@pytest.mark.parametrize("dsn, masked", [
    ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://h/db?password=pw&sslmode=require",
     "postgresql://h/db?password=***&sslmode=require"),
    ("postgres://u:p%40ss@h/db", "postgres://u:***@h/db"),
])
def test_a_dsn_is_shown_without_its_password(dsn, masked):
    assert mask_dsn(dsn) == masked


def _records(dsn: str, **selection: object) -> list[dict]:
    with PostgresContents(dsn, StoreSelection(**selection)) as contents:  # type: ignore[arg-type]
        return list(contents.records())


def test_writes_and_reads_back_in_time_order(postgres, tmp_path):
    dsn = postgres.database()
    for sensor, offset in (("a", 0.0), ("b", 0.5)):
        store = PostgresStore(dsn, sensor=sensor, spool_dir=tmp_path)
        store.set_meta("inputs", {"captures": [f"{sensor}.mitm"], "identity": sensor == "b"})
        for i in range(3):
            store.append({"id": f"f{i}", "timestamp": 100 + i + offset, "wide": 2**70})
        store.add_marker(Marker(100.2 + offset, "meeting_join", "auditor", None))
        store.close()
    records = _records(dsn)
    assert [(r["sensor"], r["id"]) for r in records] == [
        ("a", "f0"), ("b", "b/f0"), ("a", "f1"), ("b", "b/f1"), ("a", "f2"), ("b", "b/f2")]
    assert records[0]["wide"] == 2**70  # wide integers survive
    assert [r["id"] for r in _records(dsn, sensors=("b",))] == ["f0", "f1", "f2"]
    assert [r["id"] for r in _records(dsn, since=101.0, until=102.0)] == ["f1", "b/f1"]
    with read_store(dsn) as contents:
        assert contents.count() == 6
        assert len(contents.markers()) == 2
        inputs = contents.meta()["inputs"]
        assert inputs["captures"] == ["a.mitm", "b.mitm"] and inputs["identity"] is True


def test_writing_a_flow_again_replaces_it(postgres, tmp_path):
    dsn = postgres.database()
    for value in ("first", "second"):
        store = PostgresStore(dsn, sensor="s", spool_dir=tmp_path)
        store.append({"id": "same", "timestamp": 1.0, "value": value})
        store.close()
    assert [r["value"] for r in _records(dsn)] == ["second"]


def test_a_store_from_a_newer_phonehome_is_refused(postgres, tmp_path):
    import psycopg

    dsn = postgres.database()
    check_shared_store(dsn)
    check_shared_store(dsn)  # idempotent
    with psycopg.connect(dsn, autocommit=True) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM phonehome_schema")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        connection.execute("INSERT INTO phonehome_schema (version) VALUES (%s)",
                           (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this phonehome"):
        PostgresStore(dsn, sensor="s", spool_dir=tmp_path)
    with pytest.raises(StoreError, match="schema version"):
        PostgresContents(dsn)


def test_writes_wait_in_the_spool_while_the_database_is_away(postgres, tmp_path):
    dsn = postgres.database()
    store = PostgresStore(dsn, sensor="s", spool_dir=tmp_path, commit_interval_s=0.05)
    store.append({"id": "before", "timestamp": 1.0})
    postgres.stop("fast")
    try:
        for i in range(20):
            store.append({"id": f"during{i}", "timestamp": 2.0 + i})
        deadline = time.monotonic() + 30
        spool = tmp_path / ".phonehome-spool-s.sqlite"
        while not spool.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spool.stat().st_mode & 0o777 == 0o600
    finally:
        postgres.start()
    postgres.wait_ready()
    store.append({"id": "after", "timestamp": 100.0})
    store.close()
    ids = [r["id"] for r in _records(dsn)]
    assert ids == ["before", *[f"during{i}" for i in range(20)], "after"]
    assert not spool.exists()


def test_a_spool_left_by_an_earlier_run_is_written_first(postgres, tmp_path):
    dsn = postgres.database()
    down = f"postgresql://postgres@127.0.0.1:{postgres.port + 1 if postgres.port < 65535 else 1}/x"
    store = PostgresStore(down, sensor="s", spool_dir=tmp_path, must_connect=False)
    store.append({"id": "queued", "timestamp": 1.0})
    store.close()
    spool = tmp_path / ".phonehome-spool-s.sqlite"
    assert spool.exists()
    # The same sensor and spool, now with a reachable store: the queue goes in first.
    store = PostgresStore(dsn, sensor="s", spool_dir=tmp_path)
    store.append({"id": "new", "timestamp": 2.0})
    store.close()
    assert [r["id"] for r in _records(dsn)] == ["queued", "new"]
    assert not spool.exists()


def test_a_least_privilege_role_writes_and_reads_but_cannot_change_the_schema(postgres,
                                                                           tmp_path):
    import psycopg

    dsn = postgres.database()
    check_shared_store(dsn)  # the owner creates the schema
    database = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn, autocommit=True) as connection:
        readme = (ROOT / "README.md").read_text()
        for statement in readme.split("```sql", 1)[1].split("```", 1)[0].split(";"):
            if statement.strip():
                connection.execute(statement.replace("phonehome_db", database)
                                   .replace("'change-me'", "'pw'"))
    sensor_dsn = f"postgresql://phonehome_sensor:pw@127.0.0.1:{postgres.port}/{database}"
    store = PostgresStore(sensor_dsn, sensor="s", spool_dir=tmp_path)
    store.append({"id": "f", "timestamp": 1.0})
    store.close()
    assert [r["id"] for r in _records(sensor_dsn)] == ["f"]
    with psycopg.connect(sensor_dsn, autocommit=True) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("DELETE FROM phonehome_flows")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("DROP TABLE phonehome_flows")


def test_the_cli_creates_the_schema(postgres):
    dsn = postgres.database()
    result = subprocess.run([sys.executable, "-m", "phonehome", "store", "migrate", dsn],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"schema version {SCHEMA_VERSION}" in result.stdout
    assert mask_dsn(dsn) in result.stdout
    with PostgresContents(dsn) as contents:
        assert contents.count() == 0
