"""Personal-data detectors: one small class per finding type.

Patterns are google-re2 (linear time); structural checks use the standard
library `ipaddress`, `phonenumbers` and python-stdnum. Every class is a pure
function of (value, Context).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json

import phonenumbers
from stdnum import iban, imei, luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.nl import bsn
from stdnum.us import ssn

from ..model import Scalar
from .base import (
    Context,
    Detector,
    Hit,
    compile_re2,
    is_machine_token,
    is_version_key,
    normalize_key,
)

__all__ = [
    "EmailDetector",
    "PhoneDetector",
    "PersonNameDetector",
    "IpAddressDetector",
    "MacAddressDetector",
    "GeoLocationDetector",
    "HostnameDetector",
    "UsernameDetector",
    "DeviceSerialDetector",
    "CreditCardDetector",
    "NationalIdDetector",
    "AuthTokenDetector",
    "WifiNetworkDetector",
    "OrganizationNameDetector",
    "is_private_ip",
    "ingestion_key",
]

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _before(value: str, start: int, n: int = 1) -> str:
    return value[max(0, start - n) : start]


# --- email ------------------------------------------------------------------

# "image@2x.png" and "icon@3x.webp" are asset names, not addresses.
_FILE_TLDS = frozenset(
    "png jpg jpeg gif svg webp bmp ico js mjs css map json xml html htm txt log "
    "zip gz pdf mp3 mp4 wav ttf woff woff2 exe dll so dylib".split()
)


class EmailDetector(Detector):
    name = "email"
    type = "email"
    severity = "high"
    base_confidence = 0.85
    single_line = True
    pattern = (
        r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
        r"[A-Za-z]{2,24}\b"
    )
    prefilter = r"@[A-Za-z0-9][A-Za-z0-9-]*\.[A-Za-z0-9]"
    positive_keys = frozenset(
        {"email", "emailaddress", "mail", "useremail", "upn", "login", "sipuri", "sip",
         "contact", "from", "to", "cc", "recipient", "sender", "owner", "attendee"}
    )

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        text = value[start:end]
        local, _, domain = text.partition("@")
        if local.startswith(".") or local.endswith(".") or ".." in local or ".." in domain:
            return None
        if domain.rsplit(".", 1)[-1].lower() in _FILE_TLDS:
            return None
        if _in_userinfo(value, start):
            return None  # https://<key>@o123.ingest.sentry.io/…: a URL's user part
        return self.make(
            text, self.base_confidence + self.context_score(ctx), "email address shape"
        )


_NOT_USERINFO = frozenset("/?#@ \t\r\n\"'<>")


def _in_userinfo(value: str, start: int) -> bool:
    """Whether value[start:] begins inside the userinfo of a `scheme://user@host` URL."""
    scheme = value.rfind("://", max(0, start - 256), start)
    if scheme < 0:
        return False
    return not any(ch in _NOT_USERINFO for ch in value[scheme + 3 : start])


# --- phone ------------------------------------------------------------------

_PHONE_KEYS = frozenset(
    {"phone", "phonenumber", "tel", "telephone", "mobile", "mobilenumber", "cell", "msisdn",
     "callerid", "callednumber", "callingnumber", "dialnumber", "pstn", "pstnnumber",
     "accessnumber", "phoneno", "fax", "contactnumber", "dialin", "dialout"}
)
_PHONE_REGIONS = ("US", "GB", "DE", "FR")


def _valid_phone(text: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


class PhoneDetector(Detector):
    """International numbers (+CC…) anywhere; national numbers only under phone keys."""

    name = "phone"
    type = "phone"
    severity = "high"
    numeric = True
    base_confidence = 0.8
    single_line = True
    pattern = r"\+[1-9][0-9 ().-]{6,20}[0-9]"
    prefilter = r"\+[1-9][0-9 ().-]{6}"
    positive_keys = _PHONE_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        prev = _before(value, start)
        nxt = value[end : end + 1]
        # Inside base64 ("…ab+12345678…") or a longer number: not a phone.
        if (prev and (prev in _ALNUM or prev in "/=+")) or (nxt and (nxt in _ALNUM or nxt in "/=")):
            return None
        text = value[start:end]
        digits = sum(ch.isdigit() for ch in text)
        if not 8 <= digits <= 15 or not _valid_phone(text, None):
            return None
        return self.make(
            text, self.base_confidence + self.context_score(ctx), "valid international number"
        )

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _PHONE_KEYS and ctx.source != "url"

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value).strip()
        if text.startswith("tel:"):
            text = text[4:]
        digits = sum(ch.isdigit() for ch in text)
        if not 6 <= digits <= 15 or len(text) > 32:
            return None
        if text.startswith("+"):
            valid = _valid_phone(text, None)
        else:
            valid = any(_valid_phone(text, region) for region in _PHONE_REGIONS)
        if not valid:
            return None
        return self.make(text, 0.9, f"valid phone number under key {ctx.raw_key!r}")


# --- person name ------------------------------------------------------------

_NAME_KEYS = frozenset(
    {"displayname", "fullname", "realname", "firstname", "lastname", "givenname", "surname",
     "familyname", "middlename", "nickname", "callername", "organizername", "sendername",
     "authorname", "attendeename", "participantname", "ownername", "speakername",
     "presentername", "contactname", "hostdisplayname", "userdisplayname", "personname"}
)
_SINGLE_TOKEN_KEYS = frozenset(
    {"firstname", "lastname", "givenname", "surname", "familyname", "middlename", "nickname"}
)
_PERSON_PARENTS = frozenset(
    {"user", "owner", "host", "organizer", "sender", "author", "actor", "attendee",
     "participant", "person", "contact", "creator", "speaker", "caller", "callee",
     "presenter", "member", "profile", "me", "self", "from", "to", "participants",
     "attendees", "members", "invitees", "panelists", "speakers", "contacts", "people",
     "users", "cohosts", "cohost", "invitee", "panelist"}
)
_NAME_TOKEN = compile_re2(r"^\pL[\pL\pM'’.-]*$")
_CAPITALIZED = compile_re2(r"^\p{Lu}")


def name_tokens(value: str) -> list[str] | None:
    """The words of a plausible personal name, or None."""
    text = value.strip()
    if not 2 <= len(text) <= 80 or "@" in text or any(ch.isdigit() for ch in text):
        return None
    tokens = text.split()
    if not 1 <= len(tokens) <= 5 or not all(_NAME_TOKEN.search(t) for t in tokens):
        return None
    return tokens


_LABELLED_NAME_PATTERN = (
    r"(?:[Dd]isplay[ _]?[Nn]ame|[Ff]ull[ _]?[Nn]ame|[Uu]ser[ _]?[Nn]ame|[Rr]eal[ _]?[Nn]ame)"
    r"[\"']?[ \t]*[:=][ \t]*[\"']?([A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ÿ'’-]+"
    r"(?:[ \t][A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ÿ'’-]+){1,3})"
)
_LABELLED_NAME = compile_re2(_LABELLED_NAME_PATTERN)


class PersonNameDetector(Detector):
    """Names from key context (displayName, fullName, firstName…, `name` under a person)
    and "displayName: First Last" labels inside free-text log lines."""

    name = "person_name"
    type = "person_name"
    severity = "medium"
    single_line = True
    pattern = _LABELLED_NAME_PATTERN
    prefilter = r"[Nn]ame[\"']?[ \t]*[:=]"

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        if ctx.source in ("url", "header"):
            return None
        m = _LABELLED_NAME.search(value[start:end])
        if m is None:
            return None
        name = m.group(1)
        if name_tokens(name) is None or name.isupper():
            return None
        return self.make(name, 0.75, "a personal name labelled in free text")

    def applies(self, ctx: Context) -> bool:
        if ctx.source in ("url", "header"):
            return False
        key = ctx.key
        if key in _NAME_KEYS or key.endswith(("displayname", "fullname")):
            return True
        if key == "username":
            return True
        return key == "name" and ctx.parent in _PERSON_PARENTS

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        tokens = name_tokens(value)
        if tokens is None or is_machine_token(value.strip()):
            return None
        key = ctx.key
        if key == "username" or key == "name":
            # Only "First Last": a bare login or an object's name is not a person.
            if not 2 <= len(tokens) <= 4 or not all(_CAPITALIZED.search(t) for t in tokens):
                return None
            confidence = 0.75
        elif key in _SINGLE_TOKEN_KEYS:
            confidence = 0.8
        else:
            confidence = 0.85 if len(tokens) >= 2 else 0.7
        return self.make(value.strip(), confidence, f"a personal name under key {ctx.raw_key!r}")


# --- IP address -------------------------------------------------------------

_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
              "100.64.0.0/10", "fc00::/7", "fe80::/10")
)
_PRIVATE_V4 = tuple(
    (int(net.network_address), int(net.netmask)) for net in _PRIVATE_NETS if net.version == 4
)


def is_private_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """RFC 1918, link-local, CGNAT, ULA. Documentation ranges (203.0.113.0/24…) count
    as public here, so tests can stand in for real public addresses with them."""
    if ip.version == 4:
        number = int(ip)
        return any(number & mask == network for network, mask in _PRIVATE_V4)
    return any(ip.version == net.version and ip in net for net in _PRIVATE_NETS)


def parse_ipv4(text: str) -> int | None:
    """Dotted quad to int (no leading zeros, each part <= 255), or None; fast path."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    number = 0
    for part in parts:
        if not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            return None
        octet = int(part)
        if octet > 255:
            return None
        number = number * 256 + octet
    return number


