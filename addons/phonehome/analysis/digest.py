"""The digest: each personal item (a key of your identity file, else a detected value by
its keyed fingerprint), where it went, under which fields and encodings, with which
triggers, how often. Fed one flow at a time in the analysis's second pass; a detected
value that is one of your identity values (learned in the first pass) joins that item.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from ..model import severity_rank
from ..terms import IDENTITY_FIELDS
from .groups import Spread
from .records import Finding
from .tally import row_key

__all__ = ["DigestDestination", "DigestEntry", "Digest", "DigestKeys", "ItemKey",
           "PERSONAL_CATEGORIES", "MAX_ITEMS", "item_label", "digest_location", "digest_of_flows",
           "digest_matcher", "entry_ids", "entry_key"]

PERSONAL_CATEGORIES = frozenset({"personal_data", "meeting_content"})
"""Findings of these categories are personal items (never below medium)."""
MAX_ITEMS = 2_000
"""Distinct detected values kept; past this, a new one joins its type's "other values"
item, so a capture of ever-new values cannot grow the report."""
MAX_DESTINATIONS = 64
"""Hosts kept per item; past this, a new host joins "(other hosts)"."""
MAX_LOCATIONS = 64
"""Distinct field paths counted per destination (the first ones seen)."""
TOP_LOCATIONS = 8
MEASUREMENTS = frozenset({"audio_level"})
"""Types whose values are a series of readings, not a value of someone: one item each."""
OTHER_VALUES = "(other values)"
OTHER_HOSTS = "(other hosts)"
_BY_EVIDENCE = "evidence:"
"""A detected value without a fingerprint is told apart by its redacted evidence."""
_INDEX = re.compile(r"\[\d+\]")

_DETECTED_LABELS = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "person_name": "a person's name",
    "ip_address": "an IP address",
    "mac_address": "a MAC address",
    "geo_location": "a location",
    "hostname": "a host name",
    "username": "a user name",
    "device_serial": "a device serial number",
    "wifi_network": "a Wi-Fi network",
    "organization_name": "an organisation's name",
    "credit_card": "a card number",
    "national_id": "a national id",
    "auth_token": "an auth token",
    "meeting_title": "a meeting title",
    "chat_message": "a chat message",
    "transcript": "a transcript",
    "file_name": "a file name",
    "participant_list": "a participant list",
    "audio_level": "microphone levels",
    "identity_match": "one of your values",
    "persistent_id": "a persistent id",
}

ItemKey = tuple[str, str, str]
"""(kind, item, value): ("identity", key, "") or ("detected", type, fingerprint)."""


def item_label(kind: str, item: str) -> str:
    """The words a person reads for an item: "your e-mail", "an IP address" …"""
    if kind == "identity":
        field = IDENTITY_FIELDS.get(item)
        return field.label if field else item.replace("_", " ")
    return _DETECTED_LABELS.get(item) or item.replace("_", " ")


def digest_location(location: str) -> str:
    """A field path with its array indices folded: `$.metrics[3].x` → `$.metrics[].x`."""
    return _INDEX.sub("[]", location)


class DigestDestination(Struct, frozen=True, kw_only=True):
    """Where an item went: one destination host."""

    organization: str | None
    host: str
    party: str
    """first / third / unknown (model.PARTIES)."""
    locations: tuple[str, ...]
    """Field paths (array indices folded), most frequent first, at most 8."""
    encodings: tuple[str, ...]
    triggers: dict[str, int]
    """Flows per trigger, most first."""
    count: int
    """Findings (one per flow and field: a value two detectors saw there counts once)."""
    flow_count: int
    first_seen: float
    last_seen: float
    example_flow: str


class DigestEntry(Struct, frozen=True, kw_only=True):
    """The report's `digest[]` item: one personal item and everywhere it went."""

    id: str
    """"d1", "d2" … in report order."""
    kind: str
    """"identity" (a key of the identity file) or "detected"."""
    item: str
    """The identity key ("email", "meeting_titles" …) or the finding type."""
    label: str
    severity: str
    fingerprint: str | None
    """The keyed fingerprint of a detected value; None for an identity key."""
    evidence: str
    count: int
    flow_count: int
    first_seen: float
    last_seen: float
    organizations: tuple[str, ...]
    """Distinct, most findings first."""
    triggers: dict[str, int]
    destinations: tuple[DigestDestination, ...]
    """Most findings first."""
    example_flow: str


