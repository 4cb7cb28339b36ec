"""Persistent identifiers: the same id value (by keyed fingerprint) in several flows.

Detection lists each flow's candidates (detect/persistent.py). A first pass finds the
fingerprints that recur (`RecurringIds`, sorted on disk); the second links only
those, so ids sent once (a fresh id a request) cost no memory.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .columns import IdList
from .records import Identifier

__all__ = ["PersistentIds", "RecurringIds", "only_recurring", "persistent_ids"]

_BATCH = 8192


class RecurringIds:
    """Which identifier fingerprints occur more than once, in flat memory.

    Each occurrence's 64-bit hash goes to a temporary SQLite table, which groups
    them on disk. A hash shared by chance only makes the second pass track an id
    it then drops; it never loses one."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = sqlite3.connect("")  # a temporary file
        self._db.execute("CREATE TABLE seen (hash INTEGER)")
        self._batch: list[tuple[int]] = []

    def add(self, identifiers: Iterable[Identifier]) -> None:
        batch = self._batch
        batch.extend((hash(c.fingerprint),) for c in identifiers if c.fingerprint)
        if len(batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch and self._db is not None:
            self._db.executemany("INSERT INTO seen VALUES (?)", self._batch)
        self._batch = []

    def recurring(self) -> frozenset[int]:
        """The hashes seen twice or more; the table is gone after this."""
        self._flush()
        if self._db is None:
            raise RuntimeError("RecurringIds.recurring() was already called")
        try:
            rows = self._db.execute("SELECT hash FROM seen GROUP BY hash HAVING count(*) > 1")
            return frozenset(h for (h,) in rows)
        finally:
            self._db.close()
            self._db = None


class _Seen:
    __slots__ = ("key", "keys", "flows", "captures", "locations", "evidence")

    def __init__(self, key: str, evidence: str) -> None:
        self.key = key
        self.keys: dict[str, None] = {}
        self.flows = array("I")
        """Positions of the flows it was seen in, in session order (4 bytes each)."""
        self.captures: dict[str, None] = {}
        self.locations: dict[str, None] = {}
        self.evidence = evidence


def only_recurring(identifiers: Iterable[Identifier], recurring: Container[int],
                   ) -> list[Identifier]:
    """Those of `identifiers` whose fingerprint's hash is in `recurring`
    (`RecurringIds.recurring()`): an id seen once links nothing."""
    return [c for c in identifiers if c.fingerprint and hash(c.fingerprint) in recurring]


class PersistentIds:
    """Fed one flow at a time (its position in the session, capture and identifiers)."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def add(self, position: int, capture: str, identifiers: Iterable[Identifier]) -> None:
        for candidate in identifiers:
            fingerprint = candidate.fingerprint
            if not fingerprint:
                continue
            entry = self._seen.get(fingerprint)
            if entry is None:
                entry = self._seen[fingerprint] = _Seen(
                    candidate.key, candidate.evidence or fingerprint)
            entry.keys[candidate.key] = None
            if not entry.flows or entry.flows[-1] != position:
                entry.flows.append(position)
            entry.captures[capture] = None
            if len(entry.locations) < 8:
                entry.locations[candidate.location] = None

    def linked(self) -> list[tuple[str, _Seen]]:
        """(fingerprint, what links it) for each id seen in two or more flows, widest first."""
        found = [(fp, entry) for fp, entry in self._seen.items() if len(entry.flows) >= 2]
        found.sort(key=lambda item: (-len(item[1].captures), -len(item[1].flows), item[1].key,
                                     item[0]))
        return found

    def entries(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The report's `persistent_ids`; `ids[position]` names each linked flow (listed
        only when the report is written)."""
        out = []
        for fp, entry in self.linked():
            captures = list(entry.captures)
            out.append({
                "type": "persistent_id",
                "category": "identifiers",
                "severity": "high" if len(captures) >= 2 else "medium",
                "key": entry.key,
                "keys": list(entry.keys),
                "fingerprint": fp,
                "flows": IdList(entry.flows, ids),
                "flow_count": len(entry.flows),
                "captures": captures,
                "capture_count": len(captures),
                "locations": list(entry.locations),
                "evidence": entry.evidence,
            })
        return out


def persistent_ids(flows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Identifiers seen unchanged in two or more of these flow dicts ("id", "source",
    "identifiers"), most widely linked first."""
    linker = PersistentIds()
    ids: list[str] = []
    for position, flow in enumerate(flows):
        ids.append(str(flow.get("id", "")))
        linker.add(position, str(flow.get("source") or "live"),
                   msgspec.convert(list(flow.get("identifiers") or ()),
                                   tuple[Identifier, ...]))
    return [{**entry, "flows": list(entry["flows"])} for entry in linker.entries(ids)]