_IP_KEYS = frozenset(
    {"ip", "ipaddress", "ipaddr", "localip", "publicip", "privateip", "remoteip", "senderip",
     "gatewayip", "clientip", "clientaddress", "address", "addr", "peerreflexiveip",
     "publicnetworkprefix", "localnetworkprefix", "networkprefix", "relatedaddress",
     "candidate", "xforwardedfor", "xrealip", "forwardedfor", "forwarded", "srcip", "dstip",
     "hostip", "serverip", "externalip", "internalip", "wanip", "lanip"}
)


_LABEL = compile_re2(r"([A-Za-z_$][A-Za-z0-9_$-]{0,30})[\"']?[ \t]*[:=][ \t]*[\"']?$")
_VERSION_WORD = compile_re2(
    r"(?i)(?:version|\bver|\bbuild|\brelease|\brev)[\"']?[ \t]*[:=]?[ \t]*[\"']?$"
)


class IpAddressDetector(Detector):
    """IPv4/IPv6 literals, public or private (noted); versions and loopback are not IPs."""

    name = "ip_address"
    type = "ip_address"
    severity = "high"
    single_line = True
    pattern = (
        r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b",
        r"\b[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}",
    )
    prefilter = (
        r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
        r"[0-9A-Fa-f]::|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:",
    )
    positive_keys = _IP_KEYS

    def context_score(self, ctx: Context) -> float:
        if ctx.key in _IP_KEYS or ctx.key.endswith(("ip", "ips", "address", "addr")):
            return 0.25
        return super().context_score(ctx)

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        if ctx.source == "url" or (ctx.source == "header" and ctx.key == "host"):
            return None  # the server's own address, not the user's
        prev = _before(value, start)
        nxt = value[end : end + 2]
        # Product/1.2.3.4, v1.2.3.4, 1.2.3.4.5 and 1.2.3.4-beta are versions.
        if prev in ("v", "V", ".") or (prev == "/" and _before(value, start, 2) != "//"):
            return None
        if nxt[:1] in (".", "-", "_") and nxt[1:2].isalnum():
            return None
        if prev == ":" and ":" not in value[start:end]:
            return None  # 1:2.3.4.5 style build strings
        if is_version_key(ctx.key) and ctx.key not in _IP_KEYS:
            return None  # release, av, $app_version_string: 43.8.0.26 is a version
        before = value[max(0, start - 32) : start]
        if _VERSION_WORD.search(before):
            return None  # "version 43.8.0.26", "build: 43.8.0.26" in free text
        label = _LABEL.search(before)
        if label and is_version_key(normalize_key(label.group(1))) \
                and normalize_key(label.group(1)) not in _IP_KEYS:
            return None  # "av=43.8.0.26", "appVersion: 43.8.0.26" in a log line
        text = value[start:end]
        if "." in text:
            number = parse_ipv4(text)
            if number is None or not self._usable_v4(number):
                return None
            version, private = 4, any(number & m == n for n, m in _PRIVATE_V4)
        else:
            try:
                ip = ipaddress.IPv6Address(text)
            except ValueError:
                return None
            if ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
                return None
            version, private = 6, is_private_ip(ip)
        confidence = (0.7 if version == 4 else 0.75) + self.context_score(ctx)
        if private:
            return self.make(
                text, confidence, f"private IPv{version} address (local network)", "medium"
            )
        if (version == 4 and text.endswith(".0")) or "prefix" in ctx.key:
            return self.make(
                text, confidence, f"public IPv{version} network prefix (masked)", "medium"
            )
        return self.make(text, confidence, f"public IPv{version} address")

    @staticmethod
    def _usable_v4(number: int) -> bool:
        """Not 0/8, loopback, multicast, reserved, broadcast or a netmask-looking x.x.x.255."""
        first = number >> 24
        return 0 < first < 224 and first != 127 and number & 0xFF != 255


