"""Detectors for where the device is: IP address, coordinates, Wi-Fi network name.

An address in a private range is kept apart from a public one (`is_private_ip`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..model import Scalar
from .base import (
    Context,
    Detector,
    Hit,
    LabelledDetector,
    compile_re2,
    is_version_key,
    normalize_key,
    text_before,
)
from .cache import remember

__all__ = [
    "IpAddressDetector",
    "GeoLocationDetector",
    "WifiNetworkDetector",
    "is_private_ip",
]


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

_SAYS_VERSION: dict[str, bool] = {}
"""`_says_version` by text: payloads repeat the text before their addresses."""
_MAX_SAYS_VERSION = 4096


def _says_version(before: str) -> bool:
    """Whether the text before an address labels it a version: "version 43.8.0.26",
    "build: 43.8.0.26" in free text, "av=43.8.0.26" in a log line."""
    if _VERSION_WORD.search(before):
        return True
    label = _LABEL.search(before)
    return bool(label and is_version_key(normalize_key(label.group(1)))
                and normalize_key(label.group(1)) not in _IP_KEYS)


class IpAddressDetector(Detector):
    """IPv4/IPv6 literals, public or private (noted); versions and loopback are not IPs."""

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
        prev = text_before(value, start)
        nxt = value[end : end + 2]
        # Product/1.2.3.4, v1.2.3.4, 1.2.3.4.5 and 1.2.3.4-beta are versions.
        if prev in ("v", "V", ".") or (prev == "/" and text_before(value, start, 2) != "//"):
            return None
        if nxt[:1] in (".", "-", "_") and nxt[1:2].isalnum():
            return None
        if prev == ":" and ":" not in value[start:end]:
            return None  # 1:2.3.4.5 style build strings
        if is_version_key(ctx.key) and ctx.key not in _IP_KEYS:
            return None  # release, av, $app_version_string: 43.8.0.26 is a version
        before = value[max(0, start - 32) : start]
        says = _SAYS_VERSION.get(before)
        if says is None:
            says = _says_version(before)
            remember(_SAYS_VERSION, before, says, _MAX_SAYS_VERSION)
        if says:
            return None
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


def _decimals(value: float | int | str) -> int:
    if isinstance(value, str):
        m = _GEO_NUMBER.search(value)
        return len(m.group(1)) if m else 0
    if isinstance(value, int):
        return 0
    text = repr(value)
    return len(text.partition(".")[2]) if "e" not in text else 0


class GeoLocationDetector(LabelledDetector):
    """Coordinates: lat/lng keys (a pair when both sit in one object), "lat,lng" strings,
    GeoJSON-style coordinate lists, and labelled pairs in free text. 0/0 and values out
    of range are not places."""

    type = "geo_location"
    severity = "high"
    numeric = True
    neighbours = True
    pattern = _GEO_TEXT
    prefilter = r"[Ll]at(?:itude)?[\"']?[ \t]*[:=]"

    def labelled(self, m: Any, span: str, ctx: Context) -> Hit | None:
        lat, lon = m.group(1), m.group(2)
        if not self._place(float(lat), float(lon)):
            return None
        places = min(len(lat.partition(".")[2]), len(lon.partition(".")[2]))
        return self._hit(span, places, "latitude/longitude pair in text", 0.85)

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


class WifiNetworkDetector(LabelledDetector):
    """Wi-Fi network names (SSIDs) under network keys or labelled in a log line: a home
    or office network's name locates its user (public Wi-Fi maps index them)."""

    type = "wifi_network"
    severity = "medium"
    pattern = _LABELLED_SSID_PATTERN
    prefilter = r"\b(?:SSID|[Ss]sid)[\"']?[ \t]*[:=]"

    def labelled(self, m: Any, span: str, ctx: Context) -> Hit | None:
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
