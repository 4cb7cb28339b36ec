"""The fleet section: what each sensor saw, and which identifiers several sensors share.

An identifier with the same keyed fingerprint on two or more sensors is fleet-wide
(an org id, a tenant key); one seen on a single sensor is per sensor (a person, a
machine). Fingerprints link across sensors because a shared store has one key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .records import Identifier

__all__ = ["Fleet"]

_MAX_HOSTS_LISTED = 20


class Fleet:
    """The report's `fleet` section, fed one flow at a time."""

    def __init__(self) -> None:
        self._sensors: dict[str, dict[str, Any]] = {}
        self._identifiers: dict[str, dict[str, Any]] = {}

    def add(self, sensor: str, host: str, timestamp: float, findings: int,
            identifiers: Iterable[Identifier]) -> None:
        entry = self._sensors.setdefault(sensor, {
            "sensor": sensor, "flows": 0, "findings": 0, "hosts": {}, "first_seen": None,
            "last_seen": None})
        entry["flows"] += 1
        entry["findings"] += findings
        entry["hosts"][host] = entry["hosts"].get(host, 0) + 1
        if entry["first_seen"] is None or timestamp < entry["first_seen"]:
            entry["first_seen"] = timestamp
        if entry["last_seen"] is None or timestamp > entry["last_seen"]:
            entry["last_seen"] = timestamp
        for candidate in identifiers:
            fingerprint = candidate.fingerprint
            if not fingerprint:
                continue
            shared = self._identifiers.setdefault(fingerprint, {
                "fingerprint": fingerprint, "keys": {}, "sensors": {}, "flow_count": 0,
                "evidence": candidate.evidence or fingerprint})
            shared["keys"][candidate.key] = None
            shared["sensors"][sensor] = None
            shared["flow_count"] += 1

    def section(self) -> dict[str, Any]:
        per_sensor = []
        for entry in sorted(self._sensors.values(), key=lambda e: e["sensor"]):
            hosts = sorted(entry["hosts"].items(), key=lambda kv: (-kv[1], kv[0]))
            per_sensor.append({**{k: v for k, v in entry.items() if k != "hosts"},
                               "destinations": len(hosts),
                               "hosts": [host for host, _ in hosts[:_MAX_HOSTS_LISTED]]})
        linked = []
        for shared in self._identifiers.values():
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
        linked.sort(key=lambda e: (-e["sensor_count"], -e["flow_count"], e["keys"],
                                   e["fingerprint"]))
        return {"sensors": per_sensor, "identifiers": linked}
