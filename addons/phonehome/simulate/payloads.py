"""Request bodies of a Webex-like desktop app, built from ../shared/webex facts.

Every builder is a pure function of the environment (identity, ids, leaks), the live
session and the time it is given; `Mark`s say where a personal value is placed, so the
ground truth is written by the same code that plants.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .identity import SyntheticIdentity
from .leaks import LEAK_FINDING_TYPES, Plant, jsonpath

__all__ = [
    "APP_VERSION",
    "SDK_VERSION",
    "OAUTH_CLIENT_ID",
    "RTC_APP_ID",
    "SHARED_WINDOW",
    "Env",
    "Live",
    "Mark",
    "Item",
    "make_env",
    "mask_prefix",
    "iso",
    "ca_item",
    "legacy_item",
    "metrics_body",
    "amplitude_body",
    "prelogin_user_header",
    "user_catalog_url",
    "failed_url_tag",
]

APP_VERSION = "44.10.0.30906"
SDK_VERSION = "3.4.0"
RTC_APP_ID = "FFB51ED5-4319-4C55-8303-B1F2FCCDE231"  # facts §1 (rtcMetrics headers)
OAUTH_CLIENT_ID = "C64ab04639eefee4798f58e7bc3fe01d47161be0d97ff0d31e040a6ffe66d7f0a"
SHARED_WINDOW = "Microsoft PowerPoint"
"""The shared window's name: an application name, no file name, so not content."""


@dataclass(frozen=True, slots=True)
class Env:
    """Everything fixed for one run: who, which ids, which leaks."""

    seed: int
    identity: SyntheticIdentity
    leaks: frozenset[str]
    user_id: str
    org_id: str
    machine_id: str
    session_id: str
    prelogin_id: str
    local_ip: str
    site_name: str
    conference_id: str
    global_meeting_id: str
    sdk_meeting_id: str
    amplitude_key: str
    sentry_key: str

    def on(self, leak: str) -> bool:
        return leak in self.leaks


@dataclass(slots=True)
class Live:
    """What the session learnt so far (from replies) and its current state."""

    device_url: str = ""
    token: str = ""
    correlation_id: str = ""
    locus_url: str = ""
    locus_id: str = ""
    participant_url: str = ""
    locus_start: str = ""
    share_instance_id: str = ""
    connection_id: str = ""
    muted: bool = False
    tracking_seq: int = 0


@dataclass(frozen=True, slots=True)
class Mark:
    """A personal value placed at `parts`, relative to its item (or body)."""

    parts: tuple[str | int, ...]
    leak: str
    encoding: str
    value_kind: str
    finding_type: str = ""
    finding_types: tuple[str, ...] = ()

    def plant(self, location: str, event: str | None) -> Plant:
        finding_type = self.finding_type or LEAK_FINDING_TYPES[self.leak]
        types = self.finding_types or (finding_type,)
        return Plant(self.leak, finding_type, self.encoding, self.value_kind, location, event,
                     types)


@dataclass(frozen=True, slots=True)
class Item:
    """One telemetry event inside a `{"metrics": [...]}` batch."""

    data: dict[str, Any]
    event: str
    marks: tuple[Mark, ...] = field(default=())


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def mask_prefix(address: str) -> str:
    """ip-anonymize(ip, 28, 96) as in the SDK: IPv4 /28, IPv6 /96 (facts §2)."""
    ip = ipaddress.ip_address(address)
    bits = 28 if ip.version == 4 else 96
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False).network_address)


def make_env(seed: int, identity: SyntheticIdentity, leaks: frozenset[str]) -> Env:
    rng = random.Random(f"phonehome-sim:{seed}")
    company = identity.email.split("@")[1].split(".")[0]
    return Env(
        seed=seed,
        identity=identity,
        leaks=leaks,
        user_id=_uuid(rng),
        org_id=_uuid(rng),
        machine_id=_uuid(rng),
        session_id=f"webex-desktop_{_uuid(rng)}",
        prelogin_id=_uuid(rng),
        local_ip=f"192.168.{rng.randint(0, 9)}.{rng.randint(17, 250)}",
        site_name=f"{company}.webex.com",
        conference_id=str(rng.randint(10**17, 10**18 - 1)),
        global_meeting_id=f"{rng.getrandbits(128):032X}",
        sdk_meeting_id=_uuid(rng),
        amplitude_key=f"{rng.getrandbits(128):032x}",
        sentry_key=f"{rng.getrandbits(128):032x}",
    )


