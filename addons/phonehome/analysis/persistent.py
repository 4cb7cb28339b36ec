"""Persistent identifiers: the same id value (by keyed fingerprint) in several flows.

Detection lists each flow's candidates (detect/persistent.py); here they are
linked across the session in one streaming pass, memory linear in the number of
(fingerprint, flow) pairs.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .columns import IdList
from .records import Identifier

__all__ = ["PersistentIds", "persistent_ids"]


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
