"""The detection engine: every detector and the identity search, once per payload.

The memos live in cache.py, the text search in scan.py, findings in findings.py;
reference.py is the same evaluation written plainly, held equal by a property test.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import compress, count, repeat
from operator import attrgetter, is_not
from typing import Any

from ..model import Finding, Leaf, Payload
from .base import Context, Detector, Hit, neighbours_of
from .cache import MEMO_TEXT_CHARS, Plan, PlanCache, location_of, remember
from .content import (
    AudioLevelDetector,
    ChatMessageDetector,
    FileNameDetector,
    MeetingTitleDetector,
    ParticipantListDetector,
    TranscriptDetector,
)
from .device import DeviceSerialDetector, HostnameDetector, MacAddressDetector, UsernameDetector
from .findings import FindingMaker, drop_summary_repeats
from .identity import Identity, IdentityForm, IdentityIndex
from .location import GeoLocationDetector, IpAddressDetector, WifiNetworkDetector
from .numbers import CreditCardDetector, NationalIdDetector
from .people import EmailDetector, OrganizationNameDetector, PersonNameDetector, PhoneDetector
from .persistent import IdentifierScanner
from .redact import EPHEMERAL_KEY
from .scan import MAX_SCAN_CHARS, NOTHING, Raw, Scan, TextScanner, scannable
from .tokens import AuthTokenDetector
from .vendor_tags import merge_tag_findings, tag_findings

__all__ = ["DETECTORS", "DetectionEngine", "location_of"]

DETECTORS: tuple[type[Detector], ...] = (
    EmailDetector,
    PhoneDetector,
    PersonNameDetector,
    IpAddressDetector,
    MacAddressDetector,
    GeoLocationDetector,
    HostnameDetector,
    UsernameDetector,
    DeviceSerialDetector,
    WifiNetworkDetector,
    OrganizationNameDetector,
    CreditCardDetector,
    NationalIdDetector,
    AuthTokenDetector,
    MeetingTitleDetector,
    ChatMessageDetector,
    TranscriptDetector,
    FileNameDetector,
    ParticipantListDetector,
    AudioLevelDetector,
)
"""One class per finding type, in report order (identity matching is the engine's own)."""

_VALUE = attrgetter("value")


class DetectionEngine:
    """Every detector, compiled once; `detect(payload)` per flow.

    1. Places. The payload's shape (its tuple of leaf locations) maps to one plan
       per leaf: its Context and the key-driven detectors that apply there.
    2. Texts. Most leaves hold a text already seen holding nothing: those are
       passed over in one C-level map. The others are searched (`TextScanner`).
    3. Matches. Each pattern match goes to its detector's `accept`; key-driven
       detectors `inspect` the leaves their plans name, with the value's
       neighbours where a detector reads them (`base.neighbours_of`).
    4. Findings. Hits become Findings with redacted evidence (`FindingMaker`).
    """

    def __init__(self, identity: Identity | None = None, key: bytes | None = None) -> None:
        self.identity = identity
        self.key = key or EPHEMERAL_KEY
        """Keys every fingerprint (`fingerprint`); the store's per-install secret."""
        self.detectors: tuple[Detector, ...] = tuple(cls() for cls in DETECTORS)
        self.index = IdentityIndex(identity) if identity else None
        self.scanner = TextScanner(self.detectors, self.index)
        self.plans = PlanCache(self.detectors)
        self.maker = FindingMaker(self.detectors, identity, self.key)
        self._inspected: dict[tuple[Any, ...], tuple[tuple[Detector, Hit], ...]] = {}
        self._identifiers = IdentifierScanner(self.key)

    def identifiers(self, payload: Payload) -> list[dict[str, str]]:
        """`identifier_candidates(payload)`, with this engine's memo of id-like keys."""
        return self._identifiers.candidates(payload)

    def detect(self, payload: Payload) -> list[Finding]:
        leaves = payload.leaves
        if not leaves:
            return []
        shape = self.plans.shape_of(leaves)
        plans = shape.plans
        scanned = self.scanner.scanned
        # Most leaves hold a text already seen holding nothing, at a place no
        # key-driven detector cares about: those are passed over at C speed.
        try:
            scans = list(map(scanned.get, map(_VALUE, leaves)))
        except TypeError:  # an unhashable value in a hand-made leaf: skipped below
            scans = [scanned.get(leaf.value) if leaf.value.__class__ is str else None
                     for leaf in leaves]
        todo: Iterable[int] = compress(count(), map(is_not, scans, repeat(NOTHING)))
        if shape.keyed:
            todo = sorted(set(todo).union(shape.keyed))
        raw: list[Raw] = []
        url: str | None = None
        # Texts that hold something, and texts never seen: (leaf, text, plan[, scan]).
        marked: list[tuple[int, str, Plan, Scan]] = []
        fresh: list[tuple[int, str, Plan]] = []
        for i in todo:
            value = leaves[i].value
            kind = value.__class__
            if kind is str:
                if not value:
                    continue
                plan = plans[i]
                scan = scans[i]
                if scan is None:
                    if len(value) > MAX_SCAN_CHARS or not value.isascii():
                        value = scannable(value)
                        scan = scanned.get(value)
                    if scan is None:
                        fresh.append((i, value, plan))
                if scan is not None and scan is not NOTHING:
                    marked.append((i, value, plan, scan))
                if plan.text:
                    ctx = plan.ctx
                    if plan.neighbours:
                        if url is None:
                            url = url_of(leaves)
                        ctx = around(payload, leaves[i], ctx, url)
                    for detector, hit in self._inspect_text(plan, value, ctx):
                        raw.append(Raw(i, detector, hit))
            elif kind is int or kind is float:
                plan = plans[i]
                if not plan.numbers:
                    continue
                ctx = plan.ctx
                if plan.neighbours:
                    if url is None:
                        url = url_of(leaves)
                    ctx = around(payload, leaves[i], ctx, url)
                for detector in plan.numbers:
                    hit = detector.inspect(value, ctx)
                    if hit is not None:
                        raw.append(Raw(i, detector, hit))
        if fresh:
            marked = self.scanner.search_fresh(fresh, marked)
        identity_hits: list[tuple[int, int, int, IdentityForm, str]] = []
        if marked:
            fired = {number for entry in marked for number in entry[3].fired}
            for number in sorted(fired):
                if self.scanner.single_line[number]:
                    self.scanner.accept_spans(number, marked, raw)
                else:
                    self.scanner.run_pattern(number, leaves, plans, raw)
            for i, text, _, scan in marked:
                for start, end, form in scan.identity:
                    identity_hits.append((i, start, end, form, text[start:end]))
        findings = self.maker.findings(leaves, raw)
        findings.extend(self.maker.identity_findings(leaves, identity_hits))
        findings = merge_tag_findings(findings, tag_findings(payload, self.key))
        return drop_summary_repeats(findings)

    def _inspect_text(self, plan: Plan, value: str, ctx: Context
                      ) -> tuple[tuple[Detector, Hit], ...]:
        """Hits of the key-driven detectors for a string at this place (memoized)."""

    def _inspect_text(self, plan: Plan, value: str, ctx: Context
                      ) -> tuple[tuple[Detector, Hit], ...]:
        """Hits of the key-driven detectors for a string at this place (memoized)."""
        key: tuple[Any, ...] = (plan.number, value)
        if plan.neighbours:
            key += (ctx.event, ctx.siblings, ctx.host)
        found = self._inspected.get(key)
        if found is None:
            found = tuple(
                (detector, hit)
                for detector in plan.text
                if (hit := detector.inspect(value, ctx)) is not None
            )
            if len(value) <= MEMO_TEXT_CHARS:
                remember(self._inspected, key, found)
        return found


def url_of(leaves: list[Leaf]) -> str:
    """The request URL (its leaf), or "" for a payload without one."""
    for leaf in leaves:
        if leaf.source == "url" and leaf.value.__class__ is str:
            return leaf.value  # type: ignore[return-value]
    return ""


def around(payload: Payload, leaf: Leaf, ctx: Context, url: str) -> Context:
    """`ctx` with the leaf's neighbours: only leaves some `neighbours` detector reads."""
    tree = payload.tree if leaf.source == "body" else None
    event, siblings, host = neighbours_of(tree, leaf.path, url)
    return ctx.around(event, siblings, host)
