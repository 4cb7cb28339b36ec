"""Plain value types shared by every pipeline stage (capture → decode → classify →
detect → store → analysis → report).

Nothing here imports mitmproxy, so the live addon and the offline audit run the
very same code on the very same values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Union

__all__ = [
    "TRIGGERS",
    "CATEGORIES",
    "PURPOSES",
    "SEVERITIES",
    "PARTIES",
    "TRIGGER_SPECIFICITY",
    "TRIGGER_SOURCES",
    "TRIGGER_CONFIDENCES",
    "FINDING_TYPES",
    "PathPart",
    "Scalar",
    "Leaf",
    "Payload",
    "Observation",
    "EventHit",
    "Classification",
    "Finding",
    "Marker",
    "severity_rank",
    "most_severe",
]

# --- fixed vocabulary (DESIGN.md) -------------------------------------------

TRIGGERS = (
    "setup",
    "app_start",
    "sign_in",
    "meeting_create",
    "meeting_join",
    "in_meeting",
    "screen_share",
    "collaboration",
    "meeting_leave",
    "periodic",
    "error",
    "shutdown",
    "unknown",
)
CATEGORIES = (
    "usage_statistics",
    "performance_metrics",
    "error_logs",
    "device_info",
    "network_info",
    "meeting_metadata",
    "identifiers",
    "personal_data",
    "meeting_content",
)
PURPOSES = ("telemetry", "service", "auth", "update", "unknown")
SEVERITIES = ("info", "low", "medium", "high")
PARTIES = ("first", "third", "unknown")
TRIGGER_SPECIFICITY = (
    "error",
    "screen_share",
    "meeting_create",
    "meeting_join",
    "meeting_leave",
    "sign_in",
    "setup",
    "app_start",
    "shutdown",
    "collaboration",
    "in_meeting",
    "periodic",
    "unknown",
)
"""Most specific first: a flow's trigger is the first of these among its events."""

TRIGGER_SOURCES = ("rule", "name", "context", "marker", "cadence", "none")
TRIGGER_CONFIDENCES = ("high", "medium", "low")
FINDING_TYPES = (
    "email",
    "phone",
    "person_name",
    "ip_address",
    "mac_address",
    "geo_location",
    "hostname",
    "username",
    "device_serial",
    "wifi_network",
    "organization_name",
    "credit_card",
    "national_id",
    "auth_token",
    "meeting_title",
    "chat_message",
    "transcript",
    "file_name",
    "participant_list",
    "audio_level",
    "identity_match",
    "persistent_id",
)

_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """0 for info … 3 for high; unknown words rank lowest."""
    return _SEVERITY_RANK.get(severity, 0)


def most_severe(severities: Iterable[str]) -> str | None:
    """The highest of these severities (the first of equals), or None when there is none."""
    best: str | None = None
    for severity in severities:
        if best is None or severity_rank(severity) > severity_rank(best):
            best = severity
    return best


PathPart = Union[str, int]
Scalar = Union[str, int, float, bool, None]


# --- capture ----------------------------------------------------------------


@dataclass(slots=True)
class Observation:
    """One outbound request (or client-to-server WebSocket message), as captured.

    `body` is the raw request body as it went on the wire (still
    Content-Encoded). Header, cookie and query pairs keep their order and
    duplicates.
    """

    id: str
    timestamp: float
    method: str
    url: str
    scheme: str
    host: str
    port: int
    path: str
    """The request target as mitmproxy gives it: the path with its query string."""
    http_version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[tuple[str, str]] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_type: str = ""
    content_encoding: str = ""
    status: int | None = None
    response_size: int | None = None
    kind: Literal["http", "websocket"] = "http"
    source: str = "live"
    """Where it came from: "live" or the capture file's name."""
    markers: list[tuple[str, float]] = field(default_factory=list)
    """(label, timestamp) of auditor markers saved in the flow's metadata."""
    server_host: str = ""
    """The address the request went to, as mitmproxy has it (a raw IP in transparent
    mode); `host` is the name the app wrote. Rule filters (`~d`) read both."""
    authority: str = ""
    """The request's authority (HTTP/2 `:authority`, or the proxy request's host)."""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