# --- MAC address ------------------------------------------------------------

_MAC_KEYS = frozenset(
    {"mac", "macaddress", "macaddr", "bssid", "wifimac", "hardwareaddress", "hwaddr",
     "ethernetmac", "wlanmac", "btmac", "bluetoothaddress"}
)
_BARE_MAC = compile_re2(r"^[0-9A-Fa-f]{12}$")
_SPECIAL_MACS = frozenset({"000000000000", "ffffffffffff", "020000000000"})


class MacAddressDetector(Detector):
    name = "mac_address"
    type = "mac_address"
    severity = "high"
    single_line = True
    pattern = (
        r"\b[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}\b"
        r"|\b[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}\b"
        r"|\b[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\b"
    )
    prefilter = (
        r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]"
        r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\."
    )
    positive_keys = _MAC_KEYS

    def _hit(self, text: str, confidence: float) -> Hit | None:
        digits = "".join(ch for ch in text if ch.isalnum()).lower()
        if digits in _SPECIAL_MACS or len(set(digits)) == 1:
            return None
        if int(digits[:2], 16) & 0x01:
            return None  # multicast group address
        if int(digits[:2], 16) & 0x02:
            return self.make(text, confidence, "locally administered (randomised) MAC", "medium")
        return self.make(text, confidence, "hardware MAC address (vendor-assigned)")

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        prev, nxt = _before(value, start), value[end : end + 1]
        text = value[start:end]
        sep = text[2]
        if prev in (sep, ".") or nxt in (sep, "."):
            return None  # part of a longer run: certificate fingerprint, IPv6, version
        if "." in text and text.replace(".", "").isdigit():
            return None  # 2023.1001.0001 is a version
        return self._hit(text, 0.75 + self.context_score(ctx))

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _MAC_KEYS

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, str) and _BARE_MAC.search(value.strip()):
            return self._hit(value.strip(), 0.85)
        return None


