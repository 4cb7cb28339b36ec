"""Session counts, fed one flow at a time: the report's `summary`, and the per-endpoint,
per-host and per-party tallies the human-readable formats show.

Every table here has a bounded number of rows: a capture with ever-new hosts or
paths folds the rest into one "(other …)" row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import severity_rank
from .timeline.cadence import endpoint_template

__all__ = ["Summary", "SessionTally", "Tally", "EndpointRow", "endpoint_key", "path_template",
           "split_endpoint", "row_key", "MAX_ROWS"]

MAX_ROWS = 2000
"""Distinct endpoints, hosts, content types … kept per table."""
OTHER = "(other)"

_SUMMARY_COUNTERS = ("by_trigger", "by_category", "by_host", "by_party", "by_purpose",
                     "by_finding_type", "by_severity", "by_content_type", "by_method",
                     "by_enforcement")


def row_key(table: Mapping[Any, Any], key: Any, max_rows: int, other: Any = OTHER) -> Any:
    """`key`, or `other` once `table` has `max_rows` keys and `key` is not one of them:
    hosts, paths and content types are the traffic's own words."""
    return key if key in table or len(table) < max_rows else other


def content_type_of(value: Any) -> str:
    return (value or "").split(";")[0].strip() or "(none)"


class Summary:
    """The report's `summary`: counts by trigger, category, host, party, purpose,
    finding type, severity, content type, method and enforcement. Host, content type
    and method are the traffic's own words: past `max_rows` of each, the rest count
    as "(other)"."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self.counters: dict[str, Counter[str]] = {name: Counter() for name in _SUMMARY_COUNTERS}
        self.flows = 0
        self.bytes_out = 0
        self.audit_errors = 0
        self.truncated = 0

    def add(self, flow: Any) -> None:
        counters = self.counters
        counters["by_trigger"][flow.trigger] += 1
        counters["by_category"].update(flow.categories)
        self._count(counters["by_host"], flow.host)
        counters["by_party"][flow.party] += 1
        counters["by_purpose"][flow.purpose] += 1
        self._count(counters["by_content_type"], content_type_of(flow.content_type or None))
        self._count(counters["by_method"], flow.method)
        for finding in flow.findings:
            counters["by_finding_type"][finding.type] += 1
            counters["by_severity"][finding.severity] += 1
        if flow.enforcement:
            counters["by_enforcement"][flow.enforcement.get("action", "unknown")] += 1
        self.flows += 1
        self.bytes_out += flow.bytes_out
        self.audit_errors += bool(flow.audit_error)
        self.truncated += bool(flow.payload and flow.payload.truncated)

    def _count(self, counter: Counter[str], key: str) -> None:
        counter[row_key(counter, key, self.max_rows)] += 1

    def section(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"flows": self.flows, "bytes_out": self.bytes_out,
                                   "audit_errors": self.audit_errors,
                                   "truncated": self.truncated}
        for name, counter in self.counters.items():
            summary[name] = dict(counter.most_common())
        return summary


def endpoint_key(method: str, url: str, host: str) -> str:
    """`METHOD host/path-template`, the unit endpoints are grouped and diffed by."""
    try:
        return endpoint_template(method or "?", url, host)
    except ValueError:  # an unparsable URL still gets a row of its own
        return f"{(method or '?').upper()} {host}/"


@dataclass
class EndpointRow:
    endpoint: str
    flows: int = 0
    bytes_out: int = 0
    purposes: Counter[str] = field(default_factory=Counter)
    parties: Counter[str] = field(default_factory=Counter)
    organizations: Counter[str] = field(default_factory=Counter)
    triggers: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    findings: int = 0
    max_severity: str | None = None
    first: float = 0.0
    last: float = 0.0


@dataclass
class _Party:
    hosts: dict[str, None] = field(default_factory=dict)
    flows: int = 0
    bytes: int = 0
    telemetry: int = 0


@dataclass(frozen=True)
class Tally:
    """What the tables of the terminal, Markdown and HTML formats count."""

    endpoints: list[dict[str, Any]]
    endpoint_count: int
    by_host: dict[str, tuple[int, int]]
    by_content_type: dict[str, tuple[int, int]]
    by_method: dict[str, tuple[int, int]]
    trigger_categories: dict[str, dict[str, int]]
    categories: list[str]
    parties: list[dict[str, Any]]
    seen_triggers: frozenset[str]
    seen_categories: frozenset[str]
    seen_parties: frozenset[str]
    errors: list[dict[str, Any]]
    error_count: int


class SessionTally:
    """Fed one (final) flow at a time; `tally(cadence)` at the end."""

    def __init__(self, max_rows: int = MAX_ROWS, max_errors: int = 50) -> None:
        self.max_rows = max_rows
        self.max_errors = max_errors
        self.endpoints: dict[str, EndpointRow] = {}
        self.volume: dict[str, dict[str, list[int]]] = {
            "host": {}, "content_type": {}, "method": {}}
        self.trigger_categories: dict[str, Counter[str]] = {}
        self.categories: Counter[str] = Counter()
        self.parties: dict[tuple[str, str], _Party] = {}
        self.seen_triggers: set[str] = set()
        self.seen_parties: set[str] = set()
        self.errors: list[dict[str, Any]] = []
        self.error_count = 0

    def _slot(self, table: dict[str, Any], key: str, make: Any) -> Any:
        key = row_key(table, key, self.max_rows)
        entry = table.get(key)
        if entry is None:
            entry = table[key] = make(key)
        return entry

    def add(self, flow: Any) -> None:
        key = endpoint_key(flow.method, flow.url, flow.host)
        row: EndpointRow = self._slot(self.endpoints, key, EndpointRow)
        if not row.flows:
            row.first = row.last = flow.timestamp
        row.flows += 1
        row.bytes_out += flow.bytes_out
        row.purposes[flow.purpose] += 1
        row.parties[flow.party] += 1
        if flow.organization:
            row.organizations[str(flow.organization)] += 1
        row.triggers[flow.trigger] += 1
        row.events.update(event.name for event in flow.events)
        row.categories.update(flow.categories)
        row.findings += len(flow.findings)
        for finding in flow.findings:
            if row.max_severity is None or (
                    severity_rank(finding.severity) > severity_rank(row.max_severity)):
                row.max_severity = finding.severity
        row.first = min(row.first, flow.timestamp)
        row.last = max(row.last, flow.timestamp)

        for table, name in (("host", flow.host), ("method", flow.method),
                            ("content_type", content_type_of(flow.content_type or None))):
            counts = self._slot(self.volume[table], name, lambda _: [0, 0])
            counts[0] += 1
            counts[1] += flow.bytes_out
        cell = self._slot(self.trigger_categories, flow.trigger, lambda _: Counter())
        cell.update(flow.categories)
        self.categories.update(flow.categories)
        party = self._slot(self.parties, (flow.party, flow.organization or "?"),
                           lambda _: _Party())
        if len(party.hosts) < 50:
            party.hosts[flow.host] = None
        party.flows += 1
        party.bytes += flow.bytes_out
        party.telemetry += flow.purpose == "telemetry"
        self.seen_triggers.add(flow.trigger)
        self.seen_parties.add(flow.party)
        if flow.audit_error:
            self.error_count += 1
            if len(self.errors) < self.max_errors:
                self.errors.append({"id": flow.id, "url": flow.url,
                                    "stage": flow.audit_error.stage,
                                    "reason": flow.audit_error.reason})

    def tally(self, cadence: Iterable[Mapping[str, Any]] = ()) -> Tally:
        by_endpoint: dict[str, list[Mapping[str, Any]]] = {}
        for entry in cadence:
            by_endpoint.setdefault(_normal_endpoint(str(entry.get("endpoint", ""))),
                                   []).append(entry)
        rows = []
        for row in self.endpoints.values():
            method, host, path = split_endpoint(row.endpoint)
            rows.append({
                "endpoint": row.endpoint, "method": method, "host": host, "path": path,
                "flows": row.flows, "bytes_out": row.bytes_out,
                "purposes": _ranked(row.purposes), "parties": _ranked(row.parties),
                "organizations": _ranked(row.organizations), "triggers": _ranked(row.triggers),
                "events": _ranked(row.events), "categories": _ranked(row.categories),
                "findings": row.findings, "max_severity": row.max_severity,
                "first": row.first, "last": row.last,
                "cadence": by_endpoint.get(_normal_endpoint(row.endpoint), []),
            })
        rows.sort(key=lambda r: (-r["flows"], r["endpoint"]))

        def volume(table: str) -> dict[str, tuple[int, int]]:
            counts = self.volume[table]
            ranked = sorted(counts.items(), key=lambda kv: -kv[1][0])
            return {name: (flows, size) for name, (flows, size) in ranked}

        parties = [{"party": party, "organization": org, "hosts": sorted(p.hosts),
                    "flows": p.flows, "bytes": p.bytes, "telemetry": p.telemetry}
                   for (party, org), p in sorted(self.parties.items())]
        return Tally(
            endpoints=rows, endpoint_count=len(rows),
            by_host=volume("host"), by_content_type=volume("content_type"),
            by_method=volume("method"),
            trigger_categories={t: dict(c) for t, c in self.trigger_categories.items()},
            categories=[c for c, _ in self.categories.most_common()],
            parties=parties, seen_triggers=frozenset(self.seen_triggers),
            seen_categories=frozenset(self.categories), seen_parties=frozenset(self.seen_parties),
            errors=self.errors, error_count=self.error_count,
        )


def split_endpoint(key: str) -> tuple[str, str, str]:
    """`POST host/p` → ("POST", "host", "/p")."""
    method, _, rest = key.partition(" ")
    host, slash, path = rest.partition("/")
    return method, host, slash + path


def _normal_endpoint(text: str) -> str:
    """Loose form used to match `cadence[].endpoint` written by another stage."""
    text = re.sub(r"^[A-Z]+\s+", "", text.strip())
    text = re.sub(r"^[a-z]+://", "", text)
    host, slash, path = text.partition("/")
    return host.lower() + path_template(slash + path)


def path_template(path: str) -> str:
    """`/devices/7f3c…-…/x` → `/devices/{id}/x`; the query string is dropped."""
    path = path if path.startswith("/") else "/" + path
    return split_endpoint(endpoint_template("GET", "http://host.invalid" + path))[2] or "/"


def _ranked(counter: Counter[str]) -> list[str]:
    return [value for value, _ in counter.most_common()]