def iso(when: float) -> str:
    stamp = dt.datetime.fromtimestamp(when, dt.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- Call Analyzer diagnostic events (facts §2) -------------------------------


def _origin(env: Env, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    client_info = {
        "clientType": "TEAMS_CLIENT",
        "subClientType": "DESKTOP_APP",
        "clientVersion": APP_VERSION,
        "majorVersion": 44,
        "minorVersion": 10,
        "os": "mac",
        "osVersion": "14.5.0",
        "browser": "electron",
        "browserVersion": "30.1.2",
        "publicNetworkPrefix": mask_prefix(env.identity.ip),
        "localNetworkPrefix": mask_prefix(env.local_ip),
        "clientLaunchMethod": "url-handler",
    }
    client_info.update(extra or {})
    return {
        "name": "endpoint",
        "networkType": "wifi",
        "buildType": "prod",
        "upgradeChannel": "gold",
        "userAgent": f"webex-js-sdk/production-{SDK_VERSION} (browser=electron/30; "
                     f"client=webex-desktop/{APP_VERSION}; os=mac/14)",
        "clientInfo": client_info,
    }


def _identifiers(env: Env, live: Live) -> dict[str, Any]:
    ids: dict[str, Any] = {"correlationId": live.correlation_id, "machineId": env.machine_id}
    if live.token:
        ids.update(userId=env.user_id, orgId=env.org_id)
    if live.device_url:
        ids["deviceId"] = live.device_url
    if live.locus_url:
        ids.update(
            locusUrl=live.locus_url,
            locusId=live.locus_id,
            locusStartTime=live.locus_start,
            webexConferenceIdStr=env.conference_id,
            globalMeetingId=env.global_meeting_id,
            webexSiteName=env.site_name,
            mediaAgentAlias="mse-sjc-3",
            mediaAgentGroupId="sjc-group-1",
        )
    return ids


def ca_item(env: Env, live: Live, name: str, now: float, *,
            event: dict[str, Any] | None = None, origin: dict[str, Any] | None = None,
            marks: Sequence[Mark] = ()) -> Item:
    """One `{"eventPayload": …, "type": ["diagnostic-event"]}` metric."""
    body_event: dict[str, Any] = {
        "name": name,
        "canProceed": True,
        "identifiers": _identifiers(env, live),
        "userType": "host",
        "loginType": "login-ci" if live.token else "unverified-guest",
        "isConvergedArchitectureEnabled": True,
        "webexSubServiceType": "ScheduledMeeting" if live.locus_url else None,
    }
    body_event.update(event or {})
    body_event = {k: v for k, v in body_event.items() if v is not None}
    data = {
        "eventPayload": {
            "eventId": str(uuid.UUID(bytes=hashlib.sha256(
                f"{env.seed}:{name}:{now}".encode()).digest()[:16], version=4)),
            "version": 1,
            "origin": _origin(env, origin),
            "originTime": {"triggered": iso(now), "sent": iso(now)},
            "senderCountryCode": "US",
            "event": body_event,
        },
        "type": ["diagnostic-event"],
    }
    return Item(data, name, tuple(marks))


def legacy_item(env: Env, name: str, now: float, *, fields: dict[str, Any] | None = None,
                tags: dict[str, Any] | None = None, types: Sequence[str] = (
                    "behavioral", "operational"), marks: Sequence[Mark] = ()) -> Item:
    """A legacy `metricName` client metric (facts §6)."""
    data = {
        "metricName": name,
        "tags": {"browser": "electron", "os": "mac", "appVersion": APP_VERSION,
                 "domain": "desktop", **(tags or {})},
        "fields": {"browser_version": "30.1.2", "os_version": "14.5.0",
                   "sdk_version": SDK_VERSION, "platform": "Desktop",
                   "spark_user_agent": f"webex-desktop/{APP_VERSION} (mac)",
                   "client_id": OAUTH_CLIENT_ID, **(fields or {})},
        "type": list(types),
        "context": {"app": {"version": APP_VERSION}, "locale": "en-US",
                    "os": {"name": "mac", "version": "14.5.0"}},
        "timestamp": int(now * 1000),
    }
    return Item(data, name, tuple(marks))


def metrics_body(items: Sequence[Item]) -> tuple[dict[str, Any], list[Plant]]:
    """The batch `{"metrics": [...]}` and every value planted in it, located."""
    plants = [mark.plant(jsonpath("metrics", index, *mark.parts), item.event)
              for index, item in enumerate(items) for mark in item.marks]
    return {"metrics": [item.data for item in items]}, plants


# --- third-party analytics --------------------------------------------------


def amplitude_body(env: Env, event_type: str, now: float,
                   properties: dict[str, Any]) -> tuple[dict[str, Any], list[Plant]]:
    """Amplitude HTTP API v2; `user_id` is sha256(email) only with identity_hashed on."""
    hashed = env.on("identity_hashed")
    user_id = hashlib.sha256(env.identity.email.lower().encode()).hexdigest() if hashed \
        else env.user_id
    body = {"api_key": env.amplitude_key, "events": [{
        "user_id": user_id,
        "device_id": env.machine_id,
        "event_type": event_type,
        "time": int(now * 1000),
        "insert_id": str(uuid.UUID(bytes=hashlib.sha256(
            f"{env.seed}:{event_type}".encode()).digest()[:16], version=4)),
        "platform": "macOS", "os_name": "macOS", "os_version": "14.5.0",
        "app_version": APP_VERSION, "language": "en-US", "ip": "$remote",
        "event_properties": properties,
    }]}
    plants = [Plant("identity_hashed", "identity_match", "sha256", "email",
                    jsonpath("events", 0, "user_id"), event_type, ("identity_match",))
              ] if hashed else []
    return body, plants


# --- sign-in ----------------------------------------------------------------


def prelogin_user_header(env: Env) -> tuple[str, list[Plant]]:
    """`x-prelogin-userid`: a random id, or base64(email) with identity_base64 on."""
    if env.on("identity_base64"):
        value = base64.b64encode(env.identity.email.encode()).decode("ascii")
        return value, [Plant("identity_base64", "identity_match", "base64", "email",
                             "header:x-prelogin-userid", None, ("identity_match",))]
    return env.prelogin_id, []


def user_catalog_url(env: Env) -> str:
    """The U2C user-catalog lookup by email (service traffic)."""
    return ("https://u2c.wbx2.com/u2c/api/v1/user/catalog?"
            + urlencode({"format": "hostmap", "email": env.identity.email}))


def failed_url_tag(env: Env) -> tuple[str, tuple[Mark, ...]]:
    """`web-ha`'s `tags.url`: the full failing URI, or its path only with identity_url off."""
    if env.on("identity_url"):
        return user_catalog_url(env), (Mark(("tags", "url"), "identity_url", "url", "email",
                                            finding_types=("identity_match",)),)
    return user_catalog_url(env).split("?")[0], ()
