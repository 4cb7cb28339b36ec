"""The leaks the simulator can plant, and the ground-truth records it keeps of them."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = [
    "ALL_LEAKS",
    "LEAK_FINDING_TYPES",
    "Plant",
    "parse_leaks",
    "jsonpath",
]

ALL_LEAKS: tuple[str, ...] = (
    "identity_plain",
    "identity_url",
    "identity_base64",
    "identity_hashed",
    "stack_username",
    "meeting_title",
    "muted_audio",
    "public_ip",
    "mac_address",
)

LEAK_FINDING_TYPES: dict[str, str] = {
    "identity_plain": "identity_match",
    "identity_url": "identity_match",
    "identity_base64": "identity_match",
    "identity_hashed": "identity_match",
    "stack_username": "username",
    "meeting_title": "meeting_title",
    "muted_audio": "audio_level",
    "public_ip": "ip_address",
    "mac_address": "mac_address",
}
"""The main finding type each leak should produce."""


def parse_leaks(spec: str | Collection[str]) -> frozenset[str]:
    """"all", "none", "a,b" or a collection of names. Raises ValueError on unknown names."""
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("all", "*"):
            return frozenset(ALL_LEAKS)
        if text in ("none", ""):
            return frozenset()
        names: Iterable[str] = (part.strip() for part in text.split(","))
    else:
        names = spec
    chosen = frozenset(name for name in names if name)
    unknown = sorted(chosen - set(ALL_LEAKS))
    if unknown:
        raise ValueError(f"unknown leak {', '.join(unknown)} (choose from {', '.join(ALL_LEAKS)},"
                         " all, none)")
    return chosen


def jsonpath(*parts: str | int) -> str:
    """("metrics", 0, "eventPayload") -> "$.metrics[0].eventPayload" (walk.py's style)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isascii() and (part.isidentifier() or part.isdigit()):
            out += "." + part
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out += f"['{escaped}']"
    return out


@dataclass(frozen=True, slots=True)
class Plant:
    """One personal value placed in one request.

    `leak` is a name from ALL_LEAKS for telemetry leaks, or "expected_service"
    for values the app must send to do its job (chat text in the chat call,
    the email in the sign-in). `location` is relative to the request when the
    request is built, e.g. "$.metrics[0].eventPayload.event.loginInfo.userEmail",
    "header:x-prelogin-userid" or "query:email".
    """

    leak: str
    finding_type: str
    encoding: str
    value_kind: str
    """The identity-file key the value comes from ("email", "ip", …), or a
    description for values that are not in it ("audio_level", "chat_message")."""
    location: str
    event: str | None = None
    finding_types: tuple[str, ...] = ()
    """Every finding type a complete audit should report for this value."""
