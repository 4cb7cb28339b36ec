"""What the vendor stand-in answers: plausible JSON for the Webex endpoints the simulator calls.

`route` is pure: the same request always gets the same reply.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Reply", "route"]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any = None
    """JSON-safe data, or None for an empty body."""


def _stable_id(*parts: str) -> str:
    """A UUID derived from the request, so identical runs get identical answers."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _catalog() -> dict[str, Any]:
    links = {
        "metrics": "https://metrics-a.wbx2.com/metrics/api/v1",
        "clientLogs": "https://client-logs-a.wbx2.com/api/v1",
        # The real unifiedTelemetry host is not public; this name is made up.
        "unifiedTelemetry": "https://unified-telemetry-a.wbx2.com",
        "locus": "https://locus-a.wbx2.com/locus/api/v1",
        "conversation": "https://conv-a.wbx2.com/conversation/api/v1",
        "wdm": "https://wdm-a.wbx2.com/wdm/api/v1",
        "hydra": "https://webexapis.com/v1",
        "idbroker": "https://idbroker.webex.com/idb",
    }
    return {
        "serviceLinks": links,
        "services": [
            {"serviceName": name, "serviceUrls": [{"baseUrl": url, "priority": 1}]}
            for name, url in links.items()
        ],
        # The Webex JS SDK reads each service's hosts from here (webex-core services.js).
        "hostCatalog": {
            urlsplit(url).hostname: [{"host": urlsplit(url).hostname, "ttl": -1, "priority": 5,
                                      "id": f"urn:TEAM:us-east-2_a:{name}"}]
            for name, url in links.items()
        },
        "format": "hostmap",
    }


def _wdm_register(host: str, path: str, body: bytes) -> Reply:
    device_id = _stable_id("device", hashlib.sha256(body).hexdigest())
    return Reply(200, {
        "url": f"https://{host}/wdm/api/v1/devices/{device_id}",
        "webSocketUrl": f"wss://mercury-connection-a.wbx2.com/v1/apps/wx2/registrations/"
                        f"{device_id}/messages",
        "userId": _stable_id("user", device_id),
        "deviceType": "DESKTOP",
        "services": _catalog()["serviceLinks"],
        "intranetInactivityDuration": 1800,
    })


def _region(host: str, path: str, body: bytes) -> Reply:
    # The loopback peer is all this server can see; answer a documentation address.
    return Reply(200, {
        "clientAddress": "192.0.2.10",
        "clientRegion": "US-EAST",
        "countryCode": "US",
        "regionCode": "US-EAST",
        "timezone": "America/New_York",
    })


def _token(host: str, path: str, body: bytes) -> Reply:
    seed = hashlib.sha256(body).hexdigest()
    return Reply(200, {
        "access_token": hashlib.sha256(("access" + seed).encode()).hexdigest() * 2,
        "refresh_token": hashlib.sha256(("refresh" + seed).encode()).hexdigest(),
        "token_type": "Bearer",
        "expires_in": 1209599,
        "refresh_token_expires_in": 5183999,
    })


def _user_catalog(host: str, path: str, body: bytes) -> Reply:
    # Answers 503 on purpose: the client falls back to the limited catalog and
    # reports the failure (`web-ha`), as the Webex SDK does on 5xx.
    return Reply(503, {"message": "Service Unavailable", "errors": [{"errorCode": 100001}]})


def _meeting_create(host: str, path: str, body: bytes) -> Reply:
    request = _json_or_empty(body)
    meeting_id = _stable_id("meeting", hashlib.sha256(body).hexdigest()).replace("-", "")
    return Reply(200, {
        "id": meeting_id,
        "title": request.get("title", ""),
        "meetingNumber": request.get("meetingNumber", ""),
        "webLink": f"https://{host.split('.')[0]}.webex.com/meet/{meeting_id[:12]}",
        "state": "active",
    })


def _locus_join(host: str, path: str, body: bytes) -> Reply:
    locus_id = _stable_id("locus", hashlib.sha256(body).hexdigest())
    participant = _stable_id("participant", locus_id)
    return Reply(200, {
        "locus": {
            "url": f"https://{host}/locus/api/v1/loci/{locus_id}",
            "fullState": {"state": "ACTIVE", "type": "MEETING"},
            "self": {"id": participant, "state": "JOINED",
                     "url": f"https://{host}/locus/api/v1/loci/{locus_id}/participant/{participant}"},
        },
        "mediaConnections": [{"mediaId": _stable_id("media", locus_id),
                              "remoteSdp": json.dumps({"type": "SDP", "sdps": ["v=0"]})}],
    })


def _locus_leave(host: str, path: str, body: bytes) -> Reply:
    return Reply(200, {"locus": {"fullState": {"state": "INACTIVE"}}})


def _logs_urls(host: str, path: str, body: bytes) -> Reply:
    request = _json_or_empty(body)
    upload = _stable_id("upload", hashlib.sha256(body).hexdigest())
    prefix = path[: path.index("/logs/urls")]
    return Reply(200, {
        "tempURL": f"https://{host}{prefix}/logs/upload/{upload}?sig={upload[:8]}",
        "logFilename": request.get("file", "client.log"),
        "userId": request.get("userId", ""),
    })


def _sentry(host: str, path: str, body: bytes) -> Reply:
    first_line = body.split(b"\n", 1)[0]
    return Reply(200, {"id": _json_or_empty(first_line).get("event_id", "")})


def _amplitude(host: str, path: str, body: bytes) -> Reply:
    events = _json_or_empty(body).get("events", [])
    return Reply(200, {"code": 200, "events_ingested": len(events),
                       "payload_size_bytes": len(body)})


def _conversation(host: str, path: str, body: bytes) -> Reply:
    return Reply(200, {"id": _stable_id("activity", hashlib.sha256(body).hexdigest()),
                       "verb": "post"})


_Handler = Callable[[str, str, bytes], Reply]

# (method or "*", compiled path pattern, handler); the first match wins.
_ROUTES: tuple[tuple[str, re.Pattern[str], _Handler], ...] = tuple(
    (method, re.compile(pattern), handler)
    for method, pattern, handler in (
        ("POST", r"/wdm/api/v1/devices/?$", _wdm_register),
        ("GET", r"^/v1/region/?$", _region),
        ("GET", r"^/u2c/api/v1/user/catalog/?$", _user_catalog),
        ("GET", r"^/u2c/api/v1/(limited/)?catalog/?$", lambda h, p, b: Reply(200, _catalog())),
        ("POST", r"/oauth2/v1/access_token/?$", _token),
        ("POST", r"^/v1/meetings/?$", _meeting_create),
        ("POST", r"/locus/api/v1/loci/call/?$", _locus_join),
        ("PUT", r"/locus/api/v1/loci/[^/]+/participant/[^/]+/leave/?$", _locus_leave),
        ("POST", r"/logs/urls/?$", _logs_urls),
        ("POST", r"^/api/[^/]+/envelope/?$", _sentry),
        ("POST", r"^/2/httpapi/?$", _amplitude),
        ("POST", r"/conversation/api/v1/activities/?$", _conversation),
    )
)


def route(method: str, host: str, path: str, body: bytes) -> Reply:
    """The reply for one request. Pure: the same request gets the same reply."""
    for want, pattern, handler in _ROUTES:
        if want in ("*", method) and pattern.search(path):
            return handler(host, path, body)
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        return Reply(204)
    return Reply(200, {})


def _json_or_empty(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