# --- geo location -----------------------------------------------------------

_LAT_KEYS = frozenset({"lat", "latitude", "geolat", "userlat", "loclat", "devicelatitude"})
_LON_KEYS = frozenset({"lng", "lon", "long", "longitude", "geolng", "geolon", "userlng",
                       "loclng", "loclon", "devicelongitude"})
_PAIR_KEYS = frozenset({"geo", "location", "coordinates", "coords", "latlng", "latlon",
                        "latlong", "position", "geolocation", "gps", "geopoint", "lnglat"})
_GEO_NUMBER = compile_re2(r"^\s*-?[0-9]{1,3}\.([0-9]{2,})\s*$")
_GEO_PAIR = compile_re2(
    r"^\s*\(?\s*(-?[0-9]{1,2}\.([0-9]{2,}))\s*[,; ]\s*(-?[0-9]{1,3}\.([0-9]{2,}))\s*\)?\s*$"
)
# "lat=48.8566, lng=2.3522", "latitude: 48.85 longitude: 2.35" in a log line.
_GEO_TEXT = (
    r"\b[Ll]at(?:itude)?[\"']?[ \t]*[:=][ \t]*[\"']?(-?[0-9]{1,2}\.[0-9]{2,})[\"']?"
    r"[ \t]*[,;&]?[ \t]*[\"']?(?:lng|lon|long|longitude)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(-?[0-9]{1,3}\.[0-9]{2,})"
)
_GEO_TEXT_RE = compile_re2(_GEO_TEXT)


def _decimals(value: float | int | str) -> int:
    if isinstance(value, str):
        m = _GEO_NUMBER.search(value)
        return len(m.group(1)) if m else 0
    if isinstance(value, int):
        return 0
    text = repr(value)
    return len(text.partition(".")[2]) if "e" not in text else 0


class GeoLocationDetector(Detector):
    """Coordinates: lat/lng keys (a pair when both sit in one object), "lat,lng" strings,
    GeoJSON-style coordinate lists, and labelled pairs in free text. 0/0 and values out
    of range are not places."""

    name = "geo_location"
    type = "geo_location"
    severity = "high"
    numeric = True
    neighbours = True
    single_line = True
    pattern = _GEO_TEXT
    prefilter = r"[Ll]at(?:itude)?[\"']?[ \t]*[:=]"

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        m = _GEO_TEXT_RE.search(value[start:end])
        if m is None:
            return None
        lat, lon = m.group(1), m.group(2)
        if not self._place(float(lat), float(lon)):
            return None
        places = min(len(lat.partition(".")[2]), len(lon.partition(".")[2]))
        return self._hit(value[start:end], places, "latitude/longitude pair in text", 0.85)

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _LAT_KEYS or ctx.key in _LON_KEYS or ctx.key in _PAIR_KEYS

    def reads_neighbours(self, ctx: Context) -> bool:
        return ctx.key in _LAT_KEYS or ctx.key in _LON_KEYS  # the other half beside it

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or value is None:
            return None
        if ctx.key in _PAIR_KEYS:
            if isinstance(value, str):
                m = _GEO_PAIR.search(value)
                if m is None or not self._place(float(m.group(1)), float(m.group(3))):
                    return None
                places = min(len(m.group(2)), len(m.group(4)))
                return self._hit(value.strip(), places, "latitude,longitude pair", 0.9)
            if not ctx.in_list or isinstance(value, int):
                return None
            # [lng, lat] (GeoJSON) or [lat, lng]: one finding for the list
            places = _decimals(value)
            if places < 2 or abs(value) > 180 or value == 0:
                return None
            index = len(ctx.keys) - 1
            return self._hit(str(value), places, f"coordinates under key {ctx.raw_key!r}", 0.85,
                             group=ctx.group_at(index))
        try:
            number = float(value)
        except ValueError:
            return None
        is_lat = ctx.key in _LAT_KEYS
        limit = 90.0 if is_lat else 180.0
        places = _decimals(value)
        if places < 2 or abs(number) > limit or number == 0:
            return None
        other = _LON_KEYS if is_lat else _LAT_KEYS
        if ctx.siblings & other:
            # Both halves in one object: one finding for the pair, at the object.
            index = len(ctx.keys) - 2
            group = ctx.group_at(index) if index >= 0 else None
            if group is not None:
                return self._hit(str(value), places, "latitude/longitude pair", 0.9, group=group)
        kind = "latitude" if is_lat else "longitude"
        # One number alone is weaker evidence than a pair.
        return self._hit(str(value), places, f"{kind} alone", 0.7, severity="medium")

    @staticmethod
    def _place(lat: float, lon: float) -> bool:
        return abs(lat) <= 90 and abs(lon) <= 180 and not (lat == 0 and lon == 0)

    def _hit(self, text: str, places: int, what: str, confidence: float,
             severity: str | None = None, group: int | None = None) -> Hit | None:
        metres = {2: "~1 km", 3: "~100 m", 4: "~10 m"}.get(places, "~1 m or finer")
        if severity is None:
            severity = "high" if places >= 3 else "medium"
        return self.make(text, confidence, f"{what} with {places} decimals ({metres})", severity,
                         group=group)

    @staticmethod
    def merge(texts: list[str]) -> tuple[str, str]:
        """(raw value, evidence) for one place given as several numbers."""
        return ",".join(texts), f"{len(texts)} coordinates"


