"""The per-flow pipeline: capture → decode → classify → detect → record. The
whole-session stages (timeline, persistent ids, claims) run at report time, in
`phonehome.analysis`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from ..decode import DecodeLimits, decode
from ..detect import (
    DetectionEngine,
    Identity,
    flagged_values,
    load_identity,
    redact_text,
    redact_tree,
    redact_url,
)
from ..model import Classification, EventHit, Finding, Observation, Payload
from ..rules import RuleSet, load_rules
from ..terms import format_location
from .store import dumps_record, record_default

__all__ = ["AuditSettings", "Auditor", "AuditResult", "Audited", "EncodedRecord",
           "encode_record",
           "flow_record", "json_text"]

# The redacted decoded body is kept for the HTML per-flow detail, up to this size.
MAX_DECODED_IN_RECORD = 64 * 1024


@dataclass(frozen=True)
class AuditSettings:
    rule_paths: tuple[Path, ...] = ()
    include_builtin_rules: bool = True
    identity_path: Path | None = None
    reveal: bool = False
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    keep_decoded: bool = True
    app: str = "auto"
    """The audited app (a first-party pack id) or "auto": see analysis.app.AppVotes."""
    fingerprint_key: bytes | None = field(default=None, repr=False)
    """The per-install secret (store.fingerprint_key); None: one random key per process."""


@dataclass
class AuditResult:
    """A flow record plus the intermediate results enforce mode needs."""

    record: dict[str, Any]
    observation: Observation
    payload: Payload | None
    classification: Classification
    findings: list[Finding]


class Auditor:
    """Everything parsed and compiled once (configure time); `audit()` turns each
    `Observation` into a flow record, a JSON-safe dict shaped like the report's
    `flows[]` item. It never raises: a stage that fails leaves `audit_error` on the
    record and the later stages run on what is left."""

    def __init__(self, settings: AuditSettings, *, rules: RuleSet | None = None,
                 identity: Identity | None = None) -> None:
        """`rules` and `identity`, when given, are the ones `settings` names, loaded already."""
        self.settings = settings
        self.rules: RuleSet = rules if rules is not None else load_rules(
            settings.rule_paths, include_builtin=settings.include_builtin_rules,
            app=None if settings.app == "auto" else settings.app,
        )
        if identity is None and settings.identity_path:
            identity = load_identity(settings.identity_path)
        self.has_identity = identity is not None
        self.detection: DetectionEngine = DetectionEngine(identity, key=settings.fingerprint_key)

    def audit(self, observation: Observation) -> dict[str, Any]:
        """The flow record for one observation. Never raises."""
        return self.audit_result(observation).record

    def audit_encoded(self, observation: Observation) -> EncodedRecord:
        """The flow record as the store keeps it (JSON text), without building
        the JSON-safe copy first. Never raises."""
        return encode_record(self.audit_result(observation, text_safe=False).record)

    def audit_result(self, observation: Observation, *, text_safe: bool = True) -> AuditResult:
        """The flow record and the stages' results. Never raises. Without `text_safe`
        the record may hold text that is not UTF-8 (see `json_text`)."""
        errors: list[dict[str, str]] = []

        def stage(name: str, run: Any, fallback: Any) -> Any:
            try:
                return run()
            except Exception as e:  # noqa: BLE001 - one failed stage must not stop the audit
                errors.append({"stage": name, "reason": f"{type(e).__name__}: {e}"[:500]})
                return fallback

        payload: Payload | None = stage(
            "decode", lambda: decode(observation, self.settings.limits), None
        )
        classification: Classification = stage(
            "classify",
            lambda: self.rules.classify(observation, payload or _empty_payload()),
            Classification(),
        )
        findings: list[Finding] = []
        identifiers: list[dict[str, str]] = []
        if payload is not None:
            findings = stage("detect", lambda: self.detection.detect(payload), [])
            identifiers = stage("detect", lambda: self.detection.identifiers(payload), [])
        error = errors[0] if errors else None

        record = flow_record(
            observation,
            payload,
            classification,
            findings,
            identifiers,
            reveal=self.settings.reveal,
            keep_decoded=self.settings.keep_decoded,
            audit_error=error,
            text_safe=text_safe,
        )
        return AuditResult(record, observation, payload, classification, findings)


def _empty_payload() -> Payload:
    return Payload(kind="empty", tree=None, leaves=[], size=0, decoded_size=0, sha256="")


def _finding_dict(finding: Finding, reveal: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": finding.type,
        "category": finding.category,
        "severity": finding.severity,
        "location": finding.location,
        "encoding": finding.encoding,
        "detector": finding.detector,
        "evidence": finding.evidence,
        "confidence": round(finding.confidence, 3),
        "reason": finding.reason,
        "fingerprint": finding.fingerprint,
    }
    if finding.identity is not None:
        data["identity"] = finding.identity
    if reveal:
        data["value"] = finding.value
    return data


def _decoded_for_record(payload: Payload, findings: list[Finding], reveal: bool) -> Any:
    if payload.tree is None or payload.decoded_size > MAX_DECODED_IN_RECORD:
        return None
    return payload.tree if reveal else redact_tree(payload.tree, findings)


def _event_dict(hit: EventHit) -> dict[str, Any]:
    data: dict[str, Any] = {"name": hit.name, "rule_id": hit.rule_id, "trigger": hit.trigger,
                            "categories": list(hit.categories)}
    if hit.prefix:  # where in a batch: reports label the payload's item with its event
        data["location"] = format_location("body", hit.prefix)
    if hit.name_trigger is not None or hit.name_candidates:
        # what the name says; the timeline weighs it against the timing
        data["name_trigger"] = {"trigger": hit.name_trigger, "confidence": hit.name_confidence,
                                "candidates": list(hit.name_candidates),
                                "reason": hit.name_reason}
        if hit.name_marks:
            data["name_trigger"]["marks"] = list(hit.name_marks)
    return data


def json_text(value: Any) -> Any:
    """`value` with every string made encodable as UTF-8: a byte the app sent that
    is not UTF-8 (mitmproxy keeps it as a lone surrogate) becomes the text `\\x80`,
    so the record can be stored and written in every format."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "".join(_visible_surrogate(ch) for ch in value)
        return value
    if isinstance(value, dict):
        return {json_text(k): json_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_text(v) for v in value]
    return value


