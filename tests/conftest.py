"""Shared fixtures: paths, a real mitmdump runner, and a plain local HTTP server."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builders import ROOT

SCHEMA_PATH = ROOT / "addons" / "phonehome" / "report" / "report.schema.json"


def stored_flows(store: Path) -> int:
    """Flows a running audit has committed to its store so far (0 before its tables exist)."""
    if not store.exists():
        return 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM flows").fetchone()[0])
    except sqlite3.OperationalError:  # the audit is still creating the tables
        return 0
    finally:
        db.close()


def wait_for_stored_flows(store: Path, count: int, timeout: float = 60.0) -> int:
    """Poll the store until it holds `count` flows or `timeout` passes; the last count."""
    deadline = time.monotonic() + timeout
    while (found := stored_flows(store)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def assert_valid_report(report: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(report, schema)


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received.append(  # type: ignore[attr-defined]
            {"method": self.command, "path": self.path, "headers": dict(self.headers),
             "body": body}
        )
        reply = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    """A plain HTTP server on 127.0.0.1 that records what it receives."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.received = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server for the session (initdb + pg_ctl on a loopback port)."""
    pytest.importorskip("psycopg", reason="the fleet extra is not installed")
    from pg_support import PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    server = PostgresServer(bin_dir).init()
    server.start()
    server.wait_ready()
    yield server
    server.destroy()
