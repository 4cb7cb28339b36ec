"""The ground truth of a simulated session: what was planted where, and what is benign."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import payloads as p
from .leaks import ALL_LEAKS, Plant
from .steps import Run
from .timeline import SESSION_SECONDS

__all__ = ["GROUND_TRUTH_SCHEMA", "ground_truth", "write_json"]

GROUND_TRUTH_SCHEMA = "phonehome.simulate.ground_truth/1"


def ground_truth(run: Run, leaks: frozenset[str], speed: float, started: float,
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


_BENIGN_FIELDS = ("kind", "finding_type", "location", "reason")
_BENIGN: list[dict[str, str]] = [dict(zip(_BENIGN_FIELDS, row, strict=True)) for row in (
    ("identifier", "persistent_id",
     "identifiers.*, userId, machineId, deviceId, correlationId, connectionId, meetingId,"
     " locus ids",
     "pseudonymous ids the SDK always sends; not planted leaks"),
    ("network_prefix", "ip_address",
     "origin.clientInfo.publicNetworkPrefix/localNetworkPrefix, rtcMetrics"
     " candidate address/ip/relatedAddress, peerReflexiveIP when public_ip is off",
     "/28 masked prefixes, never the identity's IP"),
    ("audio_level", "audio_level",
     "MQE audioTransmit[].levels / audioAlgorithmModulesInfo outside the mute window",
     "levels while unmuted are ordinary quality data"),
    ("credential", "auth_token",
     "header:Authorization on vendor hosts (after sign-in); $.api_key at"
     " api.amplitude.com; header:X-Sentry-Auth and $[0].dsn at the Sentry host",
     "the app's own bearer token and public client keys, sent by design"),
    ("share_window", "file_name",
     "client.share.selected-app shareResourceName",
     f"an application name ({p.SHARED_WINDOW!r}), no document or file name"),
)]
"""Values a careful audit may notice that are by design not planted leaks."""


def write_json(data: Any, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