def _visible_surrogate(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the raw byte
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch


def flow_record(
    observation: Observation,
    payload: Payload | None,
    classification: Classification,
    findings: list[Finding],
    identifiers: list[dict[str, str]],
    *,
    reveal: bool = False,
    keep_decoded: bool = True,
    audit_error: dict[str, str] | None = None,
    text_safe: bool = True,
) -> dict[str, Any]:
    """The report's `flows[]` item for one observation (JSON-safe). Unless `reveal`,
    flagged values are replaced by their evidence in the URL, host and content type
    as in the decoded body, so neither the store nor any report holds them."""
    flagged = [] if reveal or not findings else flagged_values(findings)
    shown = (lambda text: text) if not flagged else (
        lambda text: redact_text(text, findings, flagged) if text else text)
    record: dict[str, Any] = {
        "id": observation.id,
        "timestamp": observation.timestamp,
        "method": observation.method,
        "url": observation.url if reveal else redact_url(observation.url, findings, flagged),
        "host": shown(observation.host),
        "purpose": classification.purpose,
        "party": classification.party,
        "organization": classification.organization,
        "vendor_pack": classification.vendor_pack,
        "bytes_out": len(observation.body),
        "rule_ids": list(classification.rule_ids),
        "events": [_event_dict(hit) for hit in classification.events],
        "trigger": classification.trigger,
        "trigger_source": classification.trigger_source,
        "categories": list(classification.categories),
        "findings": [_finding_dict(f, reveal) for f in findings],
        "audit_error": audit_error,
        "enforcement": None,
        "source": observation.source,
        "kind": observation.kind,
        "http_version": observation.http_version,
        "status": observation.status,
        "response_size": observation.response_size,
        "content_type": shown(observation.content_type),
        "payload": None,
        "marks": list(classification.marks),
        "identifiers": identifiers,
        "phase": None,
        "decoded": None,
    }
    if payload is not None:
        record["payload"] = {
            "kind": payload.kind,
            "size": payload.size,
            "decoded_size": payload.decoded_size,
            "sha256": payload.sha256,
            "truncated": list(payload.truncated),
            "notes": list(payload.notes),
        }
        if keep_decoded:
            try:
                record["decoded"] = _decoded_for_record(payload, findings, reveal)
            except Exception:  # noqa: BLE001 - detail view only; never lose the record
                record["decoded"] = None
    return json_text(record) if text_safe else record


class EncodedRecord(NamedTuple):
    """A flow record as the store keeps it: its id, its time and its JSON text."""

    id: str
    timestamp: float
    text: str


class Audited(NamedTuple):
    """A flow audited elsewhere (a worker process), ready to store: its record as JSON
    text, and the (label, timestamp) markers saved on the flow."""

    record: EncodedRecord
    markers: tuple[tuple[str, float], ...] = ()


def encode_record(record: dict[str, Any]) -> EncodedRecord:
    """`dumps_record(json_text(record))`, in one C call when the record's text is all
    UTF-8 (orjson refuses anything else, and json_text changes nothing then)."""
    try:
        text = orjson.dumps(record, default=record_default,
                            option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # a lone surrogate, or an integer wider than 64 bits
        text = dumps_record(json_text(record))
    return EncodedRecord(str(record["id"]), float(record["timestamp"]), text)
