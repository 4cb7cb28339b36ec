"""What the simulated app sends: one function per step of the session.

Each step sends through the running session (`Run`), which counts every planted
value per host and path for the ground truth.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from . import diagnostics, media
from . import payloads as p
from .client import Request, Sender, Sent, SimulationError
from .leaks import Plant

__all__ = [
    "Run",
    "alias",
    "app_start",
    "chat",
    "error_report",
    "exit_app",
    "first_launch",
    "heartbeat",
    "identity_broker",
    "leave",
    "login_end",
    "mark",
    "meeting_create",
    "meeting_join",
    "meetings_registered",
    "mqe",
    "mute",
    "region",
    "rtc",
    "share_start",
    "share_stop",
    "sign_in_start",
    "u2c_catalog",
    "unmute",
    "user_catalog",
    "wdm_register",
    "wdm_success",
]

METRICS = "https://metrics-a.wbx2.com/metrics/api/v1"
CLIENT_LOGS = "https://client-logs-a.wbx2.com/api/v1"
UNIFIED_TELEMETRY = "https://unified-telemetry-a.wbx2.com"
LOCUS = "https://locus-a.wbx2.com/locus/api/v1"
SENTRY = "https://o12345.ingest.sentry.io/api/4505123/envelope/"
AMPLITUDE = "https://api.amplitude.com/2/httpapi"


@dataclass(slots=True)
class Run:
    env: p.Env
    sender: Sender
    live: p.Live = field(default_factory=p.Live)
    rng: random.Random = field(default_factory=random.Random)
    planted: Counter[tuple[Plant, str, str]] = field(default_factory=Counter)
    sent: list[Sent] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    phase: str = "setup"
    spell: Callable[[str], str] = str
    """How the app spells its event names (see `respeller`)."""

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def send(self, request: Request) -> Sent:
        now = time.time()
        sent = self.sender.send(request, now)
        self.sent.append(sent)
        for plant in request.plants:
            self.planted[(plant, request.host, request.path)] += 1
        return sent

    def metrics(self, items: list[p.Item], *, prelogin: bool = False,
                query: str = "", gzip: bool = False, trigger: str | None = None) -> Sent:
        body, plants = p.metrics_body(items)
        headers: tuple[tuple[str, str], ...] = ()
        path = "/clientmetrics-prelogin" if prelogin else "/clientmetrics"
        if prelogin:
            user, header_plants = p.prelogin_user_header(self.env)
            headers = (("authorization", "false"), ("x-prelogin-userid", user))
            plants = plants + header_plants
        return self.send(Request(
            "POST", f"{METRICS}{path}{query}", self.phase, json=body, headers=headers,
            gzip=gzip, events=tuple(item.event for item in items), plants=tuple(plants),
            trigger=trigger))

    def ca(self, name: str, **kwargs: Any) -> p.Item:
        return p.ca_item(self.env, self.live, self.spell(name), time.time(), **kwargs)

    def legacy(self, name: str, **kwargs: Any) -> p.Item:
        return p.legacy_item(self.env, self.spell(name), time.time(), **kwargs)


def _service(finding_type: str, encoding: str, value_kind: str,
             location: str, event: str | None = None) -> Plant:
    return Plant("expected_service", finding_type, encoding, value_kind, location, event,
                 (finding_type,))


# --- steps ------------------------------------------------------------------


def first_launch(run: Run) -> None:
    run.live.correlation_id = run.uuid()
    marks = ()
    origin = None
    if run.env.on("mac_address"):
        origin = {"macAddress": run.env.identity.mac}
        marks = (p.Mark(("eventPayload", "origin", "clientInfo", "macAddress"), "mac_address",
                        "plain", "mac", finding_types=("mac_address", "identity_match")),)
    run.metrics([run.ca("client.webexapp.launched", origin=origin, marks=marks,
                        event={"joinTimes": {"downloadTime": 0}}),
                 run.ca("client.startup.start")], prelogin=True)


def wdm_register(run: Run) -> None:
    body = {"name": run.env.identity.device_name, "deviceType": "DESKTOP", "model": "Mac",
            "localizedModel": "Mac", "systemName": "macOS", "systemVersion": "14.5.0",
            "capabilities": {"sdpSupported": True, "groupCallSupported": True}}
    sent = run.send(Request(
        "POST", "https://wdm-a.wbx2.com/wdm/api/v1/devices?includeUpstreamServices=all",
        run.phase, purpose="service", json=body,
        plants=(_service("identity_match", "plain", "device_name", "$.name"),)))
    if isinstance(sent.reply, dict) and isinstance(sent.reply.get("url"), str):
        run.live.device_url = sent.reply["url"]
    else:
        run.live.device_url = f"https://wdm-a.wbx2.com/wdm/api/v1/devices/{run.uuid()}"
    run.sender.device_url = run.live.device_url


def wdm_success(run: Run) -> None:
    run.metrics([run.legacy("JS_SDK_WDM_REGISTRATION_SUCCESSFUL")])


def region(run: Run) -> None:
    # The reply's clientAddress is the loopback's view; the client keeps its own
    # (simulated) public address from the identity.
    run.send(Request("GET", "https://ds.ciscospark.com/v1/region", run.phase,
                     purpose="service", headers=(("spark-user-agent", ""),)))


def meetings_registered(run: Run) -> None:
    # meetings.register(): device registration, geo hint, reachability (facts sec. 3: setup)
    run.metrics([run.legacy("js_sdk_meetings_registration_success"),
                 run.legacy("js_sdk_reachability_completed",
                            fields={"trigger": "startup", "udp_reachable": 3,
                                    "tcp_reachable": 3, "xtls_reachable": 2})])


def u2c_catalog(run: Run) -> None:
    # the pre-auth catalog keyed by the e-mail's hash: the first step of sign-in
    emailhash = hashlib.sha256(run.env.identity.email.lower().encode()).hexdigest()
    query = urlencode({"format": "hostmap", "emailhash": emailhash})
    run.send(Request("GET", f"https://u2c.wbx2.com/u2c/api/v1/limited/catalog?{query}",
                     run.phase, purpose="service",
                     plants=(_service("identity_match", "sha256", "email",
                                      "query:emailhash"),)))


def sign_in_start(run: Run) -> None:
    run.metrics([run.ca("client.sign-in.start",
                        event={"loginInfo": {"loginType": "login-ci"}})], prelogin=True)


def identity_broker(run: Run) -> None:
    form = urlencode({"grant_type": "password", "username": run.env.identity.email,
                      "client_id": p.OAUTH_CLIENT_ID, "scope": "spark:all spark:kms"})
    sent = run.send(Request(
        "POST", "https://idbroker.webex.com/idb/oauth2/v1/access_token", run.phase,
        purpose="auth", content=form.encode(),
        content_type="application/x-www-form-urlencoded",
        plants=(_service("identity_match", "plain", "email", "$.username"),)))
    token = sent.reply.get("access_token") if isinstance(sent.reply, dict) else None
    run.live.token = run.sender.token = token if isinstance(token, str) else run.uuid()


def alias(run: Run) -> None:
    user, plants = p.prelogin_user_header(run.env)
    run.send(Request("POST", f"{METRICS}/clientmetrics?alias=true", run.phase, json={},
                     headers=(("x-prelogin-userid", user),), plants=tuple(plants)))


def user_catalog(run: Run) -> None:
    # the query value is also in the URL itself, percent-encoded
    sent = run.send(Request("GET", p.user_catalog_url(run.env), run.phase, purpose="service",
                            plants=(_service("identity_match", "plain", "email",
                                             "query:email"),
                                    _service("identity_match", "url", "email", "url"))))
    url, marks = p.failed_url_tag(run.env)
    # a 5xx report: an error report, whichever phase it falls in (facts sec. 3)
    run.metrics([run.legacy("web-ha", fields={"success": False},
                            tags={"action": "request", "error": f"HTTP {sent.status}",
                                  "url": url}, marks=marks)], trigger="error")


def login_end(run: Run) -> None:
    login: dict[str, Any] = {"method": "password", "emailInput": "current"}
    marks: tuple[p.Mark, ...] = ()
    if run.env.on("identity_plain"):
        login["userEmail"] = run.env.identity.email
        marks = (p.Mark(("eventPayload", "event", "loginInfo", "userEmail"), "identity_plain",
                        "plain", "email", finding_types=("identity_match", "email")),)
    run.metrics([run.ca("client.login.end", marks=marks, event={
        "loginInfo": login,
        "joinTimes": {"otherAppApiReqResp": 212, "exchangeCITokenJMT": 348}})])


def app_start(run: Run) -> None:
    run.metrics([run.ca("client.startup.end")])
    _amplitude(run, "app_launched", {"launch_method": "url-handler", "cold_start": True})


def _amplitude(run: Run, event_type: str, properties: dict[str, Any]) -> None:
    body, plants = p.amplitude_body(run.env, event_type, time.time(), properties)
    run.send(Request("POST", AMPLITUDE, run.phase, json=body, plants=tuple(plants),
                     events=(event_type,), http2=True, vendor=False))


def heartbeat(run: Run) -> None:
    device = run.live.device_url.rsplit("/", 1)[-1]
    run.metrics([run.legacy("webex.system.client.heartbeat", types=("operational",),
                            fields={"uptime_s": int(time.time() - run.marks["start"]),
                                    "device_id": device, "in_meeting": bool(run.live.locus_url)})])


def meeting_create(run: Run) -> None:
    run.metrics([run.ca("client.scheduling.initiate", event={"schedulingInfo": {
        "calendarType": "none", "meetingCategory": "scheduled", "scheduledFrom": "app"}})])
    start = time.time()
    run.send(Request("POST", "https://webexapis.com/v1/meetings", run.phase,
                     purpose="service",
                     json={"title": run.env.identity.meeting_title,
                           "start": p.iso(start + 120), "end": p.iso(start + 3720),
                           "timezone": "America/New_York", "enabledAutoRecordMeeting": False,
                           "meetingNumber": run.env.identity.meeting_id},
                     plants=(_service("meeting_title", "plain", "meeting_titles",
                                      "$.title"),
                             _service("identity_match", "plain", "meeting_ids",
                                      "$.meetingNumber"))))


def meeting_join(run: Run) -> None:
    env, live = run.env, run.live
    live.correlation_id = run.uuid()
    run.metrics([run.ca("client.meetinginfo.request")])
    run.send(Request("POST", "https://locus-a.wbx2.com/wbxappapi/v1/meetingInfo", run.phase,
                     purpose="service", json={"meetingKey": env.identity.meeting_id,
                                              "sendCAevents": True},
                     plants=(_service("identity_match", "plain", "meeting_ids",
                                      "$.meetingKey"),)))
    info: dict[str, Any] = {"meetingLookupUrl": f"{LOCUS}/loci/meetingInfo"}
    marks: tuple[p.Mark, ...] = ()
    if env.on("meeting_title"):
        info["meetingTopic"] = env.identity.meeting_title
        marks = (p.Mark(("eventPayload", "event", "eventData", "meetingTopic"), "meeting_title",
                        "plain", "meeting_titles",
                        finding_types=("meeting_title", "identity_match")),)
    run.metrics([run.ca("client.meetinginfo.response", event={"eventData": info}, marks=marks),
                 run.ca("client.call.initiated", event={
                     "trigger": "user-interaction", "isRoapCallEnabled": True,
                     "pstnAudioType": "none", "joinTimes": {"meetingInfoReqResp": 180}}),
                 run.ca("client.locus.join.request")])
    sent = run.send(Request(
        "POST", f"{LOCUS}/loci/call?alternateRedirect=true", run.phase, purpose="service",
        json={"deviceUrl": live.device_url, "usingResource": None,
              "correlationId": live.correlation_id,
              "invitee": {"address": f"wbxmn:{env.identity.meeting_id}"},
              "localMedias": [{"localSdp": json.dumps({"audioMuted": False,
                                                       "videoMuted": False})}],
              "clientMediaPreferences": {"preferTranscoding": False}},
        plants=(_service("identity_match", "plain", "meeting_ids",
                         "$.invitee.address"),)))
    locus = sent.reply.get("locus", {}) if isinstance(sent.reply, dict) else {}
    live.locus_url = locus.get("url") or f"{LOCUS}/loci/{run.uuid()}"
    live.locus_id = live.locus_url.rsplit("/", 1)[-1]
    live.participant_url = (locus.get("self") or {}).get("url") or \
        f"{live.locus_url}/participant/{run.uuid()}"
    live.locus_start = p.iso(time.time())
    live.connection_id = run.uuid()
    media = {"tx": {"audio": True, "video": True, "share": True, "share_audio": False,
                    "whiteboard": False}}
    media["rx"] = dict(media["tx"])
    run.metrics([
        run.ca("client.locus.join.response", event={
            "trigger": "loci-update", "joinTimes": {"joinReqResp": 310, "totalJmt": 1890}}),
        run.ca("client.media.capabilities", event={"mediaCapabilities": media}),
        run.ca("client.ice.start"),
        run.ca("client.ice.end", event={"icePhase": "JOIN_MEETING_FINAL",
                                        "joinTimes": {"ICESetupTime": 420}}),
        run.ca("client.media-engine.ready", event={"joinTimes": {"totalMediaJMT": 2410}}),
        run.ca("client.media.tx.start", event={"mediaType": "audio"}),
        run.ca("client.media.rx.start", event={"mediaType": "audio"}),
    ])
    run.metrics([run.legacy("js_sdk_join_success",
                            fields={"correlation_id": live.correlation_id})])
    _amplitude(run, "meeting_joined", {"meeting_type": "scheduled", "video_on": True})


def rtc(number: int) -> Callable[[Run], None]:
    def step(run: Run) -> None:
        body = media.rtc_body(run.env, run.live, number, time.time())
        run.send(Request("POST", f"{UNIFIED_TELEMETRY}/metric/v2", run.phase, json=body,
                         gzip=True, events=("rtcMetrics stats-report",),
                         headers=(("type", "webrtcMedia"), ("appId", p.RTC_APP_ID))))
    return step


def mqe(number: int) -> Callable[[Run], None]:
    def step(run: Run) -> None:
        run.metrics([media.mqe_item(run.env, run.live, number, time.time())], gzip=True)
    return step


def mute(run: Run) -> None:
    run.live.muted = True
    run.marks["mute_start"] = time.time()
    run.metrics([run.ca("client.muted", event={"trigger": "user-interaction",
                                               "mediaType": "audio"})])


def unmute(run: Run) -> None:
    run.live.muted = False
    run.marks["mute_end"] = time.time()
    run.metrics([run.ca("client.unmuted", event={"trigger": "user-interaction",
                                                 "mediaType": "audio"})])


def share_start(run: Run) -> None:
    run.live.share_instance_id = run.uuid()
    run.metrics([
        run.ca("client.share.selected-app", event={
            "shareResourceType": "APPLICATION_OR_WINDOW", "shareResourceName": p.SHARED_WINDOW}),
        run.ca("client.share.floor-grant.request", event={"mediaType": "share"}),
        run.ca("client.share.initiated", event={
            "mediaType": "share", "shareInstanceId": run.live.share_instance_id}),
    ])


def share_stop(run: Run) -> None:
    run.metrics([run.ca("client.share.stopped", event={
        "mediaType": "share", "shareInstanceId": run.live.share_instance_id})])


def chat(run: Run) -> None:
    run.send(Request(
        "POST", "https://conv-a.wbx2.com/conversation/api/v1/activities", run.phase,
        purpose="service",
        json={"verb": "post", "objectType": "activity", "clientTempId": run.uuid(),
              "object": {"objectType": "comment", "displayName": run.env.identity.chat_message},
              "target": {"objectType": "conversation", "id": run.uuid()}},
        plants=(_service("chat_message", "plain", "chat_message",
                         "$.object.displayName"),)))


def error_report(run: Run) -> None:
    marks: tuple[p.Mark, ...] = ()
    if run.env.on("stack_username"):
        marks = (p.Mark(("eventPayload", "event", "crashReport", "eventData", "crashStack"),
                        "stack_username", "plain", "username",
                        finding_types=("username", "identity_match")),)
    run.metrics([run.ca("client.crash", marks=marks, event={
        "canProceed": True,
        "crashReport": {"eventData": {"crashStack": diagnostics.crash_stack(run.env),
                                      "processName": "Webex Helper (Renderer)",
                                      "lastAction": "share.stop"}},
        "errors": [{"fatal": False, "category": "other", "errorCode": 9999,
                    "name": "other", "shownToUser": False,
                    "errorDescription": "RendererCrashed"}]})])
    body, plants = diagnostics.sentry_envelope(run.env, run.live, time.time())
    run.send(Request("POST", SENTRY, run.phase, content=body,
                     content_type="application/x-sentry-envelope", http2=True, vendor=False,
                     events=("sentry.event",), plants=tuple(plants),
                     headers=(("X-Sentry-Auth", f"Sentry sentry_key={run.env.sentry_key}, "
                               "sentry_version=7, sentry_client=sentry.native/0.7.6"),)))


def leave(run: Run) -> None:
    live = run.live
    run.send(Request("PUT", f"{live.participant_url}/leave", run.phase, purpose="service",
                     json={"deviceUrl": live.device_url, "usingResource": None}))
    run.metrics([run.ca("client.call.leave", event={
        "trigger": "user-interaction", "canProceed": False, "leaveReason": "paired-leave"})])
    filename = f"{live.locus_id}_{live.locus_start}.txt"
    sent = run.send(Request("POST", f"{CLIENT_LOGS}/logs/urls", run.phase,
                            json={"file": filename}, events=("client log upload",)))
    temp_url = sent.reply.get("tempURL") if isinstance(sent.reply, dict) else None
    if not isinstance(temp_url, str):
        raise SimulationError("log upload: the server gave no tempURL")
    start = run.marks.get("join", time.time())
    run.send(Request("PUT", temp_url, run.phase, content=diagnostics.log_file(run.env, live, start,
                                                                    time.time()),
                     content_type="text/plain", gzip=True, events=("client log upload",)))
    run.send(Request("POST", f"{CLIENT_LOGS}/logs/meta", run.phase,
                     json=diagnostics.log_meta_body(run.env, live, filename),
                     events=("client log upload",)))
    run.metrics([run.legacy("js_sdk_upload_logs_success",
                            fields={"correlation_id": live.correlation_id})])
    live.locus_url = live.locus_id = live.participant_url = ""
    live.correlation_id = run.uuid()


def exit_app(run: Run) -> None:
    run.metrics([run.ca("client.exit.app", event={"trigger": "user-interaction"})])


def mark(name: str, step: Callable[[Run], None]) -> Callable[[Run], None]:
    def marked(run: Run) -> None:
        run.marks[name] = time.time()
        step(run)
    return marked