# --- hostname ---------------------------------------------------------------

_HOST_KEYS = frozenset({"hostname", "host", "localhostname", "fqdn", "nodename"})
_MACHINE_KEYS = frozenset(
    {"computername", "machinename", "devicename", "workstation", "netbiosname",
     "localcomputername", "pcname", "clientname", "bonjourname"}
)
_HOSTNAME = compile_re2(
    r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$"
)
_LOCAL_SUFFIXES = (".local", ".lan", ".home", ".internal", ".localdomain", ".corp",
                   ".intranet", ".home.arpa", ".private")
_POSSESSIVE = compile_re2(r"\pL['’]s\b")


_LABELLED_HOST_PATTERN = (
    r"(?:(?i:computer|device|machine|host)[ _]?(?i:name)|hostname|HOSTNAME|Hostname)"
    r"[\"']?[ \t]*[:=][ \t]*[\"']?([A-Za-z0-9][A-Za-z0-9._'’ -]{1,62}[A-Za-z0-9])"
)
_LABELLED_HOST = compile_re2(_LABELLED_HOST_PATTERN)


class HostnameDetector(Detector):
    """The user's machine name under hostname/computerName keys, or labelled in a log
    line ("Computer Name: DESKTOP-4F2K9QX"); not server names."""

    name = "hostname"
    type = "hostname"
    severity = "medium"
    single_line = True
    pattern = _LABELLED_HOST_PATTERN
    prefilter = r"(?i:name|hostname)[\"']?[ \t]*[:=]"

    def applies(self, ctx: Context) -> bool:
        if ctx.source != "body" and ctx.source != "query":
            return False  # the Host header and the URL name the vendor's server
        return ctx.key in _HOST_KEYS or ctx.key in _MACHINE_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        if ctx.source not in ("body", "query"):
            return None
        m = _LABELLED_HOST.search(value[start:end])
        if m is None:
            return None
        label = m.group(0)[: m.start(1) - m.start(0)].lower()
        machine = not label.startswith("host")
        text = m.group(1).strip()
        if not (machine and _POSSESSIVE.search(text)):
            text = text.split()[0]  # "Computer Name: DESKTOP-4F2K9QX User: …"
        hit = self._judge(text, machine)
        return hit._replace(reason=hit.reason + " (in free text)") if hit else None

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        return self._judge(value.strip(), ctx.key in _MACHINE_KEYS)

    def _judge(self, text: str, machine_key: bool) -> Hit | None:
        if not 2 <= len(text) <= 253 or text.lower() in ("localhost", "unknown", "null"):
            return None
        if machine_key and _POSSESSIVE.search(text):
            return self.make(text, 0.9, "device name carrying a person's name")
        if _HOSTNAME.search(text) is None:
            return None
        try:
            ipaddress.ip_address(text)
            return None  # an IP literal: the ip_address detector's job
        except ValueError:
            pass
        lowered = text.lower().rstrip(".")
        if lowered.endswith(_LOCAL_SUFFIXES):
            return self.make(text, 0.85, "local network host name")
        if "." not in lowered:
            if not machine_key and not any(ch.isdigit() or ch == "-" for ch in lowered):
                return None  # a bare word under "host" ("main", "primary")
            if machine_key and text.isalpha():
                return None  # a generic model word ("iPhone")
            return self.make(text, 0.8, "single-label machine name")
        if machine_key:
            return self.make(text, 0.75, "machine name")
        return None  # a public FQDN under "host": a server, not the user's machine


