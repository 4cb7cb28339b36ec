"""Same-shape placeholders: format, length, encoding chains, never the value itself."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonehome.enforce import mask_text, placeholder
from phonehome.enforce.placeholder import DIGEST_SEED

EMAIL = "jane.roe@example.org"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.invalid$", re.I)


def _digest(algorithm: str) -> bytes:
    return hashlib.new(algorithm, DIGEST_SEED).digest()


def _b64(data: bytes, urlsafe: bool = False, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()
    return text if pad else text.rstrip("=")


def _unb64(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded) if ("-" in text or "_" in text) else \
        base64.b64decode(padded)


HASHES = ["md5", "sha1", "sha224", "sha256", "sha512"]

TABLE = [
    # id, value, finding type, encoding, check(new) -> bool, same length
    ("email", EMAIL, "email", "plain", EMAIL_RE.match, True),
    ("email short domain", "jo@ex.io", "email", "plain", EMAIL_RE.match, False),
    ("email upper", EMAIL.upper(), "identity_match", "case-folded",
     lambda n: EMAIL_RE.match(n) and n.isupper(), True),
    ("reversed email", EMAIL[::-1], "identity_match", "reversed",
     lambda n: EMAIL_RE.match(n[::-1]), True),
    ("url email", quote(EMAIL, safe=""), "identity_match", "url",
     lambda n: EMAIL_RE.match(unquote(n)) and "%40" in n, True),
    ("base64 email", _b64(EMAIL.encode()), "identity_match", "base64",
     lambda n: EMAIL_RE.match(_unb64(n).decode()), True),
    ("base64url nopad", _b64(EMAIL.encode(), True, False), "identity_match", "base64url",
     lambda n: EMAIL_RE.match(_unb64(n).decode()) and "=" not in n, True),
    ("url>base64", _b64(quote(EMAIL, safe="").encode()), "identity_match", "url>base64",
     lambda n: EMAIL_RE.match(unquote(_unb64(n).decode())), True),
    ("base64>url", quote(_b64(EMAIL.encode()), safe=""), "identity_match", "base64>url",
     lambda n: EMAIL_RE.match(_unb64(unquote(n)).decode()), True),
    ("hex email", EMAIL.encode().hex(), "identity_match", "hex",
     lambda n: EMAIL_RE.match(bytes.fromhex(n).decode()), True),
    *[(f"{a} hex", hashlib.new(a, EMAIL.encode()).hexdigest(), "identity_match", a,
       lambda n, a=a: n == _digest(a).hex(), True) for a in HASHES],
    ("sha1 HEX", hashlib.sha1(EMAIL.encode()).hexdigest().upper(), "identity_match", "sha1",
     lambda n: n == _digest("sha1").hex().upper(), True),
    ("sha256(lower)>base64", _b64(hashlib.sha256(EMAIL.encode()).digest()), "identity_match",
     "sha256(lower)>base64", lambda n: _unb64(n) == _digest("sha256"), True),
    ("sha256>base64url", _b64(hashlib.sha256(EMAIL.encode()).digest(), True, False),
     "identity_match", "sha256>base64url",
     lambda n: _unb64(n) == _digest("sha256") and "=" not in n, True),
    ("md5>hex>base64", _b64(hashlib.md5(EMAIL.encode()).hexdigest().encode()), "identity_match",
     "md5>hex>base64", lambda n: _unb64(n).decode() == _digest("md5").hex(), True),
    ("digest without hint", hashlib.sha256(b"x").hexdigest(), "persistent_id", None,
     lambda n: n == _digest("sha256").hex(), True),
    ("ipv4", "203.0.113.42", "ip_address", None,
     lambda n: ipaddress.ip_address(n).version == 4, True),
    ("ipv4 short", "8.8.8.8", "ip_address", None,
     lambda n: ipaddress.ip_address(n).version == 4, True),
    ("ipv4 longest", "203.113.113.113", "ip_address", None,
     lambda n: ipaddress.ip_address(n).version == 4, False),
    ("ipv6", "2a00:1450:4001:82b::200e", "ip_address", None,
     lambda n: ipaddress.ip_address(n).version == 6, False),
    ("mac colon", "a4:83:e7:12:34:56", "mac_address", None,
     lambda n: re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", n), True),
    ("mac dash upper", "A4-83-E7-12-34-56", "mac_address", None,
     lambda n: re.fullmatch(r"([0-9A-F]{2}-){5}[0-9A-F]{2}", n), True),
    ("phone", "+1-202-555-0142", "phone", None, lambda n: n == "+0-000-000-0000", True),
    ("uuid", "550e8400-e29b-41d4-a716-446655440000", "persistent_id", None,
     lambda n: re.fullmatch(r"[0-]+", n), True),
    ("title", "Quarterly budget review", "meeting_title", None,
     lambda n: n == "Xxxxxxxxx xxxxxx xxxxxx", True),
    ("unicode name", "Zoë Ångström", "person_name", None,
     lambda n: n == "Xxx Xxxxxxxx", True),
    ("number text", "42.5", "audio_level", None, lambda n: n == "00.0", True),
    ("already masked", "xxxx", "username", None, lambda n: n == "yyyy", True),
    ("zeros", "0000", "device_serial", None, lambda n: n == "1111", True),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123", "auth_token", None,
     lambda n: n.count(".") == 2, True),
    ("bearer keeps its scheme", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "auth_token",
     None, lambda n: n.startswith("Bearer ") and "eyJ" not in n, True),
    ("aligned base64 chunk", "ZXhhbXBsZS5vcmc", "identity_match", "base64",
     lambda n: re.fullmatch(r"[A-Za-z0-9+/]+", n), True),
]


@pytest.mark.parametrize(("value", "type_", "encoding", "check", "same_length"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_placeholder_shapes(value: str, type_: str, encoding: str | None, check,
                            same_length: bool) -> None:
    new = placeholder(value, type_, encoding)
    assert new != value
    assert check(new), new
    if same_length:
        assert len(new) == len(value)
    assert placeholder(value, type_, encoding) == new  # deterministic


def test_empty_value_stays_empty() -> None:
    assert placeholder("") == ""


@given(st.text(min_size=1, max_size=80))
def test_mask_text_keeps_length_and_never_returns_the_value(value: str) -> None:
    new = mask_text(value)
    assert new != value and len(new) == len(value)


@given(st.text(min_size=1, max_size=60), st.sampled_from(
    [None, "plain", "url", "base64", "base64url", "hex", "sha256", "reversed",
     "sha1(lower)>base64", "url>base64", "case-folded", "nonsense>layer"]))
def test_placeholder_never_returns_the_value(value: str, encoding: str | None) -> None:
    assert placeholder(value, "identity_match", encoding) != value
