"""Finding groups: one finding repeated across flows, counted once.

The same finding type at the same destination host, field location and value
(by fingerprint; by its redacted evidence when it has none) is one group, with
its count, first and last time seen, triggers, and a sample of the flows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from msgspec import Struct

from ..model import severity_rank
from .records import Finding

__all__ = ["FindingGroup", "FindingGroups", "MAX_GROUPS", "SAMPLE_FLOWS", "Spread", "group_key"]

SAMPLE_FLOWS = 5
"""Flow ids kept per group (the first ones seen)."""
MAX_GROUPS = 20_000
"""Distinct groups kept; past this, a new value joins its (type, host, location)'s
"other values" group, so a capture of ever-new values cannot grow the report."""
OTHER_VALUES = "(other values)"


class FindingGroup(Struct, frozen=True, kw_only=True):
    """The report's `finding_groups[]` item."""

    type: str
    category: str
    severity: str
    """The highest severity among its findings."""
    host: str
    location: str
    fingerprint: str | None
    evidence: str
    encodings: tuple[str, ...]
    count: int
    """Findings in the group."""
    flow_count: int
    first_seen: float
    last_seen: float
    triggers: dict[str, int]
    """Flows per trigger, most first."""
    flows: tuple[str, ...]
    """A sample: the ids of the first SAMPLE_FLOWS flows."""


def group_key(finding: Finding, host: str) -> tuple[str, str, str, str]:
    value = finding.fingerprint or finding.evidence
    return finding.type, host, finding.location, str(value)


class Spread:
    """How often a finding was seen, when, how severe, in which encodings, under which
    triggers: what a finding group and a digest item (and its destinations) keep."""

    __slots__ = ("severity", "encodings", "triggers", "count", "flow_count", "first", "last",
                 "example", "last_flow")

    def __init__(self, severity: str, timestamp: float, flow_id: str) -> None:
        self.severity = severity
        self.encodings: dict[str, None] = {}
        self.triggers: Counter[str] = Counter()
        self.count = 0
        self.flow_count = 0
        self.first = self.last = timestamp
        self.example = flow_id
        self.last_flow = -1

    def add(self, flow_number: int, timestamp: float, trigger: str, finding: Finding,
            new_place: bool = True) -> None:
        """`new_place` False: a finding at a place already counted (its severity and
        encoding still count)."""
        if severity_rank(finding.severity) > severity_rank(self.severity):
            self.severity = finding.severity
        self.encodings[finding.encoding or "plain"] = None
        if not new_place:
            return
        self.count += 1
        self.first = min(self.first, timestamp)
        self.last = max(self.last, timestamp)
        if self.last_flow != flow_number:
            self.last_flow = flow_number
            self.flow_count += 1
            self.triggers[trigger] += 1


class _Group(Spread):
    __slots__ = ("finding", "host", "fingerprint", "evidence", "flows")

    def __init__(self, finding: Finding, host: str, fingerprint: str | None, evidence: str,
                 timestamp: float, flow_id: str) -> None:
        super().__init__(finding.severity, timestamp, flow_id)
        self.finding = finding
        self.host = host
        self.fingerprint = fingerprint
        self.evidence = evidence
        self.flows: list[str] = []


class FindingGroups:
    """Fed one flow at a time; `groups()` at the end, most severe and most common first."""

    def __init__(self, max_groups: int = MAX_GROUPS) -> None:
        self._groups: dict[tuple[str, str, str, str], _Group] = {}
        self.max_groups = max_groups

    def add(self, position: int, flow_id: str, timestamp: float, host: str, trigger: str,
            findings: Iterable[Finding]) -> None:
        for finding in findings:
            key = group_key(finding, host)
            group = self._groups.get(key)
            if group is None:
                fingerprint = finding.fingerprint or None
                evidence = finding.evidence
                if len(self._groups) >= self.max_groups:
                    key = (finding.type, host, finding.location, OTHER_VALUES)
                    group = self._groups.get(key)
                    fingerprint, evidence = None, OTHER_VALUES
                if group is None:
                    group = self._groups[key] = _Group(finding, host, fingerprint, evidence,
                                                       timestamp, flow_id)
            if group.last_flow != position and len(group.flows) < SAMPLE_FLOWS:
                group.flows.append(flow_id)
            group.add(position, timestamp, trigger, finding)

    def __len__(self) -> int:
        return len(self._groups)

    def groups(self) -> list[FindingGroup]:
        out = [
            FindingGroup(
                type=g.finding.type, category=g.finding.category, severity=g.severity,
                host=g.host, location=g.finding.location, fingerprint=g.fingerprint,
                evidence=g.evidence, encodings=tuple(g.encodings)[:8], count=g.count,
                flow_count=g.flow_count, first_seen=g.first, last_seen=g.last,
                triggers=dict(g.triggers.most_common()), flows=tuple(g.flows))
            for g in self._groups.values()
        ]
        out.sort(key=_order)
        return out


def _order(group: FindingGroup) -> tuple[Any, ...]:
    return (-severity_rank(group.severity), -group.count, group.type, group.host,
            group.location, group.fingerprint or "", group.evidence)
