"""Typed flow records, as the store holds them and audit.json shows them (field
order is the JSON order). A stored record is read straight into a frozen `FlowRecord`,
or a lighter `FlowView` that leaves the decoded body unread; a damaged one is repaired
field by field and says so in `audit_error` (stage "store").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from ..model import PARTIES, PURPOSES, TRIGGER_SOURCES, TRIGGERS

__all__ = [
    "NameVerdict",
    "Event",
    "Finding",
    "Identifier",
    "AuditError",
    "PayloadInfo",
    "FlowRecord",
    "FlowView",
    "read_flow",
    "flow_from_mapping",
    "to_builtins",
]

T = TypeVar("T", bound=Struct)
NonNegative = Annotated[int, Meta(ge=0)]


class NameVerdict(Struct, frozen=True, kw_only=True):
    """What the vocabulary made of an event's name (events no rule gave a trigger)."""

    trigger: str | None = None
    confidence: str | None = None
    candidates: tuple[str, ...] = ()
    reason: str = ""
    marks: tuple[Any, ...] | UnsetType = UNSET


class Event(Struct, frozen=True, kw_only=True):
    name: str
    rule_id: str
    trigger: str | None = None
    categories: tuple[str, ...] = ()
    name_trigger: NameVerdict | UnsetType = UNSET
    trigger_source: str | UnsetType = UNSET
    location: str | UnsetType = UNSET
    """Where in the body the event's item sits (`$.metrics[3]`); unset for the whole body."""


class Finding(Struct, frozen=True, kw_only=True):
    type: str
    category: str
    severity: str
    location: str
    encoding: str | None = None
    detector: str
    evidence: str
    confidence: float | UnsetType = UNSET
    reason: str | None | UnsetType = UNSET
    fingerprint: str | None | UnsetType = UNSET
    identity: str | UnsetType = UNSET
    """The identity file's key an identity match is of ("email", "meeting_titles" …)."""
    value: Any | UnsetType = UNSET


class Identifier(Struct, frozen=True, kw_only=True):
    key: str = ""
    location: str = ""
    fingerprint: str | None = None
    evidence: str | UnsetType = UNSET


class AuditError(Struct, frozen=True, kw_only=True):
    stage: str
    reason: str


class PayloadInfo(Struct, frozen=True, kw_only=True):
    kind: str
    size: int
    decoded_size: int
    sha256: str
    truncated: tuple[str, ...] = ()
    notes: tuple[str, ...] | UnsetType = UNSET


class _FlowHead(Struct, frozen=True, kw_only=True):
    """The fields every shape of a flow starts with, in JSON order."""

    id: str
    timestamp: float
    method: str
    url: str
    host: str
    purpose: str
    party: str
    organization: str | None = None
    vendor_pack: str | None | UnsetType = UNSET
    bytes_out: NonNegative
    rule_ids: tuple[str, ...]
    events: tuple[Event, ...]
    trigger: str
    trigger_source: str
    categories: tuple[str, ...]
    findings: tuple[Finding, ...]
    audit_error: AuditError | None | UnsetType = UNSET
    enforcement: dict[str, Any] | None | UnsetType = UNSET
    source: str | None | UnsetType = UNSET


class FlowRecord(_FlowHead, frozen=True, kw_only=True):
    """The report's `flows[]` item (DESIGN.md's JSON contract), field for field."""

    kind: str | UnsetType = UNSET
    http_version: str | None | UnsetType = UNSET
    status: int | None | UnsetType = UNSET
    response_size: int | None | UnsetType = UNSET
    content_type: str | None | UnsetType = UNSET
    payload: PayloadInfo | None | UnsetType = UNSET
    marks: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    phase: str | None | UnsetType = UNSET
    decoded: Raw | UnsetType = UNSET
    sensor: str | UnsetType = UNSET
    trigger_confidence: str | None | UnsetType = UNSET
    trigger_reason: str | UnsetType = UNSET


class FlowView(_FlowHead, frozen=True, kw_only=True):
    """What the session's analysis reads of a flow: everything but the decoded body
    (the decoder skips it without building it) and the wire details."""

    status: int | None | UnsetType = UNSET
    content_type: str | None | UnsetType = UNSET
    payload: PayloadInfo | None | UnsetType = UNSET
    marks: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    phase: str | None | UnsetType = UNSET
    sensor: str | UnsetType = UNSET
    trigger_confidence: str | None | UnsetType = UNSET
    trigger_reason: str | UnsetType = UNSET


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decoder


def read_flow(text: str | bytes, kind: type[T], index: int = 0,
              stored_at: float | None = None) -> T:
    """One stored record as `kind`. A record the fast typed decoder refuses is
    repaired field by field (see `flow_from_mapping`; `stored_at` is the time the
    store filed it under); never raises."""
    try:
        return _decoder(kind).decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        data: Any = json.loads(text)  # not orjson: it reads wide integers as floats
    except ValueError:
        data = None
    return flow_from_mapping(data, kind, index, stored_at)