class DigestKeys:
    """Which digest item a finding belongs to. `learn` every flow's findings first: a
    detected value whose fingerprint one of your identity matches carries is that item."""

    def __init__(self, limit: int = 10_000) -> None:
        self._identity: dict[str, str] = {}
        self._limit = limit

    def learn(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            if (finding.type == "identity_match" and finding.identity
                    and finding.fingerprint and len(self._identity) < self._limit):
                self._identity.setdefault(finding.fingerprint, finding.identity)

    def key_of(self, finding: Finding) -> ItemKey | None:
        """The item `finding` belongs to; None when it is not a personal item."""
        if finding.category not in PERSONAL_CATEGORIES:
            return None
        if finding.type == "identity_match" and finding.identity:
            return ("identity", finding.identity, "")
        fingerprint = finding.fingerprint or None
        if fingerprint is not None and fingerprint in self._identity:
            return ("identity", self._identity[fingerprint], "")
        if finding.type in MEASUREMENTS:
            return ("detected", finding.type, "")
        return ("detected", finding.type, fingerprint or _BY_EVIDENCE + finding.evidence)


class _Destination(Spread):
    __slots__ = ("organization", "party", "locations")

    def __init__(self, severity: str, timestamp: float, flow_id: str,
                 organization: str | None, party: str) -> None:
        super().__init__(severity, timestamp, flow_id)
        self.organization = organization
        self.party = party
        self.locations: Counter[str] = Counter()


class _Item(Spread):
    __slots__ = ("key", "fingerprint", "evidence", "plain", "organizations", "destinations")

    def __init__(self, key: ItemKey, finding: Finding, timestamp: float, flow_id: str) -> None:
        super().__init__(finding.severity, timestamp, flow_id)
        self.key = key
        kind, _, value = key
        self.fingerprint = (value if kind == "detected" and value not in ("", OTHER_VALUES)
                            and not value.startswith(_BY_EVIDENCE) else None)
        self.evidence = OTHER_VALUES if value == OTHER_VALUES else ""
        self.plain = False
        self.organizations: Counter[str] = Counter()
        self.destinations: dict[str, _Destination] = {}

    def see(self, finding: Finding) -> None:
        """Keep the most readable evidence: a plain form's, else the declared value's mask."""
        if self.plain or self.evidence == OTHER_VALUES:
            return
        encoding = finding.encoding or "plain"
        if encoding in ("plain", "case-folded"):
            self.evidence, self.plain = finding.evidence, True
        elif not self.evidence:
            prefix = f"{encoding} of "
            text = finding.evidence
            self.evidence = text[len(prefix):] if text.startswith(prefix) else text


class Digest:
    """Fed one flow at a time (`add`); `entries()` at the end, in report order."""

    def __init__(self, keys: DigestKeys, max_items: int = MAX_ITEMS) -> None:
        self.keys = keys
        self.max_items = max_items
        self._items: dict[ItemKey, _Item] = {}
        self._detected = 0
        self._flows = 0

    def add(self, flow: Any) -> None:
        """One flow as the report shows it (id, timestamp, host, party, organization,
        trigger, findings)."""
        self._flows += 1
        number, timestamp, trigger = self._flows, float(flow.timestamp), str(flow.trigger)
        places: set[tuple[ItemKey, str]] = set()
        for finding in flow.findings:
            key = self.keys.key_of(finding)
            if key is None:
                continue
            item = self._items.get(key)
            if item is None:
                if key[0] == "detected" and self._detected >= self.max_items:
                    key = ("detected", key[1], OTHER_VALUES)
                    item = self._items.get(key)
                if item is None:
                    item = self._items[key] = _Item(key, finding, timestamp, flow.id)
                    self._detected += key[0] == "detected"
            new_place = (key, finding.location) not in places
            places.add((key, finding.location))
            item.see(finding)
            item.add(number, timestamp, trigger, finding, new_place)
            host = row_key(item.destinations, str(flow.host), MAX_DESTINATIONS, OTHER_HOSTS)
            destination = item.destinations.get(host)
            if destination is None:
                destination = item.destinations[host] = _Destination(
                    finding.severity, timestamp, flow.id,
                    flow.organization if host != OTHER_HOSTS else None,
                    str(flow.party) if host != OTHER_HOSTS else "unknown")
            destination.add(number, timestamp, trigger, finding, new_place)
            if new_place:
                location = digest_location(finding.location)
                if location in destination.locations or len(destination.locations) < MAX_LOCATIONS:
                    destination.locations[location] += 1
                if destination.organization:
                    item.organizations[destination.organization] += 1

    def __len__(self) -> int:
        return len(self._items)

    def entries(self) -> tuple[list[DigestEntry], dict[ItemKey, str]]:
        """The entries, most severe and most widespread first, and each item's id."""
        built = [(key, _entry(item)) for key, item in self._items.items()]
        built.sort(key=lambda pair: _order(pair[1]))
        ids: dict[ItemKey, str] = {}
        out = []
        for n, (key, entry) in enumerate(built, 1):
            ids[key] = f"d{n}"
            out.append(_with_id(entry, f"d{n}"))
        return out, ids


def _destination(host: str, d: _Destination) -> DigestDestination:
    return DigestDestination(
        organization=d.organization, host=host, party=d.party,
        locations=tuple(name for name, _ in d.locations.most_common(TOP_LOCATIONS)),
        encodings=tuple(d.encodings), triggers=dict(d.triggers.most_common()),
        count=d.count, flow_count=d.flow_count, first_seen=d.first, last_seen=d.last,
        example_flow=d.example)


def _entry(item: _Item) -> DigestEntry:
    kind, name, _ = item.key
    destinations = sorted((_destination(host, d) for host, d in item.destinations.items()),
                          key=lambda d: (-d.count, -d.flow_count, d.host))
    return DigestEntry(
        id="", kind=kind, item=name, label=item_label(kind, name), severity=item.severity,
        fingerprint=item.fingerprint, evidence=item.evidence, count=item.count,
        flow_count=item.flow_count, first_seen=item.first, last_seen=item.last,
        organizations=tuple(org for org, _ in item.organizations.most_common()),
        triggers=dict(item.triggers.most_common()), destinations=tuple(destinations),
        example_flow=item.example)


def _with_id(entry: DigestEntry, entry_id: str) -> DigestEntry:
    return replace(entry, id=entry_id)


def _order(entry: DigestEntry) -> tuple[Any, ...]:
    return (-severity_rank(entry.severity), -len(entry.organizations), -len(entry.triggers),
            -entry.count, entry.kind != "identity", entry.item, entry.evidence,
            entry.fingerprint or "")


def digest_of_flows(flows: Iterable[Any]) -> tuple[list[DigestEntry], DigestKeys,
                                                   dict[ItemKey, str]]:
    """The digest of flows held in memory (a saved report's), both passes at once."""
    flows = list(flows)
    keys = DigestKeys()
    for flow in flows:
        keys.learn(flow.findings)
    digest = Digest(keys)
    for flow in flows:
        digest.add(flow)
    entries, ids = digest.entries()
    return entries, keys, ids


def entry_key(entry: Mapping[str, Any]) -> ItemKey:
    """The item a report's `digest[]` entry stands for (`DigestKeys.key_of`'s key)."""
    kind, item = str(entry.get("kind")), str(entry.get("item"))
    if kind == "identity" or item in MEASUREMENTS:
        return (kind, item, "")
    if entry.get("fingerprint"):
        return (kind, item, str(entry["fingerprint"]))
    evidence = str(entry.get("evidence") or "")
    return (kind, item, evidence if evidence == OTHER_VALUES else _BY_EVIDENCE + evidence)


def digest_matcher(entries: Iterable[Mapping[str, Any]],
                   flows: Iterable[Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a report finding belongs to one of these digest entries, by the digest's
    own rule: `flows` (a report's) teach which values are your identity values."""
    keys = DigestKeys()
    for flow in flows:
        keys.learn(_findings(flow.get("findings") or ()))
    wanted = {entry_key(entry) for entry in entries}

    def match(finding: Mapping[str, Any]) -> bool:
        typed = _findings((finding,))
        key = keys.key_of(typed[0]) if typed else None
        return key is not None and (key in wanted or (key[0], key[1], OTHER_VALUES) in wanted)
    return match


def _findings(findings: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """A report's findings as typed values (one that is not a finding is left out)."""
    typed = []
    for finding in findings:
        try:
            typed.append(msgspec.convert(finding, Finding))
        except msgspec.ValidationError:
            continue
    return typed


def entry_ids(keys: Iterable[ItemKey], ids: Mapping[ItemKey, str]) -> list[str]:
    """The ids of `keys`' entries (a value past MAX_ITEMS: its type's other values), in
    digest order."""
    found = set()
    for key in keys:
        entry = ids.get(key) or ids.get((key[0], key[1], OTHER_VALUES))
        if entry is not None:
            found.add(entry)
    return sorted(found, key=lambda i: int(i[1:]))