# --- username ---------------------------------------------------------------

_USER_KEYS = frozenset(
    {"username", "login", "loginname", "user", "userlogin", "accountname", "samaccountname",
     "osuser", "localuser", "unixuser", "logonname", "systemuser", "osusername", "loginid"}
)
_NOT_USERS = frozenset(
    {"shared", "public", "default", "default user", "all users", "guest", "root", "admin",
     "administrator", "user", "username", "unknown", "anonymous", "null", "none", "nobody",
     "system", "localservice", "networkservice", "runner", "$user", "%username%", "<user>",
     "{user}", "you", "me", "undefined", "test"}
)
_USERNAME = compile_re2(r"^[A-Za-z0-9][A-Za-z0-9._\\-]{1,63}$")
_SEPARATORS = frozenset("/\\")


class UsernameDetector(Detector):
    """Account names under user/login keys and inside home-directory paths in any string."""

    name = "username"
    type = "username"
    severity = "medium"
    single_line = True
    pattern = (
        r"(?:/Users/|/home/|[A-Za-z]:\\{1,2}(?:Users|Documents and Settings)\\{1,2}"
        r"|%2[Ff](?:Users|home)%2[Ff])"
        r"[^/\\\s\"':*?<>|%]{1,64}"
    )
    prefilter = r"/Users/|/home/|\\(?:Users|Documents and Settings)\\|%2[Ff](?:Users|home)%2[Ff]"

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        prev = _before(value, start)
        escaped = value[start : start + 1] == "%" and _before(value, start, 3)[:1] == "%"
        if prev and (prev in _ALNUM or prev in ".-_") and not escaped:
            return None  # example.com/home/… is a URL path, not a home directory
        match = value[start:end]
        cut = max(match.rfind("/"), match.rfind("\\"), match.rfind("%2F"), match.rfind("%2f"))
        name = match[cut + (3 if match[cut : cut + 1] == "%" else 1) :]
        if self._reject(name):
            return None
        return self.make(name, 0.85, "user name inside a home-directory path")

    @staticmethod
    def _reject(name: str) -> bool:
        lowered = name.lower()
        return (
            len(name) < 2
            or lowered in _NOT_USERS
            or name.isdigit()
            or name.startswith(("$", "%", "~", "{", "<"))
        )

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _USER_KEYS and ctx.source != "url"

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if "@" in text or " " in text or _USERNAME.search(text) is None or self._reject(text):
            return None
        if is_machine_token(text) and not any(ch in text for ch in "._-\\"):
            return None  # hex ids, numbers, ENUMS
        if len(text) >= 16 and sum(ch.isdigit() for ch in text) > len(text) // 3:
            return None  # an opaque id, not a login
        return self.make(text, 0.75, f"account name under key {ctx.raw_key!r}")


# --- device serial ----------------------------------------------------------

_SERIAL_KEYS = frozenset(
    {"serial", "serialnumber", "serialno", "deviceserial", "hardwareserial", "sn", "imei",
     "meid", "systemserial", "boardserial", "platformserialnumber", "deviceserialnumber",
     "productserial", "chassisserial", "ioplatformserialnumber", "servicetag",
     "dellservicetag", "hardwareserialnumber", "systemserialnumber", "machineserial"}
)
_SERIAL_PLACEHOLDERS = frozenset(
    {"0", "unknown", "none", "null", "n/a", "na", "default string", "to be filled by o.e.m.",
     "system serial number", "0123456789", "not specified", "not applicable", "undefined",
     "serial", "123456789", "1234567890", "none provided", "not available"}
)
_SERIAL = compile_re2(r"^[A-Za-z0-9-]{6,32}$")
# "Serial Number (system): C02XK0ABJGH5", "IOPlatformSerialNumber" = "C02…", "Service Tag: 8XK2Q13"
_LABELLED_SERIAL_PATTERN = (
    r"(?:[Ss]erial[ _]?(?:[Nn]umber|[Nn]o\.?)?|SERIAL[ _]?(?:NUMBER|NO)?|IOPlatformSerialNumber"
    r"|[Ss]ervice[ _]?[Tt]ag|SERVICE[ _]?TAG)"
    r"(?:[ \t]*\([A-Za-z ]{1,20}\))?[\"']?[ \t]*(?:[:=]|=>)[ \t]*[\"']?([A-Z0-9]{7,20})\b"
)
_LABELLED_SERIAL = compile_re2(_LABELLED_SERIAL_PATTERN)
_LETTER_AND_DIGIT = compile_re2(r"^(?:[0-9]+[A-Za-z]|[A-Za-z]+[0-9])")