# --- decode -----------------------------------------------------------------


class Leaf(NamedTuple):
    """One scalar value with the place it was found.

    `location` is what reports show: `$.metrics[0].eventPayload.event.name`,
    `query:uid`, `header:X-Device`, `cookie:sid` or `url`.
    `path` is the same place as a tuple, used for matching rule field paths:
    `("metrics", 0, "eventPayload", "event", "name")` for the body; for the
    other sources a one-element tuple with the name.
    `source` is one of "body", "query", "header", "cookie", "url".
    `via` names the decoding layers that led here, e.g. ("base64", "json")
    for a value inside base64-encoded JSON in a string field.

    A NamedTuple, not a dataclass: a flow has hundreds of leaves, and tuples
    are built at C speed.
    """

    location: str
    path: tuple[PathPart, ...]
    value: Scalar
    source: str = "body"
    via: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The nearest enclosing key name ("" when there is none)."""
        for part in reversed(self.path):
            if isinstance(part, str):
                return part
        return ""


@dataclass(slots=True)
class Payload:
    """A decoded request: the body tree plus every leaf from every source."""

    kind: str
    """json, ndjson, form, multipart, protobuf, text, binary or empty."""
    tree: Any
    """The decoded body as JSON-safe data (None for binary or empty)."""
    leaves: list[Leaf]
    size: int
    """Bytes on the wire."""
    decoded_size: int
    sha256: str
    truncated: list[str] = field(default_factory=list)
    """Limits hit while decoding, in words; empty when complete."""
    notes: list[str] = field(default_factory=list)
    """Recoverable decoding problems (bad gzip, invalid UTF-8, …)."""
    opaque: str | None = None
    """Why the body could not be read (corrupt Content-Encoding, undecodable charset,
    no text or structure found); None when it was. Rules still match an opaque body
    on method, host and path, and enforce mode fails closed on it."""


# --- classify ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventHit:
    """One event a rule recognised inside a payload."""

    name: str
    rule_id: str
    trigger: str | None
    categories: tuple[str, ...]
    prefix: tuple[PathPart, ...] = ()
    """Where the event sits in the body tree, e.g. ("metrics", 3)."""
    name_trigger: str | None = None
    """What the vocabulary makes of the name, for events no rule gave a trigger."""
    name_confidence: str | None = None
    name_candidates: tuple[str, ...] = ()
    """The triggers an ambiguous name points to."""
    name_reason: str = ""
    name_marks: tuple[str, ...] = ()
    """Markers the name proves (the vocabulary's `marks`: a mute, an unmute)."""


@dataclass(slots=True)
class Classification:
    purpose: str = "unknown"
    party: str = "unknown"
    organization: str | None = None
    vendor_pack: str | None = None
    """The app vendor's pack whose domains hold the host (the report's app picks first party)."""
    rule_ids: list[str] = field(default_factory=list)
    events: list[EventHit] = field(default_factory=list)
    trigger: str = "unknown"
    trigger_source: str = "none"
    categories: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    """Phases this flow proves have started or ended (rules' `marks`)."""
    action: str | None = None
    """A rule's enforcement action, if it names one."""


# --- detect -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that looks like personal data or meeting content.

    `value` is the raw matched text. It never reaches a report or the store
    unless reveal was asked for; reports carry `evidence`, a redacted preview.
    """

    type: str
    category: str
    severity: str
    location: str
    detector: str
    evidence: str
    encoding: str | None = None
    confidence: float = 1.0
    reason: str = ""
    fingerprint: str | None = None
    """A short stable digest of the value, to link findings across flows."""
    identity: str | None = None
    """The identity file's key an identity match is of ("email", "meeting_titles" …)."""
    value: str = field(default="", repr=False, compare=False)


# --- timeline ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Marker:
    """A labelled moment: set by the auditor or proven by a rule's `marks`."""

    timestamp: float
    label: str
    source: str = "auditor"
    """"auditor" (command or `phonehome mark`), "rule:<rule id>", or "name:<rule id>"
    (the event that rule named proves it by the words of its name)."""
    flow_id: str | None = None
