"""Same-shape placeholders for flagged values.

Where it can, a placeholder has the value's length, so length-prefixed formats
(protobuf) stay valid; examples and rules at `placeholder`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from urllib.parse import quote, unquote

__all__ = ["placeholder", "mask_text", "DIGEST_SEED"]

DIGEST_SEED = b"phonehome-redacted"
"""What a redacted digest is the digest of."""

_DIGESTS_BY_SIZE = {16: "md5", 20: "sha1", 28: "sha224", 32: "sha256", 48: "sha384", 64: "sha512"}
_HEX = re.compile(r"[0-9A-Fa-f]+")
_HEXISH = re.compile(r"[0-9A-Fa-f-]+")
_B64_STD = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_EMAIL = re.compile(r"([^@\s]+)@([^@\s]+\.[^@\s]+)")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")
_HASH_ENCODING = re.compile(r"(md5|sha1|sha224|sha256|sha384|sha512)(?:\([a-z-]*\))?")
_IPV4_BY_LENGTH = {
    7: "0.0.0.1",  # only as short as the value; not an address anyone owns
    8: "10.0.0.1",
    9: "192.0.2.1",
    10: "192.0.2.10",
    11: "192.0.2.100",
    12: "198.51.100.1",
    13: "198.51.100.10",
    14: "198.51.100.100",
}
_IPV6 = "2001:db8::1"
_MAX_LAYERS = 4
_AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|Token|Digest|Negotiate|Splunk|GoogleLogin)\s+", re.I)


def _digest(algorithm: str) -> bytes:
    return hashlib.new(algorithm, DIGEST_SEED).digest()


def _same_case(template: str, text: str) -> str:
    if template.isupper():
        return text.upper()
    if template.islower():
        return text.lower()
    return text


def mask_text(value: str) -> str:
    """Letters → x (case kept), digits → 0, everything else as is; never `value` itself."""
    for letter, digit in (("x", "0"), ("y", "1")):
        out = []
        for ch in value:
            if ch.isdigit():
                out.append(digit)
            elif ch.isalpha():
                out.append(letter.upper() if ch.isupper() else letter)
            else:
                out.append(ch)
        text = "".join(out)
        if text != value:
            return text
    return "x" * max(len(value), 1) if value != "x" * len(value) else "y" * max(len(value), 1)


def _email(local: str, domain: str) -> str:
    new_local = mask_text(local)
    tail = ".invalid"
    label = len(domain) - len(tail)
    new_domain = ("x" * label + tail) if label >= 1 else "x" + tail
    if new_domain == domain:
        new_domain = "y" * label + tail
    return new_local + "@" + new_domain


def _ip(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if address.version == 6:
        return _IPV6 if value != _IPV6 else "2001:db8::2"
    text = _IPV4_BY_LENGTH.get(len(value), "192.0.2.1")
    return text if text != value else "192.0.2.2"


def _mac(value: str) -> str:
    sep = value[2]
    octets = ["00", "00", "5e", "00", "53", "00" if value[-2:] != "00" else "01"]
    return _same_case(value, sep.join(octets))


def _b64_variant(value: str) -> tuple[bool, bool] | None:
    """(urlsafe, padded) when `value` is decodable base64, else None."""
    if len(value) < 4:
        return None
    if _B64_STD.fullmatch(value) is None and _B64_URL.fullmatch(value) is None:
        return None
    urlsafe = "-" in value or "_" in value
    return urlsafe, value.endswith("=") or (len(value) % 4 == 0 and not urlsafe)


def _b64_decode(value: str, urlsafe: bool) -> bytes | None:
    padded = value + "=" * (-len(value) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64_encode(data: bytes, urlsafe: bool, padded: bool) -> str:
    text = (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()
    return text if padded else text.rstrip("=")


def _hex_digest(value: str, algorithm: str | None) -> str | None:
    if _HEX.fullmatch(value) is None or len(value) % 2:
        return None
    size = len(value) // 2
    if algorithm is None or hashlib.new(algorithm).digest_size != size:
        algorithm = _DIGESTS_BY_SIZE.get(size)
    if algorithm is None:
        return None
    return _same_case(value, _digest(algorithm).hex())


def _b64_parts(value: str) -> tuple[tuple[bool, bool], bytes] | None:
    """The base64 variant of `value` and the bytes it holds, or None."""
    variant = _b64_variant(value)
    if variant is None:
        return None
    raw = _b64_decode(value, variant[0])
    return None if raw is None else (variant, raw)


def _b64_digest(value: str, algorithm: str | None) -> str | None:
    parts = _b64_parts(value)
    if parts is None:
        return None
    variant, raw = parts
    if algorithm is None or hashlib.new(algorithm).digest_size != len(raw):
        algorithm = _DIGESTS_BY_SIZE.get(len(raw))
    if algorithm is None:
        return None
    return _b64_encode(_digest(algorithm), *variant)


def _hash_name(encoding: str) -> str | None:
    """"sha256" or "sha256(lower)" → "sha256"; anything else → None."""
    m = _HASH_ENCODING.fullmatch(encoding)
    return m.group(1) if m else None


def _b64_layer(value: str, finding_type: str, rest: str, depth: int) -> str | None:
    """base64 of something: decode, replace what it held, encode the same way."""
    parts = _b64_parts(value)
    if parts is None:
        return None
    variant, raw = parts
    algorithm = _hash_name(rest)
    if algorithm is not None:
        if hashlib.new(algorithm).digest_size != len(raw):
            algorithm = _DIGESTS_BY_SIZE.get(len(raw))
        if algorithm is not None:
            return _b64_encode(_digest(algorithm), *variant)
    try:
        inner = raw.decode("utf-8")
    except UnicodeDecodeError:
        inner = ""
    if inner:
        data = _shape(inner, finding_type, rest or "plain", depth + 1).encode("utf-8")
    else:
        data = bytes(len(raw)) if any(raw) else b"\x01" * len(raw)
    return _b64_encode(data, *variant)


def _hex_layer(value: str, finding_type: str, rest: str, depth: int) -> str | None:
    if _HEX.fullmatch(value) is None or len(value) % 2:
        return None
    algorithm = _hash_name(rest)
    if algorithm is not None:
        return _hex_digest(value, algorithm)
    try:
        inner = bytes.fromhex(value).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    out = _shape(inner, finding_type, rest or "plain", depth + 1).encode("utf-8").hex()
    return _same_case(value, out)


def _layered(value: str, finding_type: str, enc: str, depth: int) -> str | None:
    """Peel the outermost layer of an encoding chain ("sha256(lower)>base64",
    "url>base64", "base64>url", "md5>hex>base64", "reversed", …)."""
    rest, _, last = enc.rpartition(">")
    if last in ("base64", "base64url", "b64"):
        return _b64_layer(value, finding_type, rest, depth)
    if last == "url":
        inner = unquote(value)
        if inner == value:
            return None
        return quote(_shape(inner, finding_type, rest or "plain", depth + 1), safe="")
    if last == "hex":
        return _hex_layer(value, finding_type, rest, depth)
    if last in ("reversed", "reverse"):
        return _shape(value[::-1], finding_type, rest or "plain", depth + 1)[::-1]
    algorithm = _hash_name(last)
    if algorithm is not None:
        return _hex_digest(value, algorithm) or _b64_digest(value, algorithm)
    return None


def _shape(value: str, finding_type: str, encoding: str, depth: int) -> str:
    enc = (encoding or "plain").lower().replace(" ", "")
    if not value:
        return value
    if depth < _MAX_LAYERS and enc not in ("plain", "case-folded"):
        found = _layered(value, finding_type, enc, depth)
        if found is not None:
            return found
    scheme = _AUTH_SCHEME.match(value)
    if scheme is not None and len(value) > scheme.end():
        return scheme.group(0) + _shape(value[scheme.end():], finding_type, "plain", depth + 1)
    m = _EMAIL.fullmatch(value)
    if m is not None:
        return _same_case(value, _email(m.group(1), m.group(2)))
    ip = _ip(value)
    if ip is not None:
        return ip
    if len(value) == 17 and _MAC.fullmatch(value):
        return _mac(value)
    if _HEX.fullmatch(value) and len(value) in (32, 40, 56, 64, 96, 128):
        return _hex_digest(value, None) or mask_text(value)
    if _HEXISH.fullmatch(value) and any(ch.isdigit() for ch in value):
        # uuids and hex ids: stay hex
        zeros = "".join("0" if ch != "-" else "-" for ch in value)
        return zeros if zeros != value else "".join("1" if ch != "-" else "-" for ch in value)
    return mask_text(value)


def placeholder(value: str, finding_type: str = "", encoding: str | None = None) -> str:
    """A same-shape stand-in for `value` (never equal to it when `value` is not empty).

        placeholder("jane.roe@example.org")              → "xxxx.xxx@xxxx.invalid"
        placeholder("<sha256 hex of the email>", "identity_match", "sha256")
                                                          → sha256 hex of a fixed placeholder
        placeholder("amFuZUBleGFtcGxlLm9yZw==", "identity_match", "base64")
                                                          → base64 of "xxxx@xxxx.invalid"

    The shape is read from the value itself, with the finding's encoding as a
    hint: digests stay digests of the same algorithm and length (hex or base64,
    same case and padding), base64 stays base64 of a placeholder of what it held,
    URL-encoded stays URL-encoded, emails stay valid emails, IPs and MACs become
    documentation addresses, everything else keeps its length and character
    classes (letters → x, digits → 0). Where it can, a placeholder has the same
    length as the value, so length-prefixed formats (protobuf) stay valid.
    """
    return _shape(value, finding_type, encoding or "plain", 0)
