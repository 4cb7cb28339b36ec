"""The detection engine's memos: plans per place and per payload shape, and bounded
memos of per-value answers. Every answer kept here is a pure function of its key,
so a memo changes the speed, never a finding (`reference.py` holds that up).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from operator import attrgetter
from typing import Any, NamedTuple

from ..model import Leaf, PathPart
from ..terms import format_location
from .base import Context, Detector

__all__ = ["Plan", "Shape", "PlanCache", "remember", "location_of", "plan_for",
           "MAX_PLANS", "MAX_SHAPES", "MAX_SHAPE_LEAVES", "MAX_MEMO", "MEMO_TEXT_CHARS"]

MAX_PLANS = 16384
"""Cached per-path plans before the cache starts over."""
MAX_SHAPES = 256
"""Payload shapes (tuples of leaf locations) remembered before the memo starts over."""
MAX_SHAPE_LEAVES = 2048
"""Payloads with more leaves are planned leaf by leaf; their shape is not kept."""
MAX_MEMO = 8192
"""Entries in each per-value memo (inspect, accept, identity, findings) before it starts over."""
MEMO_TEXT_CHARS = 512
"""Longer values are scanned every time, never kept in a memo."""

_LOCATION = attrgetter("location")


def remember(memo: dict[Any, Any], key: Any, value: Any, limit: int = 0) -> None:
    """memo[key] = value, starting the memo over when it holds `limit` (MAX_MEMO) entries."""
    if len(memo) >= (limit or MAX_MEMO):
        memo.clear()
    memo[key] = value


location_of = format_location
"""The report location of a container path (`$.a.b[0]`, `query:data.x`)."""


class Plan(NamedTuple):
    """What to do with a leaf at one place."""

    ctx: Context
    text: tuple[Detector, ...]
    """Key-driven detectors that apply here (run on a string value)."""
    numbers: tuple[Detector, ...]
    """Those of them that also read numbers."""
    number: int
    """Shared by every place with an equal Context (a key for per-value memos)."""
    source: str
    path: tuple[PathPart, ...]
    needs_check: bool
    """False for a body location written the way decode writes it (`location_of`):
    such a location names exactly one path, so a leaf there needs no path check."""
    neighbours: bool = False
    """Some detector here reads the value's neighbours (Detector.reads_neighbours)."""


def plan_for(detectors: Sequence[Detector], location: str, source: str,
             path: tuple[PathPart, ...], number: int) -> Plan:
    """The plan of one place, decided from scratch."""
    ctx = Context.of(path, source)
    applicable = tuple(d for d in detectors if d.applies(ctx))
    canonical = source == "body" and location == location_of(source, path)
    return Plan(ctx, applicable, tuple(d for d in applicable if d.numeric), number,
                source, path, not canonical, any(d.reads_neighbours(ctx) for d in applicable))


class Shape:
    """The plans of one payload shape, and the leaves that need a closer look."""

    __slots__ = ("plans", "keyed", "checks")

    def __init__(self, plans: list[Plan]) -> None:
        self.plans = plans
        self.keyed = [i for i, plan in enumerate(plans) if plan.text or plan.numbers]
        """Leaves some key-driven detector looks at."""
        self.checks = [i for i, plan in enumerate(plans) if plan.needs_check]
        """Leaves whose location does not name their path on its own."""


class PlanCache:
    """Plans per place, and per payload shape (the tuple of leaf locations: flows of
    one kind repeat it), each bounded."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = tuple(detectors)
        self._plans: dict[str, Plan] = {}
        self._shapes: dict[tuple[str, ...], Shape] = {}
        self._context_numbers: dict[Context, int] = {}
        self._next_context = count()

    def plan(self, location: str, source: str, path: tuple[PathPart, ...]) -> Plan:
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
            self._context_numbers.clear()
        ctx = Context.of(path, source)
        # Paths that differ only in list indices have equal contexts: one number for
        # all of them, so per-value answers are shared (numbers are never reused).
        number = self._context_numbers.get(ctx)
        if number is None:
            number = self._context_numbers[ctx] = next(self._next_context)
        plan = plan_for(self.detectors, location, source, path, number)
        self._plans[location] = plan
        return plan

    def shape_of(self, leaves: list[Leaf]) -> Shape:
        """The plans of all leaves. A body location written the way decode writes it
        names its path; the other places are checked each time."""
        locations = tuple(map(_LOCATION, leaves)) if len(leaves) <= MAX_SHAPE_LEAVES else None
        shape = self._shapes.get(locations) if locations is not None else None
        if shape is None:
            plans = []
            for leaf in leaves:
                plan = self._plans.get(leaf.location)
                if plan is None or plan.source != leaf.source or plan.path != leaf.path:
                    plan = self.plan(leaf.location, leaf.source, leaf.path)
                plans.append(plan)
            shape = Shape(plans)
            if locations is not None:
                remember(self._shapes, locations, shape, MAX_SHAPES)
            return shape
        checked = None
        for i in shape.checks:
            leaf = leaves[i]
            plan = shape.plans[i]
            if plan.source != leaf.source or plan.path != leaf.path:
                if checked is None:
                    checked = list(shape.plans)
                checked[i] = self.plan(leaf.location, leaf.source, leaf.path)
        return shape if checked is None else Shape(checked)
