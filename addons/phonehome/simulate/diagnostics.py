"""What the simulated app uploads about itself: a crash stack, a Sentry envelope, the SDK log."""

from __future__ import annotations

import json
import random
from typing import Any

from .leaks import Plant, jsonpath
from .payloads import APP_VERSION, Env, Live, iso

__all__ = ["crash_stack", "sentry_envelope", "log_file", "log_meta_body"]


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
