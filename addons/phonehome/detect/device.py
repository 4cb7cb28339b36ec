"""Detectors for what names the machine: MAC address, hostname, account name, serial number."""

from __future__ import annotations

import ipaddress
from typing import Any

from stdnum import imei

from ..model import Scalar
from .base import (
    ALNUM,
    Context,
    Detector,
    Hit,
    LabelledDetector,
    compile_re2,
    is_machine_token,
    text_before,
)

__all__ = [
    "MacAddressDetector",
    "HostnameDetector",
    "UsernameDetector",
    "DeviceSerialDetector",
]


# --- MAC address ------------------------------------------------------------

_MAC_KEYS = frozenset(
    {"mac", "macaddress", "macaddr", "bssid", "wifimac", "hardwareaddress", "hwaddr",
     "ethernetmac", "wlanmac", "btmac", "bluetoothaddress"}
)
_BARE_MAC = compile_re2(r"^[0-9A-Fa-f]{12}$")
_SPECIAL_MACS = frozenset({"000000000000", "ffffffffffff", "020000000000"})


class MacAddressDetector(Detector):
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
        prev, nxt = text_before(value, start), value[end : end + 1]
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


class HostnameDetector(LabelledDetector):
    """The user's machine name under hostname/computerName keys, or labelled in a log
    line ("Computer Name: DESKTOP-4F2K9QX"); not server names."""

    type = "hostname"
    severity = "medium"
    pattern = _LABELLED_HOST_PATTERN
    prefilter = r"(?i:name|hostname)[\"']?[ \t]*[:=]"

    def applies(self, ctx: Context) -> bool:
        if ctx.source != "body" and ctx.source != "query":
            return False  # the Host header and the URL name the vendor's server
        return ctx.key in _HOST_KEYS or ctx.key in _MACHINE_KEYS

    def labelled(self, m: Any, span: str, ctx: Context) -> Hit | None:
        if ctx.source not in ("body", "query"):
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
        prev = text_before(value, start)
        escaped = value[start : start + 1] == "%" and text_before(value, start, 3)[:1] == "%"
        if prev and (prev in ALNUM or prev in ".-_") and not escaped:
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
_LETTER_AND_DIGIT = compile_re2(r"^(?:[0-9]+[A-Za-z]|[A-Za-z]+[0-9])")


def serial_kind(text: str) -> str:
    """A name for the serial's shape: Apple (10 or 12 characters), Dell service tag (7)."""
    if text.isalnum() and text.isupper():
        if len(text) in (10, 11, 12):
            return "Apple-style hardware serial"
        if len(text) == 7:
            return "Dell-style service tag"
    return "hardware serial"


class DeviceSerialDetector(LabelledDetector):
    """Hardware serials under serial keys, and labelled serials inside log lines."""

    type = "device_serial"
    severity = "medium"
    numeric = True
    pattern = _LABELLED_SERIAL_PATTERN
    prefilter = r"(?i:serial|service[ _]?tag)"

    def labelled(self, m: Any, span: str, ctx: Context) -> Hit | None:
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
