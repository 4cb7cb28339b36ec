"""The audited app: whose vendor is the first party, and whose claims are checked.

Classify records each flow's `vendor_pack` (the app vendor's pack whose domains
hold the host). Here `auto` picks the app whose domains carry most of the
telemetry, and every flow to an app vendor becomes first party (that app's) or third.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["AUTO", "resolve_app", "apply_app"]

AUTO = "auto"


def resolve_app(flows: Sequence[Mapping[str, Any]], requested: str | None,
                apps: Mapping[str, str | None]) -> dict[str, Any]:
    """The report's `app`: {name, vendor, chosen_by, reason} (name None: no app found).

    `apps` maps each loaded app's pack id to its vendor, in load order; `requested`
    is a pack id, or "auto"/None to pick from the traffic: most telemetry flows,
    then most flows, then load order. ValueError for an app no loaded pack describes.
    """
    if requested and requested != AUTO:
        if apps and requested not in apps:
            raise ValueError(f"unknown app {requested!r} (apps: {', '.join(apps)}, auto)")
        return {"name": requested, "vendor": apps.get(requested), "chosen_by": "option",
                "reason": f"asked for {requested} (--app, live: phonehome_app)"}
    order = {name: i for i, name in enumerate(apps)}
    telemetry: Counter[str] = Counter()
    every: Counter[str] = Counter()
    for flow in flows:
        pack = flow.get("vendor_pack")
        if not pack:
            continue
        every[pack] += 1
        if flow.get("purpose") == "telemetry":
            telemetry[pack] += 1
    if not every:
        return {"name": None, "vendor": None, "chosen_by": "traffic",
                "reason": "no flow went to a domain of a known app vendor"}
    name = min(every, key=lambda p: (-telemetry[p], -every[p], order.get(p, len(order)), p))
    vendor = apps.get(name)
    if vendor is None:  # a store written before packs listed their vendor
        vendor = next((f.get("organization") for f in flows
                       if f.get("vendor_pack") == name and f.get("organization")), None)
    return {"name": name, "vendor": vendor, "chosen_by": "traffic",
            "reason": f"{telemetry[name]} of {sum(telemetry.values())} telemetry flows to app "
                      f"vendors go to {vendor or name}"}


def apply_app(flows: Sequence[MutableMapping[str, Any]], app: str | None) -> None:
    """First party is the audited app's vendor; another app vendor is a third party.

    Flows to trackers, to domains in no pack and to hosts without a domain keep the
    party classify gave them.
    """
    for flow in flows:
        pack = flow.get("vendor_pack")
        if pack and app is not None:
            flow["party"] = "first" if pack == app else "third"