def to_builtins(value: Any) -> Any:
    """A typed value as plain JSON data (dicts, lists), unset fields left out."""
    return msgspec.json.decode(msgspec.json.encode(value, enc_hook=_listed))


def _listed(value: Any) -> Any:
    """A lazy sequence (the analysis's `IdList`) as the list it stands for."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    raise NotImplementedError(f"Encoding objects of type {type(value).__name__} is unsupported")


# --- the slow path: a record of the wrong shape -------------------------------------------

_TEXT_DEFAULTS = {"id": "", "method": "", "url": "", "host": "", "purpose": "unknown",
                  "party": "unknown", "trigger": "unknown", "trigger_source": "none"}
_VOCABULARY = {"purpose": PURPOSES, "party": PARTIES, "trigger": TRIGGERS,
               "trigger_source": TRIGGER_SOURCES}
"""Fields whose value is one word of DESIGN.md's vocabulary."""
_LIST_FIELDS = ("rule_ids", "events", "categories", "findings", "identifiers", "marks")
_REQUIRED_LISTS = ("rule_ids", "events", "categories", "findings")
_ITEM_KEYS = {"events": ("name", "rule_id"),
              "findings": ("type", "category", "severity", "location", "detector", "evidence")}
_FIELDS = {field.name: field for field in msgspec.structs.fields(FlowRecord)}


def flow_from_mapping(data: Any, kind: type[T], index: int = 0,
                      stored_at: float | None = None) -> T:
    """`data` (a stored record, or a flow of a saved report) as `kind`.

    A field of the wrong type is reset (a list keeps its usable items; an unusable
    time becomes `stored_at`, else 0) and the record gets an `audit_error` (stage
    "store") naming the fields, unless it has one.
    """
    if isinstance(data, Mapping) and kind is not FlowRecord:
        try:
            return msgspec.convert(data, kind)
        except msgspec.ValidationError:
            pass
    record = dict(data) if isinstance(data, Mapping) else {"id": f"store-{index}",
                                                             "audit_error": None}
    wrong = _repair_shape(record, stored_at)
    wrong.extend(name for name in _repair_types(record) if name not in wrong)
    if wrong and not record.get("audit_error"):
        record["audit_error"] = {"stage": "store",
                                 "reason": "unusable " + ", ".join(wrong) + " in the store"}
    return msgspec.convert(record, kind)


def _repair_shape(record: dict[str, Any], stored_at: float | None) -> list[str]:
    wrong = []
    timestamp = record.get("timestamp")
    if (isinstance(timestamp, bool) or not isinstance(timestamp, (int, float))
            or not math.isfinite(timestamp)):
        record["timestamp"] = stored_at if stored_at is not None else 0.0
        wrong.append("timestamp")
    for name, default in _TEXT_DEFAULTS.items():
        value = record.get(name)
        words = _VOCABULARY.get(name)
        if not isinstance(value, str) or (words is not None and value not in words):
            record[name] = default if value is None or words is not None else str(value)
            wrong.append(name)
    bytes_out = record.get("bytes_out")
    if isinstance(bytes_out, bool) or not isinstance(bytes_out, int) or bytes_out < 0:
        record["bytes_out"] = 0
        wrong.append("bytes_out")
    for name in _LIST_FIELDS:
        items = record.get(name)
        keys = _ITEM_KEYS.get(name)
        kept = [item for item in items if _item_ok(item, keys)] \
            if isinstance(items, list) else []
        if kept != items:
            record[name] = kept
            if items is not None or name in _REQUIRED_LISTS:
                wrong.append(name)
    record.setdefault("organization", None)
    error = record.get("audit_error")
    if error is not None and not _item_ok(error, ("stage", "reason")):
        record["audit_error"] = None
        wrong.append("audit_error")
    return wrong


def _item_ok(item: Any, keys: Sequence[str] | None) -> bool:
    if keys is None:
        return isinstance(item, (str, dict))
    return isinstance(item, dict) and all(isinstance(item.get(k), str) for k in keys)


def _repair_types(record: dict[str, Any]) -> list[str]:
    """Every field of the typed record, checked on its own: a list keeps the items
    that fit, anything else that does not fit is reset."""
    wrong = []
    for name, value in list(record.items()):
        field = _FIELDS.get(name)
        if field is None:
            continue
        if name == "decoded":
            record[name] = Raw(msgspec.json.encode(_encodable(value)))
            continue
        try:
            msgspec.convert(value, field.type)
            continue
        except msgspec.ValidationError:
            wrong.append(name)
        if isinstance(value, list):
            record[name] = [item for item in value if _fits(item, field.type)]
        elif field.default is not msgspec.NODEFAULT and field.default is not UNSET:
            record[name] = field.default
        else:
            del record[name]
    return wrong


def _fits(item: Any, kind: Any) -> bool:
    try:
        msgspec.convert([item], kind)
    except msgspec.ValidationError:
        return False
    return True


def _encodable(value: Any) -> Any:
    try:
        msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return value
