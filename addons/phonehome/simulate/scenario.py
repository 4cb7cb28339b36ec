"""A whole meeting-app session as a timeline, and `simulate()` that plays it.

The timeline spans about 25 simulated minutes; `speed` divides every wait,
so the order and relative intervals stay the same at any speed:

    0 s     setup       first launch, device and meetings registration, region lookup
    5 s     sign_in     pre-login events, U2C catalog, identity broker, alias, login.end
    12 s    app_start   startup.end, third-party analytics
    60 s    periodic    heartbeats every 60 s
    280 s   meeting_create, 300 s meeting_join (locus join)
    306 s   in_meeting  rtcMetrics every 30 s, MQE every 60 s, mute 470-700 s
    760 s   screen_share until 900 s; 950 s chat; 1000 s error report
    1230 s  meeting_leave with the log upload
    1290 s  periodic    idle heartbeats
    1500 s  shutdown    client.exit.app
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

from . import payloads as p
from .client import Request, Sender, Sent, SimulationError
from .identity import make_identity, write_identity
from .leaks import ALL_LEAKS, Plant, parse_leaks

__all__ = [
    "SimulationResult",
    "SimulationError",
    "Step",
    "TIMELINE",
    "SESSION_SECONDS",
    "MUTE_START",
    "MUTE_END",
    "GROUND_TRUTH_SCHEMA",
    "extra_steps",
    "play_timeline",
    "simulate",
]

GROUND_TRUTH_SCHEMA = "phonehome.simulate.ground_truth/1"
METRICS = "https://metrics-a.wbx2.com/metrics/api/v1"
CLIENT_LOGS = "https://client-logs-a.wbx2.com/api/v1"
UNIFIED_TELEMETRY = "https://unified-telemetry-a.wbx2.com"
LOCUS = "https://locus-a.wbx2.com/locus/api/v1"
SENTRY = "https://o12345.ingest.sentry.io/api/4505123/envelope/"
AMPLITUDE = "https://api.amplitude.com/2/httpapi"

JOIN_AT, LEAVE_AT = 300.0, 1230.0
MUTE_START, MUTE_END = 470.0, 700.0
SHARE_START, SHARE_END = 760.0, 900.0
SESSION_SECONDS = 1500.0


@dataclass(frozen=True, slots=True)
class SimulationResult:
    out_dir: Path
    identity_path: Path
    ground_truth_path: Path
    requests: int
    requests_by_host: Mapping[str, int]
    statuses: Mapping[int, int]
    mute_window: tuple[float, float] | None
    """Wall-clock (epoch) times the client.muted and client.unmuted events were sent."""
    started: float
    finished: float
    seed: int
    speed: float
    leaks: tuple[str, ...]


# --- the running session ------------------------------------------------------


@dataclass(slots=True)
class _Run:
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


def _first_launch(run: _Run) -> None:
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


def _wdm_register(run: _Run) -> None:
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


def _wdm_success(run: _Run) -> None:
    run.metrics([run.legacy("JS_SDK_WDM_REGISTRATION_SUCCESSFUL")])


def _region(run: _Run) -> None:
    # The reply's clientAddress is the loopback's view; the client keeps its own
    # (simulated) public address from the identity.
    run.send(Request("GET", "https://ds.ciscospark.com/v1/region", run.phase,
                     purpose="service", headers=(("spark-user-agent", ""),)))


def _meetings_registered(run: _Run) -> None:
    # meetings.register(): device registration, geo hint, reachability (facts sec. 3: setup)
    run.metrics([run.legacy("js_sdk_meetings_registration_success"),
                 run.legacy("js_sdk_reachability_completed",
                            fields={"trigger": "startup", "udp_reachable": 3,
                                    "tcp_reachable": 3, "xtls_reachable": 2})])


def _u2c_catalog(run: _Run) -> None:
    # the pre-auth catalog keyed by the e-mail's hash: the first step of sign-in
    emailhash = hashlib.sha256(run.env.identity.email.lower().encode()).hexdigest()
    query = urlencode({"format": "hostmap", "emailhash": emailhash})
    run.send(Request("GET", f"https://u2c.wbx2.com/u2c/api/v1/limited/catalog?{query}",
                     run.phase, purpose="service",
                     plants=(_service("identity_match", "sha256", "email",
                                      "query:emailhash"),)))


def _sign_in_start(run: _Run) -> None:
    run.metrics([run.ca("client.sign-in.start",
                        event={"loginInfo": {"loginType": "login-ci"}})], prelogin=True)


def _identity_broker(run: _Run) -> None:
    form = urlencode({"grant_type": "password", "username": run.env.identity.email,
                      "client_id": p.OAUTH_CLIENT_ID, "scope": "spark:all spark:kms"})
    sent = run.send(Request(
        "POST", "https://idbroker.webex.com/idb/oauth2/v1/access_token", run.phase,
        purpose="auth", content=form.encode(),
        content_type="application/x-www-form-urlencoded",
        plants=(_service("identity_match", "plain", "email", "$.username"),)))
    token = sent.reply.get("access_token") if isinstance(sent.reply, dict) else None
    run.live.token = run.sender.token = token if isinstance(token, str) else run.uuid()


def _alias(run: _Run) -> None:
    user, plants = p.prelogin_user_header(run.env)
    run.send(Request("POST", f"{METRICS}/clientmetrics?alias=true", run.phase, json={},
                     headers=(("x-prelogin-userid", user),), plants=tuple(plants)))


def _user_catalog(run: _Run) -> None:
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


def _login_end(run: _Run) -> None:
    login: dict[str, Any] = {"method": "password", "emailInput": "current"}
    marks: tuple[p.Mark, ...] = ()
    if run.env.on("identity_plain"):
        login["userEmail"] = run.env.identity.email
        marks = (p.Mark(("eventPayload", "event", "loginInfo", "userEmail"), "identity_plain",
                        "plain", "email", finding_types=("identity_match", "email")),)
    run.metrics([run.ca("client.login.end", marks=marks, event={
        "loginInfo": login,
        "joinTimes": {"otherAppApiReqResp": 212, "exchangeCITokenJMT": 348}})])


def _app_start(run: _Run) -> None:
    run.metrics([run.ca("client.startup.end")])
    _amplitude(run, "app_launched", {"launch_method": "url-handler", "cold_start": True})


def _amplitude(run: _Run, event_type: str, properties: dict[str, Any]) -> None:
    body, plants = p.amplitude_body(run.env, event_type, time.time(), properties)
    run.send(Request("POST", AMPLITUDE, run.phase, json=body, plants=tuple(plants),
                     events=(event_type,), http2=True, vendor=False))


def _heartbeat(run: _Run) -> None:
    device = run.live.device_url.rsplit("/", 1)[-1]
    run.metrics([run.legacy("webex.system.client.heartbeat", types=("operational",),
                            fields={"uptime_s": int(time.time() - run.marks["start"]),
                                    "device_id": device, "in_meeting": bool(run.live.locus_url)})])


def _meeting_create(run: _Run) -> None:
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


def _meeting_join(run: _Run) -> None:
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


def _rtc(number: int) -> Callable[[_Run], None]:
    def step(run: _Run) -> None:
        body = p.rtc_body(run.env, run.live, number, time.time())
        run.send(Request("POST", f"{UNIFIED_TELEMETRY}/metric/v2", run.phase, json=body,
                         gzip=True, events=("rtcMetrics stats-report",),
                         headers=(("type", "webrtcMedia"), ("appId", p.RTC_APP_ID))))
    return step


def _mqe(number: int) -> Callable[[_Run], None]:
    def step(run: _Run) -> None:
        run.metrics([p.mqe_item(run.env, run.live, number, time.time())], gzip=True)
    return step


def _mute(run: _Run) -> None:
    run.live.muted = True
    run.marks["mute_start"] = time.time()
    run.metrics([run.ca("client.muted", event={"trigger": "user-interaction",
                                               "mediaType": "audio"})])


def _unmute(run: _Run) -> None:
    run.live.muted = False
    run.marks["mute_end"] = time.time()
    run.metrics([run.ca("client.unmuted", event={"trigger": "user-interaction",
                                                 "mediaType": "audio"})])


def _share_start(run: _Run) -> None:
    run.live.share_instance_id = run.uuid()
    run.metrics([
        run.ca("client.share.selected-app", event={
            "shareResourceType": "APPLICATION_OR_WINDOW", "shareResourceName": p.SHARED_WINDOW}),
        run.ca("client.share.floor-grant.request", event={"mediaType": "share"}),
        run.ca("client.share.initiated", event={
            "mediaType": "share", "shareInstanceId": run.live.share_instance_id}),
    ])


def _share_stop(run: _Run) -> None:
    run.metrics([run.ca("client.share.stopped", event={
        "mediaType": "share", "shareInstanceId": run.live.share_instance_id})])


def _chat(run: _Run) -> None:
    run.send(Request(
        "POST", "https://conv-a.wbx2.com/conversation/api/v1/activities", run.phase,
        purpose="service",
        json={"verb": "post", "objectType": "activity", "clientTempId": run.uuid(),
              "object": {"objectType": "comment", "displayName": run.env.identity.chat_message},
              "target": {"objectType": "conversation", "id": run.uuid()}},
        plants=(_service("chat_message", "plain", "chat_message",
                         "$.object.displayName"),)))


def _error_report(run: _Run) -> None:
    marks: tuple[p.Mark, ...] = ()
    if run.env.on("stack_username"):
        marks = (p.Mark(("eventPayload", "event", "crashReport", "eventData", "crashStack"),
                        "stack_username", "plain", "username",
                        finding_types=("username", "identity_match")),)
    run.metrics([run.ca("client.crash", marks=marks, event={
        "canProceed": True,
        "crashReport": {"eventData": {"crashStack": p.crash_stack(run.env),
                                      "processName": "Webex Helper (Renderer)",
                                      "lastAction": "share.stop"}},
        "errors": [{"fatal": False, "category": "other", "errorCode": 9999,
                    "name": "other", "shownToUser": False,
                    "errorDescription": "RendererCrashed"}]})])
    body, plants = p.sentry_envelope(run.env, run.live, time.time())
    run.send(Request("POST", SENTRY, run.phase, content=body,
                     content_type="application/x-sentry-envelope", http2=True, vendor=False,
                     events=("sentry.event",), plants=tuple(plants),
                     headers=(("X-Sentry-Auth", f"Sentry sentry_key={run.env.sentry_key}, "
                               "sentry_version=7, sentry_client=sentry.native/0.7.6"),)))


def _leave(run: _Run) -> None:
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
    run.send(Request("PUT", temp_url, run.phase, content=p.log_file(run.env, live, start,
                                                                    time.time()),
                     content_type="text/plain", gzip=True, events=("client log upload",)))
    run.send(Request("POST", f"{CLIENT_LOGS}/logs/meta", run.phase,
                     json=p.log_meta_body(run.env, live, filename),
                     events=("client log upload",)))
    run.metrics([run.legacy("js_sdk_upload_logs_success",
                            fields={"correlation_id": live.correlation_id})])
    live.locus_url = live.locus_id = live.participant_url = ""
    live.correlation_id = run.uuid()


def _exit(run: _Run) -> None:
    run.metrics([run.ca("client.exit.app", event={"trigger": "user-interaction"})])


def _mark(name: str, step: Callable[[_Run], None]) -> Callable[[_Run], None]:
    def marked(run: _Run) -> None:
        run.marks[name] = time.time()
        step(run)
    return marked


# --- the timeline -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    """Simulated seconds from launch."""
    phase: str
    run: Callable[[_Run], None]


_EXTRA_AT: Mapping[str, float] = MappingProxyType({
    "setup": 0.5, "sign_in": 6.0, "app_start": 12.5, "periodic": 90.0,
    "meeting_create": 280.5, "meeting_join": 300.5, "in_meeting": 400.0,
    "screen_share": 800.0, "collaboration": 950.5, "error": 1000.5,
    "meeting_leave": 1230.5, "shutdown": 1500.5,
})
"""When a batch of extra events for each trigger is sent (simulated seconds)."""


def _extra(names: Sequence[str]) -> Callable[[_Run], None]:
    def step(run: _Run) -> None:
        run.metrics([run.ca(name) for name in names])
    return step


def extra_steps(extra_events: Mapping[str, Sequence[str]]) -> tuple[Step, ...]:
    """One step per trigger that sends `extra_events[trigger]` in one batch, in its phase."""
    steps = []
    for trigger, names in extra_events.items():
        if trigger not in _EXTRA_AT:
            raise ValueError(f"no phase for extra events with trigger {trigger!r}")
        if names:
            steps.append(Step(_EXTRA_AT[trigger], trigger, _extra(tuple(names))))
    return tuple(steps)


def _timeline() -> tuple[Step, ...]:
    steps = [
        Step(0.0, "setup", _first_launch),
        Step(1.0, "setup", _wdm_register),
        Step(1.5, "setup", _wdm_success),
        Step(2.0, "setup", _region),
        Step(2.5, "setup", _meetings_registered),
        Step(5.0, "sign_in", _sign_in_start),
        Step(6.5, "sign_in", _u2c_catalog),
        Step(7.0, "sign_in", _identity_broker),
        Step(8.0, "sign_in", _alias),
        Step(8.5, "sign_in", _user_catalog),
        Step(9.5, "sign_in", _login_end),
        Step(12.0, "app_start", _app_start),
        *(Step(t, "periodic", _heartbeat) for t in (60.0, 120.0, 180.0, 240.0)),
        Step(280.0, "meeting_create", _meeting_create),
        Step(JOIN_AT, "meeting_join", _mark("join", _meeting_join)),
        Step(MUTE_START, "in_meeting", _mute),
        Step(MUTE_END, "in_meeting", _unmute),
        Step(SHARE_START, "screen_share", _share_start),
        Step(SHARE_END, "screen_share", _share_stop),
        Step(950.0, "collaboration", _chat),
        Step(1000.0, "error", _error_report),
        Step(LEAVE_AT, "meeting_leave", _leave),
        *(Step(t, "periodic", _heartbeat) for t in (1290.0, 1350.0, 1410.0, 1470.0)),
        Step(SESSION_SECONDS, "shutdown", _exit),
    ]
    rtc_times = [JOIN_AT + 6.0 + 30.0 * n for n in range(int((LEAVE_AT - JOIN_AT - 6) // 30))]
    steps += [Step(t, "in_meeting", _rtc(n)) for n, t in enumerate(rtc_times, 1)]
    mqe_times = [JOIN_AT + 60.0 * n for n in range(1, int((LEAVE_AT - JOIN_AT) // 60) + 1)]
    steps += [Step(t, "in_meeting", _mqe(n)) for n, t in enumerate(mqe_times, 1)]
    return tuple(sorted(steps, key=lambda step: step.at))  # sorted() is stable


TIMELINE: tuple[Step, ...] = _timeline()


# --- ground truth -------------------------------------------------------------


def _ground_truth(run: _Run, leaks: frozenset[str], speed: float, started: float,
                  finished: float) -> dict[str, Any]:
    def entry(plant: Plant, host: str, path: str, count: int) -> dict[str, Any]:
        data = {"finding_type": plant.finding_type, "finding_types": list(plant.finding_types),
                "encoding": plant.encoding, "value_kind": plant.value_kind, "host": host,
                "path": path, "location": plant.location, "event": plant.event, "count": count}
        if plant.leak == "expected_service":
            return {"kind": plant.value_kind, **data}
        return {"leak": plant.leak, **data}

    planted, service = [], []
    for (plant, host, path), count in run.planted.items():
        (service if plant.leak == "expected_service" else planted).append(
            entry(plant, host, path, count))
    phases: list[dict[str, Any]] = []
    for sent in run.sent:
        if not phases or phases[-1]["phase"] != sent.request.phase:
            phases.append({"phase": sent.request.phase, "first": sent.timestamp, "requests": 0})
        phases[-1]["requests"] += 1
        phases[-1]["last"] = sent.timestamp
    mute = ({"start": run.marks["mute_start"], "end": run.marks["mute_end"]}
            if "mute_start" in run.marks and "mute_end" in run.marks else None)
    return {
        "schema": GROUND_TRUTH_SCHEMA,
        "seed": run.env.seed,
        "speed": speed,
        "session_seconds": SESSION_SECONDS,
        "started": started,
        "finished": finished,
        "leaks_planted": [name for name in ALL_LEAKS if name in leaks],
        "leaks_not_planted": [name for name in ALL_LEAKS if name not in leaks],
        "planted": planted,
        "expected_service": service,
        "mute_window": mute,
        "phases": phases,
        "requests": len(run.sent),
        "sent": [{"timestamp": sent.timestamp, "method": sent.request.method,
                  "host": sent.request.host, "path": sent.request.path,
                  "trigger": sent.request.trigger or sent.request.phase,
                  "purpose": sent.request.purpose,
                  "events": list(sent.request.events)} for sent in run.sent],
        "telemetry_hosts": sorted({s.request.host for s in run.sent
                                   if s.request.purpose == "telemetry"}),
        "service_hosts": sorted({s.request.host for s in run.sent
                                 if s.request.purpose != "telemetry"}),
        "third_party_hosts": sorted({s.request.host for s in run.sent if not s.request.vendor}),
        "benign": _BENIGN,
        "notes": [
            "Pseudonymous ids (userId, orgId, deviceId URL, machineId, correlationId, locus ids)"
            " are identifiers, not planted leaks.",
            "publicNetworkPrefix/localNetworkPrefix and rtcMetrics candidate addresses are /28"
            " masked prefixes (as the SDK sends), never the identity's IP.",
            "Audio levels in MQE outside the mute window are normal; only levels sent while"
            " muted are the muted_audio leak.",
            "Locations in the Sentry envelope index its lines: $[2] is the event JSON.",
        ],
    }


_BENIGN: list[dict[str, str]] = [
    {"kind": "identifier", "finding_type": "persistent_id", "location": "identifiers.*, userId,"
     " machineId, deviceId, correlationId, connectionId, meetingId, locus ids",
     "reason": "pseudonymous ids the SDK always sends; not planted leaks"},
    {"kind": "network_prefix", "finding_type": "ip_address",
     "location": "origin.clientInfo.publicNetworkPrefix/localNetworkPrefix, rtcMetrics"
     " candidate address/ip/relatedAddress, peerReflexiveIP when public_ip is off",
     "reason": "/28 masked prefixes, never the identity's IP"},
    {"kind": "audio_level", "finding_type": "audio_level",
     "location": "MQE audioTransmit[].levels / audioAlgorithmModulesInfo outside the mute window",
     "reason": "levels while unmuted are ordinary quality data"},
    {"kind": "credential", "finding_type": "auth_token",
     "location": "header:Authorization on vendor hosts (after sign-in); $.api_key at"
     " api.amplitude.com; header:X-Sentry-Auth and $[0].dsn at the Sentry host",
     "reason": "the app's own bearer token and public client keys, sent by design"},
    {"kind": "share_window", "finding_type": "file_name",
     "location": "client.share.selected-app shareResourceName",
     "reason": f"an application name ({p.SHARED_WINDOW!r}), no document or file name"},
]
"""Values a careful audit may notice that are by design not planted leaks."""


def _write_json(data: Any, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def play_timeline(steps: Sequence[Step], speed: float, play: Callable[[Step], None], *,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Runs each step at `step.at / speed` seconds from now.

    A step that starts late (a slow request, a cold proxy) shifts every later
    step by the same amount, so the intervals between them keep their shape
    instead of the overdue steps firing in a burst.
    """
    origin = clock()
    for step in steps:
        delay = origin + step.at / speed - clock()
        if delay > 0:
            sleep(delay)
        else:
            origin -= delay
        play(step)


