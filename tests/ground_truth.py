"""Comparing a report with the simulator's ground truth (shared by the demo and sample tests)."""

from __future__ import annotations

from urllib.parse import urlsplit


def findings_at(report: dict, host: str, path: str, location: str) -> list[dict]:
    found = []
    for flow in report["flows"]:
        url = urlsplit(flow["url"])
        if flow["host"] == host and url.path == path:
            found.extend(f for f in flow["findings"] if f["location"] == location)
    return found


def matches(entry: dict, finding: dict) -> bool:
    if finding["type"] not in entry["finding_types"]:
        return False
    if entry["leak"] == "public_ip":
        # Unplanted, the same place holds the /28-masked prefix: still a public address,
        # but not yours. The leak is your own IP, so it must match the identity.
        return finding["type"] == "identity_match"
    if entry["leak"] == "muted_audio":  # levels outside the mute window are medium
        return finding["severity"] == "high"
    if finding["type"] != "identity_match":
        return True
    encoding = finding["encoding"] or ""
    return encoding == entry["encoding"] or encoding.startswith(entry["encoding"])
