"""The shared PostgreSQL store's schema and connections: migrations, checks, the fleet's key.

A sensor creates or upgrades the schema (`migrate`); readers only check it (`check_schema`).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .store import StoreError

__all__ = [
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "mask_dsn",
    "psycopg_module",
    "connect",
    "first_line",
    "migrate",
    "check_schema",
    "check_shared_store",
    "shared_secret",
]

SCHEMA_VERSION = 1

# Each entry brings the schema from version i to i + 1. Only ever append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE phonehome_meta (
        sensor TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (sensor, key)
    );
    CREATE TABLE phonehome_flows (
        seq BIGSERIAL PRIMARY KEY,
        sensor TEXT NOT NULL,
        id TEXT NOT NULL,
        timestamp DOUBLE PRECISION NOT NULL,
        record TEXT NOT NULL,
        UNIQUE (sensor, id)
    );
    CREATE INDEX phonehome_flows_by_time ON phonehome_flows (timestamp, sensor, seq);
    CREATE TABLE phonehome_markers (
        seq BIGSERIAL PRIMARY KEY,
        sensor TEXT NOT NULL,
        timestamp DOUBLE PRECISION NOT NULL,
        label TEXT NOT NULL,
        source TEXT NOT NULL,
        flow_id TEXT
    );
    CREATE TABLE phonehome_secret (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)

_MIGRATION_LOCK = 0x70686F6E65  # pg_advisory_xact_lock key: "phone"
_CONNECT_TIMEOUT_S = 3


def mask_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and reports."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "postgresql://(unparsable DSN)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = "&".join(
        "password=***" if pair.lower().startswith("password=") else pair
        for pair in parts.query.split("&")
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def psycopg_module() -> Any:
    try:
        import psycopg
    except ImportError as e:
        raise StoreError(
            "a postgresql:// store needs psycopg: pip install 'phonehome[fleet]'") from e
    return psycopg


def connect(dsn: str) -> Any:
    psycopg = psycopg_module()
    try:
        return psycopg.connect(dsn, connect_timeout=_CONNECT_TIMEOUT_S,
                               application_name="phonehome")
    except psycopg.Error as e:
        raise StoreError(f"{mask_dsn(dsn)}: cannot connect ({first_line(e)})") from e


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _schema_version(connection: Any) -> int:
    if connection.execute("SELECT to_regclass('phonehome_schema')").fetchone()[0] is None:
        return 0
    return int(connection.execute("SELECT max(version) FROM phonehome_schema").fetchone()[0]
               or 0)


def migrate(connection: Any) -> int:
    """Create or upgrade the schema; the version it is at. Safe to run from many sensors,
    and a role that may only insert and select passes when the schema is current."""
    psycopg = psycopg_module()
    with connection.transaction():
        current = _schema_version(connection)
        if current == SCHEMA_VERSION:
            return current
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store's schema is version {current}, newer than this "
                             f"phonehome knows ({SCHEMA_VERSION}): upgrade phonehome")
        try:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS phonehome_schema (version INTEGER NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            current = _schema_version(connection)  # another sensor may have just done it
            for version in range(current, SCHEMA_VERSION):
                connection.execute(MIGRATIONS[version])
                connection.execute("INSERT INTO phonehome_schema (version) VALUES (%s)",
                                   (version + 1,))
        except psycopg.errors.InsufficientPrivilege as e:
            raise StoreError(f"the store's schema is at version {current} of {SCHEMA_VERSION} "
                             "and this role may not upgrade it: run `phonehome store migrate "
                             "DSN` as the database owner") from e
    return SCHEMA_VERSION


def check_schema(connection: Any, dsn: str) -> None:
    """Readers never migrate: they only check that the schema is one they can read."""
    psycopg = psycopg_module()
    try:
        row = connection.execute("SELECT max(version) FROM phonehome_schema").fetchone()
    except psycopg.errors.UndefinedTable as e:
        raise StoreError(f"{mask_dsn(dsn)}: not a phonehome store (no schema)") from e
    if int(row[0] or 0) != SCHEMA_VERSION:
        raise StoreError(f"{mask_dsn(dsn)}: store schema version {row[0]}, "
                         f"this phonehome reads version {SCHEMA_VERSION}")


def check_shared_store(dsn: str) -> bytes:
    """Connect, create or upgrade the schema, and return the store's fingerprint key:
    a wrong DSN fails before any traffic."""
    connection = connect(dsn)
    try:
        migrate(connection)
        return shared_secret(connection)
    except psycopg_module().Error as e:
        raise StoreError(f"{mask_dsn(dsn)}: {first_line(e)}") from e
    finally:
        connection.close()


def shared_secret(connection: Any) -> bytes:
    """The fleet's fingerprint key: one per store, so every sensor links the same values."""
    with connection.transaction():
        connection.execute(
            "INSERT INTO phonehome_secret (name, value) VALUES ('fingerprint', %s) "
            "ON CONFLICT (name) DO NOTHING", (secrets.token_hex(32),))
        row = connection.execute(
            "SELECT value FROM phonehome_secret WHERE name = 'fingerprint'").fetchone()
    return bytes.fromhex(row[0])
