"""Detectors for credentials: tokens, API keys, and the vendors' public ingestion keys."""

from __future__ import annotations

import base64
import binascii
import json

from ..model import Scalar
from .base import Context, Detector, Hit, compile_re2

__all__ = [
    "AuthTokenDetector",
    "ingestion_key",
]


# --- auth token -------------------------------------------------------------

_TOKEN_KEYS = frozenset(
    {"authorization", "proxyauthorization", "token", "accesstoken", "refreshtoken", "idtoken",
     "authtoken", "apikey", "xapikey", "apitoken", "secret", "clientsecret", "password",
     "passwd", "pwd", "sessiontoken", "xauthtoken", "bearer", "privatekey", "secretkey",
     "accesskey", "sessionid", "jsessionid", "phpsessid", "connectsid", "sid", "xaccesstoken"}
)
_SESSION_KEYS = frozenset({"sessionid", "jsessionid", "phpsessid", "connectsid", "sid"})
_TOKEN_PLACEHOLDERS = frozenset({"null", "undefined", "none", "***", "<redacted>", "redacted",
                                 "xxx", "[redacted]", "[filtered]", "true", "false"})


# Public ingestion keys: they name the vendor's telemetry tenant or project, ship inside
# every copy of the app, and say nothing about the user.
_INGESTION_KEYS = frozenset(
    {"ikey", "instrumentationkey", "aiinstrumentationkey", "appinsightskey",
     "connectionstring", "dsn", "sentrydsn", "sentrykey", "xsentryauth", "sentryauth",
     "projecttoken", "mixpaneltoken", "amplitudeapikey", "amplitudekey"}
)
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# 1DS/Aria tenant token: 32 hex, a GUID, 4 digits (several, comma-separated, in one header)
_TENANT_TOKEN = compile_re2(
    rf"^[0-9a-f]{{32}}-{_GUID}-[0-9]{{4}}(?:\s*,\s*[0-9a-f]{{32}}-{_GUID}-[0-9]{{4}})*$"
)
_IKEY = compile_re2(rf"^(?:o:[0-9a-f]{{32}}|{_GUID}|[0-9a-f]{{32}})$")
_CONNECTION_IKEY = compile_re2(rf"(?i)(?:^|;)\s*InstrumentationKey\s*=\s*{_GUID}\s*(?:;|$)")
_DSN = compile_re2(r"^https?://([0-9a-f]{32})(:[0-9a-f]{32})?@[A-Za-z0-9.-]+(?::[0-9]+)?/"
                   r"(?:[A-Za-z0-9_.-]+/)*[0-9]+/?$")
_SENTRY_AUTH_KEY = compile_re2(r"(?:^|[\s,])sentry_key\s*=\s*[0-9a-f]{32}\b")
_HEX32 = compile_re2(r"^[0-9a-f]{32}$")
_PROJECT_TOKEN_KEYS = frozenset({"apikey", "token", "projecttoken", "mixpaneltoken",
                                 "amplitudeapikey", "amplitudekey"})
_PROJECT_TOKEN_HOSTS = (("amplitude.com", "Amplitude project API key"),
                        ("mixpanel.com", "Mixpanel project token"))


