"""The audited app: whose vendor is the first party, and whose claims are checked.

Classify records each flow's `vendor_pack` (the app vendor's pack whose domains
hold the host). Here `auto` picks the app whose domains carry most of the
telemetry, and every flow to an app vendor becomes first party (that app's) or third.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["AUTO", "AppVotes", "resolve_app", "party_for"]

AUTO = "auto"


class AppVotes:
    """What the traffic says about the audited app, fed one flow at a time."""

    def __init__(self) -> None:
        self.telemetry: Counter[str] = Counter()
        self.every: Counter[str] = Counter()
        self.organizations: dict[str, str] = {}

    def add(self, vendor_pack: Any, purpose: str, organization: str | None) -> None:
        if not vendor_pack:
            return
        self.every[vendor_pack] += 1
        if purpose == "telemetry":
            self.telemetry[vendor_pack] += 1
        if organization:
            self.organizations.setdefault(vendor_pack, organization)

    def resolve(self, requested: str | None, apps: Mapping[str, str | None]) -> dict[str, Any]:
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
        telemetry, every = self.telemetry, self.every
        if not every:
            return {"name": None, "vendor": None, "chosen_by": "traffic",
                    "reason": "no flow went to a domain of a known app vendor"}
        name = min(every, key=lambda p: (-telemetry[p], -every[p], order.get(p, len(order)), p))
        vendor = apps.get(name)
        if vendor is None:  # a store written before packs listed their vendor
            vendor = self.organizations.get(name)
        return {"name": name, "vendor": vendor, "chosen_by": "traffic",
                "reason": f"{telemetry[name]} of {sum(telemetry.values())} telemetry flows to "
                          f"app vendors go to {vendor or name}"}


def resolve_app(flows: Iterable[Mapping[str, Any]], requested: str | None,
                apps: Mapping[str, str | None]) -> dict[str, Any]:
    """`AppVotes.resolve` over these flow dicts."""
    votes = AppVotes()
    for flow in flows:
        votes.add(flow.get("vendor_pack"), str(flow.get("purpose")), flow.get("organization"))
    return votes.resolve(requested, apps)


def party_for(party: str, vendor_pack: Any, app: str | None) -> str:
    """First party is the audited app's vendor; another app vendor is a third party.

    Flows to trackers, to domains in no pack and to hosts without a domain keep the
    party classify gave them.
    """
    if vendor_pack and app is not None:
        return "first" if vendor_pack == app else "third"
    return party