def serial_kind(text: str) -> str:
    """A name for the serial's shape: Apple (10 or 12 characters), Dell service tag (7)."""
    if text.isalnum() and text.isupper():
        if len(text) in (10, 11, 12):
            return "Apple-style hardware serial"
        if len(text) == 7:
            return "Dell-style service tag"
    return "hardware serial"


class DeviceSerialDetector(Detector):
    """Hardware serials under serial keys, and labelled serials inside log lines."""

    name = "device_serial"
    type = "device_serial"
    severity = "medium"
    numeric = True
    single_line = True
    pattern = _LABELLED_SERIAL_PATTERN
    prefilter = r"(?i:serial|service[ _]?tag)"

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        m = _LABELLED_SERIAL.search(value[start:end])
        if m is None:
            return None
        text = m.group(1)
        if text.lower() in _SERIAL_PLACEHOLDERS or len(set(text)) < 4:
            return None
        if _LETTER_AND_DIGIT.search(text) is None:
            return None  # all digits or all letters: a count, a word
        return self.make(text, 0.8, f"{serial_kind(text)} labelled in free text")

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _SERIAL_KEYS or ctx.key.endswith("serialnumber")

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return None
        text = str(value).strip()
        if text.lower() in _SERIAL_PLACEHOLDERS or len(set(text)) < 3:
            return None
        if ctx.key in ("imei", "meid"):
            if imei.is_valid(text):
                return self.make(text, 0.95, "IMEI with a valid check digit", "high")
            return None
        if _SERIAL.search(text) is None or not any(ch.isdigit() for ch in text):
            return None
        return self.make(text, 0.8, f"{serial_kind(text)} under key {ctx.raw_key!r}")


# --- Wi-Fi network -----------------------------------------------------------

_SSID_KEYS = frozenset(
    {"ssid", "wifissid", "wifiname", "networkname", "wlanssid", "currentssid", "ssidname",
     "wifinetwork", "wifinetworkname", "networkssid", "connectedssid", "apname", "wlanname"}
)
_NOT_SSIDS = frozenset(
    {"", "unknown", "<unknown ssid>", "null", "none", "n/a", "0x", "wifi", "wi-fi", "wlan",
     "ethernet", "cellular", "lte", "5g", "4g", "3g", "wired", "wireless", "vpn", "lan",
     "undefined", "<redacted>", "redacted", "not connected", "disconnected", "offline", "other"}
)
_LABELLED_SSID_PATTERN = r"\b(?:SSID|[Ss]sid)[\"']?[ \t]*[:=][ \t]*\"?([^\"\n\r,;]{1,32})"
_LABELLED_SSID = compile_re2(_LABELLED_SSID_PATTERN)


class WifiNetworkDetector(Detector):
    """Wi-Fi network names (SSIDs) under network keys or labelled in a log line: a home
    or office network's name locates its user (public Wi-Fi maps index them)."""

    name = "wifi_network"
    type = "wifi_network"
    severity = "medium"
    single_line = True
    pattern = _LABELLED_SSID_PATTERN
    prefilter = r"\b(?:SSID|[Ss]sid)[\"']?[ \t]*[:=]"

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        m = _LABELLED_SSID.search(value[start:end])
        if m is None:
            return None
        return self._judge(m.group(1).strip(), "Wi-Fi network name (SSID) in free text")

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _SSID_KEYS and ctx.source != "url"

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        return self._judge(value.strip(), f"Wi-Fi network name (SSID) under key {ctx.raw_key!r}")

    def _judge(self, text: str, reason: str) -> Hit | None:
        if not 1 <= len(text.encode("utf-8", "replace")) <= 32 or text.lower() in _NOT_SSIDS:
            return None
        if len(text) == 17 and text.count(":") == 5:
            return None  # a BSSID: the mac_address detector's
        return self.make(text, 0.8, reason)


# --- organisation -------------------------------------------------------------

_ORG_KEYS = frozenset(
    {"orgname", "organizationname", "organisationname", "organization", "organisation",
     "tenantname", "tenantdisplayname", "companyname", "company", "employer",
     "orgdisplayname", "organizationdisplayname", "customername", "accountorgname"}
)
_NOT_ORG_PARENTS = frozenset({"sdk", "app", "application", "vendor", "publisher", "library",
                              "manufacturer", "client", "product", "lib", "framework"})
_NOT_ORGS = frozenset({"", "unknown", "null", "none", "n/a", "undefined", "default",
                       "personal", "consumer", "free", "guest", "test", "other"})
