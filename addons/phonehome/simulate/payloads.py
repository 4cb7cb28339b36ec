"""Request bodies of a Webex-like desktop app, built from ../shared/webex facts.

Every builder is a pure function of the environment (identity, ids, leaks),
the live session state and the wall-clock time it is given. Builders return
`Item`s (one telemetry event) or bodies, with `Mark`s saying where a personal
value was placed, so the ground truth is written by the same code that plants.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
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
    "mqe_item",
    "rtc_body",
    "sentry_envelope",
    "amplitude_body",
    "log_file",
    "log_meta_body",
    "crash_stack",
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


# --- media quality (facts §5) -----------------------------------------------


def _stream_common(rng: random.Random, codec: str, bitrate: int) -> dict[str, Any]:
    return {"codec": codec, "csi": [rng.randrange(10**8, 10**9)],
            "rtpPackets": rng.randint(2800, 3100), "transmittedBitrate": bitrate,
            "receivedBitrate": bitrate, "rtpJitter": rng.randint(1, 9),
            "meanRtpJitter": round(rng.uniform(0.5, 6.0), 2),
            "rtpEndToEndLost": rng.randint(0, 4), "concealedFrames": rng.randint(0, 30)}


def _path_common(rng: random.Random, direction: str) -> dict[str, Any]:
    return {"common": {"direction": direction, "isMain": True, "multistreamEnabled": True},
            "rtpPackets": rng.randint(2800, 3100), "rtpBitrate": rng.randint(30000, 64000),
            "mediaHopByHopLost": rng.randint(0, 3), "rtpRecovered": rng.randint(0, 2),
            "maxRemoteJitter": rng.randint(5, 30), "meanRemoteJitter": rng.randint(1, 10),
            "maxRoundTripTime": rng.randint(40, 180), "meanRoundTripTime": rng.randint(20, 90),
            "maxRemoteLossRate": round(rng.uniform(0, 2), 2),
            "availableBitrate": rng.randint(800000, 2500000), "transportType": "UDP"}


def mqe_item(env: Env, live: Live, number: int, now: float) -> Item:
    """`client.mediaquality.event` for one 60 s interval.

    Speech statistics are present while unmuted (normal). While muted they are
    sent only when the `muted_audio` leak is on (background-noise levels, as in
    the PETS 2022 finding); otherwise the muted interval carries no levels.
    The full public IP goes to `peerReflexiveIP` only with `public_ip` on;
    otherwise the /28 masked prefix.
    """
    rng = random.Random(f"{env.seed}:mqe:{number}")
    marks: list[Mark] = []
    base = ("eventPayload", "event", "intervals", 0)
    public = env.on("public_ip")
    if public:
        marks.append(Mark((*base, "intervalMetadata", "peerReflexiveIP"), "public_ip", "plain",
                          "ip", finding_types=("ip_address", "identity_match")))
    audio_tx: dict[str, Any] = {"common": _path_common(rng, "sendrecv"),
                                "streams": [{"common": _stream_common(rng, "opus", 40000)}]}
    levels_allowed = not live.muted or env.on("muted_audio")
    if levels_allowed:
        loud = not live.muted
        volume = rng.randint(38, 72) if loud else rng.randint(4, 15)
        audio_tx["levels"] = {"audioMeanGain": rng.randint(10, 30), "audioMinGain": 0,
                              "audioMaxGain": rng.randint(30, 60), "audioMeanVolume": volume,
                              "audioMinVolume": max(1, volume - rng.randint(1, 4)),
                              "audioMaxVolume": volume + rng.randint(5, 20)}
        audio_tx["streams"][0]["audioAlgorithmModulesInfo"] = {
            "speechRMS": rng.randint(900, 4000) if loud else rng.randint(60, 400),
            "maxSpeechRMS": rng.randint(4000, 9000) if loud else rng.randint(400, 900),
            "avrRMS": rng.randint(300, 1500), "maxRMS": rng.randint(5000, 12000),
            "speechLength": rng.randint(20000, 45000) if loud else rng.randint(500, 4000),
            "speechQuality": rng.randint(60, 95), "noiseTotal": rng.randint(40, 400),
            "vadRetentionOnMute": 0 if loud else rng.randint(1, 30),
        }
        if live.muted:
            tx = (*base, "audioTransmit", 0)
            marks.append(Mark((*tx, "levels", "audioMeanVolume"), "muted_audio", "plain",
                              "audio_level"))
    interval = {
        "intervalNumber": number,
        "networkType": "wifi",
        "intervalMetadata": {
            "peerReflexiveIP": env.identity.ip if public else mask_prefix(env.identity.ip),
            "peripherals": [{"name": "microphone", "information": "MacBook Pro Microphone"},
                            {"name": "camera", "information": "FaceTime HD Camera"},
                            {"name": "speaker", "information": "MacBook Pro Speakers"}],
            "cpuInfo": {"numberOfCores": 10},
            "screenWidth": 3024, "screenHeight": 1964, "screenResolution": 5939136,
            "appWindowWidth": 1512, "appWindowHeight": 945, "appWindowSize": 1428840,
            "processAverageCPU": rng.randint(8, 35),
        },
        "audioTransmit": [audio_tx],
        "audioReceive": [{"common": _path_common(rng, "sendrecv"),
                          "streams": [{"common": _stream_common(rng, "opus", 38000)}]}],
        "videoTransmit": [{"common": _path_common(rng, "sendrecv"),
                           "streams": [{"common": _stream_common(rng, "H264", 1200000),
                                        "transmittedWidth": 1280, "transmittedHeight": 720,
                                        "transmittedKeyFrames": rng.randint(1, 4)}]}],
        "videoReceive": [{"common": _path_common(rng, "sendrecv"),
                          "streams": [{"common": {**_stream_common(rng, "H264", 900000),
                                                  "receivedFrameRate": 30},
                                       "receivedWidth": 1280, "receivedHeight": 720,
                                       "isActiveSpeaker": bool(rng.getrandbits(1))}]}],
    }
    event = {
        "callingServiceType": "LOCUS",
        "meetingJoinInfo": {"clientSignallingProtocol": "WebRTC"},
        "sourceMetadata": {"applicationSoftwareType": "webex-desktop",
                           "applicationSoftwareVersion": APP_VERSION,
                           "mediaEngineSoftwareType": "WME",
                           "mediaEngineSoftwareVersion": "23.10.1.5",
                           "startTime": live.locus_start},
        "intervals": [interval],
    }
    return ca_item(env, live, "client.mediaquality.event", now, event=event, marks=marks)


# --- rtcMetrics (facts §7) --------------------------------------------------


def rtc_body(env: Env, live: Live, number: int, now: float) -> dict[str, Any]:
    """A `stats-report` for unifiedTelemetry /metric/v2; candidate IPs are masked."""
    rng = random.Random(f"{env.seed}:rtc:{number}")
    stamp = now * 1000
    stats = [
        {"type": "local-candidate", "id": "ILc1", "timestamp": stamp,
         "address": mask_prefix(env.local_ip), "ip": mask_prefix(env.local_ip),
         "port": 52000 + number, "protocol": "udp", "candidateType": "host"},
        {"type": "local-candidate", "id": "ILc2", "timestamp": stamp,
         "address": mask_prefix(env.identity.ip), "ip": mask_prefix(env.identity.ip),
         "relatedAddress": mask_prefix(env.local_ip), "port": 52100 + number,
         "protocol": "udp", "candidateType": "srflx"},
        {"type": "remote-candidate", "id": "IRc1", "timestamp": stamp,
         "address": "170.72.231.0", "ip": "170.72.231.0", "port": 5004,
         "protocol": "udp", "candidateType": "host"},
        {"type": "candidate-pair", "id": "CP1", "timestamp": stamp, "state": "succeeded",
         "nominated": True, "currentRoundTripTime": round(rng.uniform(0.02, 0.09), 3),
         "availableOutgoingBitrate": rng.randint(1_000_000, 3_000_000),
         "bytesSent": rng.randint(10**6, 10**8), "bytesReceived": rng.randint(10**6, 10**8)},
        {"type": "inbound-rtp", "id": "IT01A", "timestamp": stamp, "kind": "audio",
         "packetsReceived": rng.randint(1000, 90000), "packetsLost": rng.randint(0, 40),
         "jitter": round(rng.uniform(0.001, 0.02), 4)},
        {"type": "outbound-rtp", "id": "OT01V", "timestamp": stamp, "kind": "video",
         "packetsSent": rng.randint(1000, 90000), "framesPerSecond": 30,
         "frameWidth": 1280, "frameHeight": 720},
    ]
    return {"metrics": [{
        "type": "webrtc",
        "version": "1.1.0",
        "userId": env.user_id,
        "correlationId": live.correlation_id,
        "connectionId": live.connection_id,
        "meetingId": env.sdk_meeting_id,
        "data": [{"name": "stats-report", "payload": [json.dumps(stats)]}],
    }]}


# --- errors -----------------------------------------------------------------


def _user_dir(env: Env) -> str:
    if env.on("stack_username"):
        return f"/Users/{env.identity.username}/Library/Application Support/Cisco Spark"
    return "/Applications/Webex.app/Contents/Resources"


def crash_stack(env: Env) -> str:
    """A native crash stack; the plug-in path names the user only with stack_username on."""
    return "\n".join((
        "Exception Type: EXC_BAD_ACCESS (SIGSEGV)",
        "Thread 14 Crashed:: MediaSessionWorker",
        "0   libwme.dylib            0x000000010b2f4c8 wme::AudioDeviceManager::OnDeviceChanged()",
        "1   libwme.dylib            0x000000010b2e1a0 wme::CAudioEngine::Restart(bool) + 212",
        f"2   libsparkplugin.dylib    {_user_dir(env)}/plugins/libsparkplugin.dylib + 4410",
        "3   libdispatch.dylib       0x00000001a3c1e5c _dispatch_call_block_and_release + 32",
    ))


def sentry_envelope(env: Env, live: Live, now: float) -> tuple[bytes, list[Plant]]:
    """A Sentry envelope (header, item header, event) for a third-party crash host.

    Locations index the envelope's lines: `$[2]` is the event.
    """
    rng = random.Random(f"{env.seed}:sentry")
    event_id = f"{rng.getrandbits(128):032x}"
    frames = [
        {"function": "OnDeviceChanged", "module": "wme::AudioDeviceManager",
         "abs_path": "/Applications/Webex.app/Contents/Frameworks/libwme.dylib",
         "lineno": 812, "in_app": True},
        {"function": "plugin_dispatch", "module": "libsparkplugin",
         "abs_path": f"{_user_dir(env)}/plugins/libsparkplugin.dylib",
         "lineno": 4410, "in_app": False},
    ]
    plants: list[Plant] = []
    event: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": now,
        "platform": "native",
        "level": "error",
        "release": f"webex-desktop@{APP_VERSION}",
        "environment": "production",
        "exception": {"values": [{"type": "EXC_BAD_ACCESS", "value": "SIGSEGV",
                                  "stacktrace": {"frames": frames}}]},
        "user": {"id": env.user_id, "ip_address": "{{auto}}"},
        "contexts": {"os": {"name": "macOS", "version": "14.5.0"},
                     "app": {"app_version": APP_VERSION}},
        "tags": {"correlation_id": live.correlation_id},
    }
    if env.on("stack_username"):
        plants.append(Plant("stack_username", "username", "plain", "username",
                            jsonpath(2, "exception", "values", 0, "stacktrace", "frames", 1,
                                     "abs_path"), "sentry.event",
                            ("username", "identity_match")))
    if env.on("identity_plain"):
        # Sentry SDKs send the machine's host name as server_name by default.
        event["server_name"] = env.identity.hostname
        plants.append(Plant("identity_plain", "identity_match", "plain", "hostname",
                            jsonpath(2, "server_name"), "sentry.event",
                            ("identity_match", "hostname")))
    payload = json.dumps(event, separators=(",", ":")).encode()
    lines = [
        json.dumps({"event_id": event_id, "sent_at": iso(now),
                    "dsn": f"https://{env.sentry_key}@o12345.ingest.sentry.io/4505123"}),
        json.dumps({"type": "event", "content_type": "application/json",
                    "length": len(payload)}),
    ]
    return "\n".join(lines).encode() + b"\n" + payload + b"\n", plants


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


# --- logs -------------------------------------------------------------------


def log_file(env: Env, live: Live, start: float, end: float) -> bytes:
    """The uploaded SDK log: ids and URLs, no personal values."""
    rng = random.Random(f"{env.seed}:log")
    lines = []
    when = start
    messages = (
        f"Meeting:index#join --> joined locus {live.locus_url}",
        f"MediaProperties --> connection {live.connection_id} ice state connected",
        "StatsAnalyzer --> MQA interval sent",
        "Meeting:index#mute --> audio muted=true",
        "Meeting:index#mute --> audio muted=false",
        "Meeting:index#share --> share started",
        "Meeting:index#share --> share stopped",
        f"Meeting:index#leave --> leaving {live.locus_id}",
    )
    for message in messages:
        when += rng.uniform(1, (end - start) / len(messages))
        lines.append(f"{iso(when)} [INFO] wx-js-sdk: {message} "
                     f"trackingid={env.session_id}_{rng.randint(1, 500)}")
    return ("\n".join(lines) + "\n").encode()


def log_meta_body(env: Env, live: Live, filename: str) -> dict[str, Any]:
    data = {"locusId": live.locus_id, "callStart": live.locus_start,
            "feedbackId": live.correlation_id, "correlationId": live.correlation_id,
            "locussessionid": live.locus_id, "autoupload": "true",
            "trackingId": env.session_id, "appVersion": APP_VERSION}
    return {"filename": filename, "data": [{"key": k, "value": v} for k, v in data.items()],
            "userId": env.user_id, "orgId": env.org_id}
