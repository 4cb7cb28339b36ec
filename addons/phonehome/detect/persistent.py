"""Persistent identifiers: ids that recur unchanged across flows and captures.

Which keys count, and which ids do not by design, is said at `identifier_candidates`;
analysis/persistent.py links the flows that carry the same one.
"""

from __future__ import annotations

from ..model import Payload
from .base import compile_re2, normalize_key
from .redact import EPHEMERAL_KEY, fingerprint, redact

__all__ = ["IdentifierScanner", "identifier_candidates", "is_identifier_key",
           "is_shared_constant"]

_ID_KEYS = frozenset(
    {"deviceid", "machineid", "installid", "installationid", "userid", "advertisingid",
     "adid", "idfa", "idfv", "gaid", "aaid", "orgid", "organizationid", "hardwareid", "hwid",
     "hardwarehash", "hardwareuuid", "machineguid", "machinehash", "deviceuuid", "deviceurl",
     "anonymousid", "distinctid", "clientid", "customerid", "accountid", "tenantid",
     "profileid", "personid", "visitorid", "uid", "cid", "instanceid", "appinstanceid",
     "firebaseinstanceid", "fingerprint", "devicefingerprint", "udid", "uuid", "guid",
     "subscriberid", "actorid", "hostuserid", "ciscodeviceurl", "wdmdeviceid", "telemetryid",
     "sqmid", "macaddresshash", "serialhash", "usermachineid"}
)
_ID_SUFFIXES = ("deviceid", "machineid", "installid", "installationid", "userid",
                "hardwareid", "hwid", "advertisingid", "orgid", "devicehash", "machinehash")
_PER_EVENT = frozenset(
    {"eventid", "messageid", "requestid", "trackingid", "traceid", "spanid", "parentspanid",
     "nonce", "correlationid", "sessioncorrelationid", "sessionid", "transactionid",
     "xrequestid", "xcorrelationid", "shareinstanceid", "batchid", "sequenceid"}
)
_EMPTY = frozenset({"", "0", "null", "none", "unknown", "undefined", "nil", "-1", "n/a",
                    "00000000-0000-0000-0000-000000000000", "no_auth", "noauth", "default",
                    "anonymous", "anon", "guest", "not_set", "notset", "unset", "empty",
                    "nobody", "unauthenticated", "(null)", "<null>", "[object object]",
                    "none_provided", "unavailable", "not available", "redacted", "<redacted>"})
# ENUM_WORDS with no digit (NO_AUTH, NOT_SET).
_ENUM_WORDS = compile_re2(r"^[A-Z]+(?:_[A-Z]+)+$")
_SEPARATORS = str.maketrans("", "", "-:._{} ")


def is_shared_constant(text: str) -> bool:
    """A value every install sends alike (NO_AUTH, default, all-zero or one-character
    ids such as 0000…, ffffffff-ffff-…, 00:00:00:00:00:00): never a persistent id."""
    if text.lower() in _EMPTY or _ENUM_WORDS.search(text) is not None:
        return True
    return len(set(text.translate(_SEPARATORS))) <= 1


def is_identifier_key(key: str) -> bool:
    """Whether values under `key` are long-lived identifiers (not per-event ids)."""
    norm = normalize_key(key)
    if norm in _PER_EVENT or norm.endswith(("eventid", "requestid", "trackingid", "traceid")):
        return False
    return norm in _ID_KEYS or norm.endswith(_ID_SUFFIXES)


MAX_KEYS = 4096
"""Key decisions an IdentifierScanner remembers before it starts over."""
MAX_VALUES = 4096
"""(fingerprint, evidence) pairs an IdentifierScanner remembers before it starts over."""
MAX_VALUE_CHARS = 512
"""Longer values are described every time, never kept."""


class IdentifierScanner:
    """`identifier_candidates` with bounded memos: key → is-identifier, and
    value → (fingerprint, evidence). Keys and ids recur from flow to flow, so a
    leaf usually costs one dict look-up."""

    __slots__ = ("_keys", "_values", "key")

    def __init__(self, key: bytes = EPHEMERAL_KEY) -> None:
        self.key = key
        self._keys: dict[str, bool] = {}
        self._values: dict[str, tuple[str, str]] = {}

    def candidates(self, payload: Payload) -> list[dict[str, str]]:
        """[{"key", "location", "fingerprint", "evidence"}] for values under id-like keys."""
        out: list[dict[str, str]] = []
        keys = self._keys
        values = self._values
        for leaf in payload.leaves:
            path = leaf.path
            key = path[-1] if path else ""
            if key.__class__ is not str:
                key = leaf.key  # a list item: the nearest name above it
            wanted = keys.get(key)
            if wanted is None:
                if len(keys) >= MAX_KEYS:
                    keys.clear()
                wanted = keys[key] = is_identifier_key(key)
            if not wanted:
                continue
            value = leaf.value
            kind = value.__class__
            if kind is str:
                text = value.strip()
            elif kind is int:
                text = str(value)
            elif value is None or isinstance(value, (bool, float)):
                continue
            else:
                text = str(value).strip()
            if len(text) < 4:
                continue
            described = values.get(text)
            if described is None:
                if is_shared_constant(text):
                    continue
                described = (fingerprint(text, self.key), redact("persistent_id", text))
                if len(text) <= MAX_VALUE_CHARS:
                    if len(values) >= MAX_VALUES:
                        values.clear()
                    values[text] = described
            out.append(
                {
                    "key": key,
                    "location": leaf.location,
                    "fingerprint": described[0],
                    "evidence": described[1],
                }
            )
        return out


_SCANNER = IdentifierScanner()


def identifier_candidates(payload: Payload) -> list[dict[str, str]]:
    """[{"key", "location", "fingerprint", "evidence"}] for values under id-like keys.

    Uses a shared bounded memo; `DetectionEngine.identifiers` is the same with the
    engine's own.

    Not persistent, by design:
    - per-event and per-request ids: eventId, messageId, requestId, trackingId,
      traceId, spanId, nonce;
    - correlationId and sessionId (and sessionCorrelationId): Webex makes a new
      correlationId per call/meeting and a new session per app run, so their
      recurrence links flows of one meeting, not one person over time;
    - constants every install sends (1DS `Client-Id: NO_AUTH`, `default`, all-zero
      ids, ENUM_WORDS): they link everyone, so they identify no one.
    """
    return _SCANNER.candidates(payload)