def ingestion_key(text: str, ctx: Context) -> str | None:
    """What public ingestion key `text` is (for the reason), or None.

    A key that carries a secret (an old Sentry DSN's `:secret`, `sentry_secret=`) is a
    credential, not an ingestion key."""
    key = ctx.key
    if key in ("dsn", "sentrydsn"):
        m = _DSN.search(text)
        return "Sentry DSN public key" if m and not m.group(2) else None
    if key in ("xsentryauth", "sentryauth", "sentrykey"):
        if "sentry_secret" in text:
            return None
        if _SENTRY_AUTH_KEY.search(text) or (key == "sentrykey" and _HEX32.search(text)):
            return "Sentry public key"
        return None
    if key == "connectionstring":
        if _CONNECTION_IKEY.search(text) and "secret" not in text.lower():
            return "Application Insights connection string"
        return None
    if key in ("ikey", "instrumentationkey", "aiinstrumentationkey", "appinsightskey"):
        if _IKEY.search(text) or _TENANT_TOKEN.search(text):
            return "1DS/Application Insights instrumentation key"
        return None
    if _TENANT_TOKEN.search(text):
        return "1DS tenant token"
    if key in _PROJECT_TOKEN_KEYS and _HEX32.search(text):
        for suffix, what in _PROJECT_TOKEN_HOSTS:
            if ctx.host == suffix or ctx.host.endswith("." + suffix):
                return what
        if key == "apikey" and "events" in ctx.siblings:
            return "Amplitude project API key"  # {"api_key": …, "events": […]}
        if key == "token" and ctx.parent == "properties" and "distinctid" in ctx.siblings:
            return "Mixpanel project token"  # {"event": …, "properties": {"token", …}}
    return None


def _jwt_header(text: str) -> dict | None:
    head = text.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


class AuthTokenDetector(Detector):
    """JWTs, Bearer/Basic credentials, well-known API-key shapes, values under token keys."""

    type = "auth_token"
    severity = "high"
    pattern = (
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
        r"|\b(?:[Bb]earer|[Bb]asic)\s+[A-Za-z0-9._~+/=-]{16,}"
        r"|\bAKIA[0-9A-Z]{16}\b"
        r"|\bAIza[0-9A-Za-z_-]{35}"
        r"|\bgh[pousr]_[A-Za-z0-9]{36,}"
        r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
        r"|\b[sr]k_live_[0-9A-Za-z]{16,}"
    )
    prefilter = (
        r"eyJ[A-Za-z0-9_-]{8}|[Bb]earer\s|[Bb]asic\s|AKIA[0-9A-Z]{4}|AIza|gh[pousr]_"
        r"|xox[abprs]-|[sr]k_live_"
    )
    positive_keys = _TOKEN_KEYS
    neighbours = True

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        text = value[start:end]
        if text.startswith("eyJ"):
            header = _jwt_header(text)
            if header is None or not ({"alg", "typ", "kid"} & header.keys()):
                return None
            return self.make(text, 0.95, f"JWT (alg {str(header.get('alg', '?'))[:10]})")
        lowered = text[:6].lower()
        if lowered.startswith(("bearer", "basic")):
            return self.make(text, 0.9, f"{text.split()[0].title()} credential")
        return self.make(text, 0.9, "API key with a known vendor prefix")

    def reads_neighbours(self, ctx: Context) -> bool:
        return ctx.key in _PROJECT_TOKEN_KEYS  # Amplitude/Mixpanel: by host or siblings

    def applies(self, ctx: Context) -> bool:
        if ctx.key in _SESSION_KEYS:
            return ctx.source == "cookie"
        return (ctx.key in _TOKEN_KEYS or ctx.key in _INGESTION_KEYS
                or ctx.key.endswith(("token", "apikey", "secret")))

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        what = ingestion_key(text, ctx)
        if what is not None:
            return self.make(text, 0.9, f"public ingestion key ({what}): it identifies the "
                             "vendor's telemetry tenant, not the user", "low",
                             category="identifiers")
        if ctx.key in _INGESTION_KEYS and ctx.key not in _TOKEN_KEYS:
            if "secret" in text.lower() or (ctx.key in ("dsn", "sentrydsn") and _DSN.search(text)):
                return self.make(text, 0.85, f"secret key under key {ctx.raw_key!r}")
            return None
        minimum = 4 if ctx.key in ("password", "passwd", "pwd") else 12
        if len(text) < minimum or text.lower() in _TOKEN_PLACEHOLDERS or len(set(text)) < 4:
            return None
        if " " in text and not text.lower().startswith(("bearer ", "basic ", "token ")):
            return None
        return self.make(text, 0.85, f"credential under key {ctx.raw_key!r}")
