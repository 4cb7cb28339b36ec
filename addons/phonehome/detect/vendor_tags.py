"""Fields the app itself tagged as personal data or customer content (1DS PII tags).

How a Common Schema 4.0 record tags its fields is said at `tag_findings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from ..model import Finding, PathPart, Payload
from .redact import EPHEMERAL_KEY, fingerprint, redact

__all__ = ["DETECTOR", "TAG_KINDS", "TaggedField", "tagged_fields", "tag_findings",
           "merge_tag_findings"]

DETECTOR = "vendor_pii_tag"
CUSTOMER_CONTENT = 1 << 13
TAGGED = "the app itself tagged this field"
MAX_DEPTH = 8
"""How deep records and tag trees are looked for (a record sits at the root or in a list)."""


class Kind(NamedTuple):
    name: str
    """eValueKind's name, as the SDK spells it."""
    type: str
    category: str
    severity: str


TAG_KINDS: dict[int, Kind] = {
    1: Kind("Pii_DistinguishedName", "person_name", "personal_data", "medium"),
    2: Kind("Pii_GenericData", "username", "personal_data", "medium"),
    3: Kind("Pii_IPV4Address", "ip_address", "personal_data", "medium"),
    4: Kind("Pii_IPv6Address", "ip_address", "personal_data", "medium"),
    5: Kind("Pii_MailSubject", "meeting_title", "meeting_content", "high"),
    6: Kind("Pii_PhoneNumber", "phone", "personal_data", "medium"),
    7: Kind("Pii_QueryString", "hostname", "personal_data", "medium"),
    8: Kind("Pii_SipAddress", "email", "personal_data", "medium"),
    9: Kind("Pii_SmtpAddress", "email", "personal_data", "medium"),
    10: Kind("Pii_Identity", "username", "personal_data", "medium"),
    11: Kind("Pii_Uri", "hostname", "personal_data", "medium"),
    12: Kind("Pii_Fqdn", "hostname", "personal_data", "medium"),
    13: Kind("Pii_IPV4AddressLegacy", "ip_address", "personal_data", "medium"),
}
"""Value kind → the finding it makes. The vocabulary has no URL type: URIs and query
strings are reported as `hostname` (a locator), with the app's own kind in the reason."""
CONTENT = Kind("CustomerContent_GenericContent", "chat_message", "meeting_content", "high")


class TaggedField(NamedTuple):
    path: tuple[PathPart, ...]
    """Where the tagged value sits in the body tree (an array: the array)."""
    tag: str
    """The tag's own location, e.g. `ext.metadata.f.UserInfo_Email.t`."""
    code: int
    kind: Kind


def decode_tag(code: Any) -> Kind | None:
    """The kind a `t` value names; None for plain types (no kind) and non-integers."""
    if not isinstance(code, int) or isinstance(code, bool) or code < 0:
        return None
    if code & CUSTOMER_CONTENT:
        return CONTENT
    return TAG_KINDS.get((code >> 5) & 0xFF)


def _tags(node: Any, field: tuple[str, ...],
          depth: int) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """(field path under data, tag's path text, t) for every tag in an `f` mapping."""
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return
    for name, entry in node.items():
        if not isinstance(entry, dict):
            continue
        here = (*field, str(name))
        label = ".f.".join(here)
        if "t" in entry:
            yield here, f"ext.metadata.f.{label}.t", entry["t"]
        items = entry.get("a")
        if isinstance(items, dict) and "t" in items:
            yield here, f"ext.metadata.f.{label}.a.t", items["t"]
        yield from _tags(entry.get("f"), here, depth + 1)


def tagged_fields(tree: Any) -> list[TaggedField]:
    """Every field a Common Schema record in `tree` tagged with a personal or content kind."""
    found: list[TaggedField] = []

    def visit(node: Any, path: tuple[PathPart, ...], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(node, list):
            for i, item in enumerate(node):
                visit(item, (*path, i), depth + 1)
            return
        if not isinstance(node, dict):
            return
        ext, data = node.get("ext"), node.get("data")
        metadata = ext.get("metadata") if isinstance(ext, dict) else None
        if isinstance(metadata, dict) and isinstance(data, dict):
            for field, tag, code in _tags(metadata.get("f"), (), 0):
                kind = decode_tag(code)
                if kind is not None:
                    found.append(TaggedField((*path, "data", *field), tag, code, kind))

    visit(tree, (), 0)
    return found


def tag_findings(payload: Payload, key: bytes = EPHEMERAL_KEY) -> list[Finding]:
    """One finding per body value inside a tagged field, saying that the app tagged it.

    A Common Schema 4.0 record tags a property sent with a value kind in
    `ext.metadata.f.<field>.t = (kind << 5) | type`, customer content with bit 8192
    (getCommonSchemaMetaData, @microsoft/applicationinsights-core-js); `f.<a>.f.<b>`
    points at `data.a.b`, and `f.<a>.a.t` at every item of the array `data.a`.
    """
    if payload.tree is None or payload.kind not in ("json", "ndjson"):
        return []
    fields = tagged_fields(payload.tree)
    if not fields:
        return []
    findings: list[Finding] = []
    for leaf in payload.leaves:
        if leaf.source != "body" or leaf.value is None or isinstance(leaf.value, bool):
            continue
        for field in fields:
            if leaf.path[:len(field.path)] != field.path:
                continue
            value = str(leaf.value)
            kind = field.kind
            findings.append(Finding(
                type=kind.type, category=kind.category, severity=kind.severity,
                location=leaf.location, detector=DETECTOR,
                evidence=redact(kind.type, value), confidence=1.0,
                reason=f"{TAGGED} as {kind.name} ({field.tag} = "
                       f"{field.code})",
                fingerprint=fingerprint(value, key), value=value))
            break
    return findings


def merge_tag_findings(findings: Sequence[Finding], tagged: Sequence[Finding]) -> list[Finding]:
    """Add the app's own tags: a finding of the same type at the same place keeps its
    detector, and its reason says the app tagged it too; otherwise the tag's own finding."""
    out = list(findings)
    index: dict[tuple[str, str], int] = {}
    for i, finding in enumerate(out):
        index.setdefault((finding.location, finding.type), i)
    for tag in tagged:
        i = index.get((tag.location, tag.type))
        if i is None:
            index[(tag.location, tag.type)] = len(out)
            out.append(tag)
        elif TAGGED not in out[i].reason:
            found = out[i]
            reason = f"{found.reason}; {tag.reason}" if found.reason else tag.reason
            out[i] = dataclasses.replace(found, reason=reason)
    return out
