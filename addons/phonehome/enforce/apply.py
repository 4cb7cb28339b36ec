"""Carrying out a plan on a request or a WebSocket message, and proving a redaction worked.

A redaction that cannot be verified blocks the flow (or drops the message) instead;
in dry-run the same work is done and reported, and nothing is changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from mitmproxy import http

from ..capture.observe import observe_request
from ..decode import DecodeLimits, decode
from ..decode.body import body_charset
from ..model import Finding, Observation, Payload
from .plan import EnforcementPlan
from .redactor import MIN_NEEDLE, Redactor, UnsafeRedaction, build_redactor
from .rewrite import body_text, decode_content, redact_body, redact_request

__all__ = [
    "apply_enforcement",
    "apply_message_enforcement",
    "redacted_request",
    "redacted_message",
    "block_flow",
    "Recheck",
    "BLOCK_HEADER",
]

Recheck = Callable[[Payload], Sequence[Finding]]
"""Runs the detectors over a decoded payload (DetectionEngine.detect)."""

BLOCK_HEADER = "x-phonehome-enforce"
"""Set on the local answer to a blocked request."""

_NO_BODY_STATUS = frozenset({204, 304})


def _record(action: str, plan: EnforcementPlan, changed: Sequence[str], reason: str,
            **extra: Any) -> dict[str, Any]:
    return {"action": action, "dry_run": plan.dry_run, "changed": list(changed),
            "reason": reason, **extra}


def block_flow(flow: http.HTTPFlow, status: int) -> None:
    """Answer locally; the request never reaches the server."""
    response = http.Response.make(status, b"", {BLOCK_HEADER: "blocked"})
    if status in _NO_BODY_STATUS or status < 200:
        response.headers.pop("content-length", None)
    flow.response = response


def _survivors(r: Redactor, request: http.Request, recheck_findings: Sequence[Finding],
               targets: set[str]) -> list[str]:
    """Places where a flagged value is still present after the rewrite."""
    left: list[str] = []
    for finding in recheck_findings:
        value = finding.value if isinstance(finding.value, str) else str(finding.value)
        if value and value in targets:
            left.append(finding.location)
    haystacks = [request.path.encode("utf-8", "surrogateescape")]
    haystacks += [value for _, value in request.headers.fields]
    try:
        body = decode_content(request.raw_content or b"",
                              request.headers.get("content-encoding", ""))
        charset = body_charset(body, request.headers.get("content-type", ""))
        if charset.codec != "utf-8":  # needles are searched for as UTF-8
            body = body_text(body, charset).encode("utf-8", "surrogateescape")
        haystacks.append(body)
    except UnsafeRedaction:
        left.append("body")
    for value in r.needles:
        if len(value) < MIN_NEEDLE:
            continue
        raw = value.encode("utf-8", "surrogateescape")
        if any(raw in hay for hay in haystacks):
            locations = r.needles[value].locations
            left.append(locations[0] if locations else "request")
    return list(dict.fromkeys(left))


def _complete(payload: Payload | None, subject: str, part: str) -> Payload:
    """The payload, when it was decoded whole; raises UnsafeRedaction otherwise."""
    if payload is None:
        raise UnsafeRedaction(f"the {subject} could not be decoded")
    if payload.truncated:
        raise UnsafeRedaction(f"{part} only partly decoded ({payload.truncated[0]})")
    return payload


def _verified(left: list[str]) -> None:
    if left:
        left = list(dict.fromkeys(left))
        raise UnsafeRedaction(f"flagged value still present at {', '.join(left[:5])}")


def redacted_request(flow: http.HTTPFlow, plan: EnforcementPlan, payload: Payload | None,
                     findings: Sequence[Finding], *, recheck: Recheck | None = None,
                     limits: DecodeLimits | None = None) -> tuple[http.Request, list[str]]:
    """A redacted, verified copy of the flow's request and the locations changed.

    Raises UnsafeRedaction when the request cannot be redacted faithfully.

    A redaction is built on a copy of the request, then checked before the
    real request is touched: the copy is decoded again and the detectors run
    over it (`recheck`); if any flagged value is still there, in any place or
    encoding the detectors know, or a flagged value of three or more characters
    is still in the bytes, the flow is blocked instead ("blocked_unsafe_redaction").
    A client-to-server WebSocket message is handled the same way: dropped
    instead of blocked, or its content rewritten (only its own body counts: the
    handshake's URL and headers went out with the request). In dry-run mode the
    same work is done and reported, and nothing is changed.
    """
    limits = limits or DecodeLimits()
    payload = _complete(payload, "request", "payload")
    r = build_redactor(payload, [f for f in findings if plan.selects(f)],
                       nested=limits.max_nested)
    copy = flow.copy()
    redact_request(copy.request, payload.kind, r)
    # verify on what would be sent
    # values replaced in place (numbers, lists) may be detected again as placeholders
    targets = set(r.needles)
    again = _complete(decode(observe_request(copy), limits), "request", "redacted payload")
    rechecked = list(recheck(again)) if recheck is not None else []
    _verified(_survivors(r, copy.request, rechecked, targets))
    return copy.request, list(r.changed)


def _carry_out(plan: EnforcementPlan, flagged: Callable[[], bool], nothing: str,
               block: Callable[[], None], redact: Callable[[], tuple[Any, list[str]]],
               commit: Callable[[Any], None], blocked: str = "",
               **extra: Any) -> dict[str, Any]:
    """The one sequence of outcomes for a request and a message: pass, block (or drop),
    redact, or block because the redaction is unsafe; in dry-run, what would happen."""
    if plan.action == "pass":
        return _record("passed", plan, [], plan.reason)
    if plan.action == "block":
        if plan.dry_run:
            return _record("would_block", plan, plan.locations, plan.reason, **extra)
        block()
        return _record("blocked", plan, plan.locations, plan.reason + blocked, **extra)
    if plan.action != "redact":
        raise ValueError(f"unknown enforcement action {plan.action!r}")
    if not flagged():
        return _record("passed", plan, [], f"{plan.reason}; {nothing}")
    try:
        result, changed = redact()
    except UnsafeRedaction as e:
        reason = f"{plan.reason}; redaction unsafe: {e}"
        if plan.dry_run:
            return _record("would_block", plan, plan.locations, reason, **extra)
        block()
        return _record("blocked_unsafe_redaction", plan, plan.locations, reason + blocked,
                       **extra)
    if plan.dry_run:
        return _record("would_redact", plan, changed, plan.reason)
    commit(result)
    return _record("redacted", plan, changed, plan.reason)


def apply_enforcement(flow: http.HTTPFlow, plan: EnforcementPlan, payload: Payload | None,
                      findings: Sequence[Finding], *, recheck: Recheck | None = None,
                      limits: DecodeLimits | None = None) -> dict[str, Any]:
    """Carry out `plan` on `flow` (nothing changes in dry-run); the record's `enforcement`.

    Call it from the `request` hook, before the request is sent. `recheck`
    should be the detector (`DetectionEngine.detect`) so a redaction is
    verified in every encoding the detectors know; `limits` should be the
    decode limits the audit used.
    """
    return _carry_out(
        plan, lambda: any(plan.selects(f) for f in findings), "nothing flagged to redact",
        lambda: block_flow(flow, plan.status),
        lambda: redacted_request(flow, plan, payload, findings, recheck=recheck,
                                 limits=limits),
        lambda request: flow.request.set_state(request.get_state()),
        status=plan.status)


def _in_body(finding: Finding) -> bool:
    return finding.location.startswith("$")


def redacted_message(observation: Observation, plan: EnforcementPlan, payload: Payload | None,
                     findings: Sequence[Finding], *, recheck: Recheck | None = None,
                     limits: DecodeLimits | None = None) -> tuple[bytes, list[str]]:
    """A WebSocket message's redacted, verified content and the locations changed.

    Raises UnsafeRedaction when the message cannot be redacted faithfully.
    """
    limits = limits or DecodeLimits()
    payload = _complete(payload, "message", "message")
    r = build_redactor(payload, [f for f in findings if plan.selects(f) and _in_body(f)],
                       nested=limits.max_nested)
    content = redact_body(observation.body, payload.kind, r, observation.content_type)
    again = decode(dataclasses.replace(observation, body=content), limits)
    again = _complete(again, "message", "redacted message")
    targets = set(r.needles)
    left = [f.location for f in (recheck(again) if recheck is not None else ())
            if _in_body(f) and (f.value if isinstance(f.value, str) else str(f.value)) in targets]
    text = body_text(content, body_charset(content, observation.content_type))
    left += [r.needles[v].locations[0] if r.needles[v].locations else "message"
             for v in r.needles if len(v) >= MIN_NEEDLE and v in text]
    _verified(left)
    return content, list(r.changed)


def apply_message_enforcement(message: Any, observation: Observation, plan: EnforcementPlan,
                              payload: Payload | None, findings: Sequence[Finding], *,
                              recheck: Recheck | None = None,
                              limits: DecodeLimits | None = None) -> dict[str, Any]:
    """Carry out `plan` on one client-to-server WebSocket message (mitmproxy's
    `WebSocketMessage`, from the `websocket_message` hook): drop it or rewrite it."""

    def commit(content: bytes) -> None:
        message.content = content

    return _carry_out(
        plan, lambda: any(plan.selects(f) and _in_body(f) for f in findings),
        "nothing flagged in the message", message.drop,
        lambda: redacted_message(observation, plan, payload, findings, recheck=recheck,
                                 limits=limits),
        commit, blocked="; message dropped")