_HAS_LETTER = compile_re2(r"\pL")


class OrganizationNameDetector(Detector):
    """The user's employer or tenant name (orgName, tenantName, companyName …): it
    narrows who the user is and names their employer."""

    name = "organization_name"
    type = "organization_name"
    severity = "medium"

    def applies(self, ctx: Context) -> bool:
        return (ctx.key in _ORG_KEYS and ctx.source in ("body", "query")
                and ctx.parent not in _NOT_ORG_PARENTS)

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not 2 <= len(text) <= 120 or text.lower() in _NOT_ORGS or "@" in text:
            return None
        if _HAS_LETTER.search(text) is None or "://" in text:
            return None
        if " " not in text and is_machine_token(text) and not text.isalpha():
            return None  # an org id, an enum, a uuid
        if text.isupper() and "_" in text:
            return None  # ORG_TYPE_ENTERPRISE
        return self.make(text, 0.8, f"organisation or tenant name under key {ctx.raw_key!r}")


# --- credit card ------------------------------------------------------------

_CARD_KEYS = frozenset({"card", "cardnumber", "pan", "cc", "ccnumber", "creditcard",
                        "creditcardnumber", "cardno", "paymentcard"})


def card_brand(digits: str) -> str | None:
    """The card network for an IIN prefix and length, or None."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "Visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "Mastercard"
    if two in (34, 37) and n == 15:
        return "American Express"
    if (digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649) and n in (16, 19):
        return "Discover"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "JCB"
    if (300 <= int(digits[:3]) <= 305 or two in (36, 38)) and n == 14:
        return "Diners Club"
    if two == 62 and 16 <= n <= 19:
        return "UnionPay"
    return None


class CreditCardDetector(Detector):
    name = "credit_card"
    type = "credit_card"
    severity = "high"
    single_line = True
    pattern = (
        r"\b[0-9]{13,19}\b"
        r"|\b[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,3})?\b"
        r"|\b[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}\b"
    )
    prefilter = r"[0-9]{4}[ -]?[0-9]{4}|[0-9]{4}[ -][0-9]{6}"
    positive_keys = _CARD_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        prev, nxt = _before(value, start), value[end : end + 2]
        if prev in (".", ",") or (nxt[:1] in (".", ",") and nxt[1:2].isdigit()):
            return None  # a decimal number
        text = value[start:end]
        digits = "".join(ch for ch in text if ch.isdigit())
        if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
            return None
        separators = {ch for ch in text if not ch.isdigit()}
        if len(separators) > 1:
            return None
        brand = card_brand(digits)
        if brand is None or not luhn.is_valid(digits):
            return None
        confidence = 0.8 + self.context_score(ctx)
        return self.make(text, confidence, f"{brand} number with a valid Luhn check digit")


# --- national id ------------------------------------------------------------

_NATIONAL_KEYS = frozenset(
    {"ssn", "socialsecuritynumber", "nationalid", "nationalidnumber", "taxid", "tin",
     "steuerid", "steueridnr", "idnr", "nir", "insee", "dni", "nie", "nif", "bsn",
     "personalid", "personalnumber", "personnummer", "nationalnumber", "iban", "bankaccount"}
)
_ID_VALIDATORS = (
    ("US SSN", ssn),
    ("DE Steuer-IdNr", idnr),
    ("FR NIR", nir),
    ("ES DNI", dni),
    ("ES NIE", nie),
    ("NL BSN", bsn),
    ("IBAN", iban),
)


class NationalIdDetector(Detector):
    """US SSN (dashed), IBAN and Spanish DNI anywhere; more kinds under id keys (stdnum)."""

    name = "national_id"
    type = "national_id"
    severity = "high"
    numeric = True
    single_line = True
    pattern = (
        r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b"
        r"|\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"
        r"|\b[0-9]{8}-?[A-Z]\b"
    )
    prefilter = r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}|[0-9]{8}-?[A-Z]"
    positive_keys = _NATIONAL_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        text = value[start:end]
        if text[:1].isalpha():
            kind, module = "IBAN", iban
        elif text[3:4] == "-" and text[6:7] == "-":
            kind, module = "US SSN", ssn
        else:
            kind, module = "ES DNI", dni
        if not module.is_valid(text):
            return None
        confidence = 0.8 + self.context_score(ctx)
        return self.make(text, confidence, f"{kind} with valid structure/check digits")

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _NATIONAL_KEYS

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value).strip()
        if not 6 <= len(text) <= 40:
            return None
        for kind, module in _ID_VALIDATORS:
            if module.is_valid(text):
                return self.make(text, 0.9, f"{kind} under key {ctx.raw_key!r}")
        return None


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

    name = "auth_token"
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

