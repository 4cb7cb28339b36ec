"""The fleet section: what each sensor saw, and which identifiers several sensors share.

An identifier with the same keyed fingerprint on two or more sensors is fleet-wide
(an org id, a tenant key); one seen on a single sensor is per sensor (a person, a
machine). Fingerprints link across sensors because a shared store has one key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["fleet_section"]

_MAX_HOSTS_LISTED = 20


def fleet_section(flows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    sensors: dict[str, dict[str, Any]] = {}
    identifiers: dict[str, dict[str, Any]] = {}
    for flow in flows:
        name = str(flow.get("sensor") or "")
        entry = sensors.setdefault(name, {"sensor": name, "flows": 0, "findings": 0,
                                          "hosts": {}, "first_seen": None, "last_seen": None})
        entry["flows"] += 1
        entry["findings"] += len(flow.get("findings") or ())
        host = str(flow.get("host") or "")
        entry["hosts"][host] = entry["hosts"].get(host, 0) + 1
        timestamp = float(flow.get("timestamp") or 0)
        if entry["first_seen"] is None or timestamp < entry["first_seen"]:
            entry["first_seen"] = timestamp
        if entry["last_seen"] is None or timestamp > entry["last_seen"]:
            entry["last_seen"] = timestamp
        for candidate in flow.get("identifiers") or ():
            fingerprint = candidate.get("fingerprint")
            if not fingerprint:
                continue
            shared = identifiers.setdefault(fingerprint, {
                "fingerprint": fingerprint, "keys": {}, "sensors": {}, "flow_count": 0,
                "evidence": candidate.get("evidence") or fingerprint})
            shared["keys"][str(candidate.get("key", ""))] = None
            shared["sensors"][name] = None
            shared["flow_count"] += 1
    per_sensor = []
    for entry in sorted(sensors.values(), key=lambda e: e["sensor"]):
        hosts = sorted(entry.pop("hosts").items(), key=lambda kv: (-kv[1], kv[0]))
        per_sensor.append({**entry, "destinations": len(hosts),
                           "hosts": [host for host, _ in hosts[:_MAX_HOSTS_LISTED]]})
    linked = []
    for shared in identifiers.values():
        if shared["flow_count"] < 2:
            continue
        sensor_names = sorted(shared["sensors"])
        linked.append({
            "fingerprint": shared["fingerprint"],
            "keys": sorted(shared["keys"]),
            "scope": "fleet" if len(sensor_names) >= 2 else "sensor",
            "sensors": sensor_names,
            "sensor_count": len(sensor_names),
            "flow_count": shared["flow_count"],
            "evidence": shared["evidence"],
        })
    linked.sort(key=lambda e: (-e["sensor_count"], -e["flow_count"], e["keys"], e["fingerprint"]))
    return {"sensors": per_sensor, "identifiers": linked}