def simulate(proxy_url: str, ca_cert: Path, *, seed: int = 1, speed: float = 100.0,
             leaks: Collection[str] = ALL_LEAKS, out_dir: Path,
             spell: Callable[[str], str] = str,
             extra_events: Mapping[str, Sequence[str]] | None = None) -> SimulationResult:
    """Plays the whole session through `proxy_url`; writes identity.yaml and ground_truth.json.

    `spell` renames the app's event names (spelling.respeller); `extra_events`
    adds, per trigger, a batch of more events in that trigger's phase. Both
    make sessions no pack was tuned to. Raises ValueError for bad arguments
    and SimulationError when the proxy or the vendor stand-in cannot be reached.
    """
    if not 0 < speed < float("inf"):
        raise ValueError(f"speed must be a positive number, got {speed}")
    chosen = parse_leaks(leaks)
    timeline = TIMELINE
    if extra_events:
        timeline = tuple(sorted(TIMELINE + extra_steps(extra_events), key=lambda step: step.at))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = make_identity(seed)
    env = p.make_env(seed, identity, chosen)
    identity_path = write_identity(identity, out_dir / "identity.yaml")
    started = time.time()
    with Sender(proxy_url, Path(ca_cert), env.session_id) as sender:
        run = _Run(env, sender, rng=random.Random(f"phonehome-sim-run:{seed}"), spell=spell)
        run.marks["start"] = started

        def play(step: Step) -> None:
            run.phase = step.phase
            step.run(run)

        play_timeline(timeline, speed, play)
    finished = time.time()
    truth = _ground_truth(run, chosen, speed, started, finished)
    truth_path = _write_json(truth, out_dir / "ground_truth.json")
    mute = truth["mute_window"]
    return SimulationResult(
        out_dir=out_dir,
        identity_path=identity_path,
        ground_truth_path=truth_path,
        requests=len(run.sent),
        requests_by_host=MappingProxyType(dict(sender.by_host)),
        statuses=MappingProxyType(dict(sender.statuses)),
        mute_window=(mute["start"], mute["end"]) if mute else None,
        started=started,
        finished=finished,
        seed=seed,
        speed=speed,
        leaks=tuple(name for name in ALL_LEAKS if name in chosen),
    )
