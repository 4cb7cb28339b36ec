"""The fast path of rule evaluation: evaluate.py's answers, from bounded memos (memo.py).

Telemetry repeats itself: per leaf path its `each` prefixes and the targets it reaches,
per body shape the events, per event shape and name the outcome when no value is
tested, per event name its cases are remembered. Per flow only the values are read.
"""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..capture.request_view import request_flow
from ..model import EventHit, Leaf, Observation, PathPart, Payload
from .compile import CASE, EVENT, CompiledRule, Target
from .evaluate import Found, RuleHit, field_holds, first_name
from .memo import MemoPool, lookup_all
from .paths import find_paths, has_scalar, subtree, walk_leaves

__all__ = ["FastRule", "RuleInput", "evaluate_fast"]


class FastRule:
    """A compiled rule with its memo tables (all in the pool of the RuleSet that owns it)."""

    __slots__ = ("c", "pool", "leaf_tables", "each_table", "name_table", "flow_table")

    def __init__(self, c: CompiledRule, pool: MemoPool,
                 each_tables: dict[str, dict[Any, Any]]) -> None:
        self.c = c
        self.pool = pool
        self.leaf_tables: dict[int, dict[tuple[PathPart, ...], Any]] = {}
        """Per event offset: exact leaf path → (non-field targets reached, targets that
        take its value, field categories)."""
        self.name_table: dict[str, tuple[int, ...]] = pool.table()
        self.flow_table: dict[tuple[str, str], tuple[Any, ...]] = pool.table()
        """(source, name) of a non-body leaf → targets; source "" for key references."""
        self.each_table: dict[tuple[PathPart, ...], Any] | None = None
        """Leaf path → the `each` prefixes above it (shared by rules with the same `each`)."""
        each = c.rule.each
        if c.each_trie is not None and each is not None:
            table = each_tables.get(each.text)
            if table is None:
                table = each_tables[each.text] = pool.table()
            self.each_table = table

    def leaf_table(self, offset: int) -> dict[tuple[PathPart, ...], Any]:
        table = self.leaf_tables.get(offset)
        if table is None:
            table = self.leaf_tables[offset] = self.pool.table()
        return table

    def cases_for(self, name: str) -> tuple[int, ...]:
        """In order, the cases that `name` does not rule out (memoized per name)."""
        found = self.name_table.get(name)
        if found is None:
            by_name = self.c.cases_by_name(name)
            found = tuple(k for k, case in enumerate(self.c.rule.classify)
                          if (case.names is None and case.regex is None) or k in by_name)
            self.pool.remember(self.name_table, name, found)
        return found


_NO_HITS: tuple[tuple[Any, ...], tuple[Any, ...], frozenset[str]] = ((), (), frozenset())
"""The memo entry of a leaf path no reference of a rule reaches."""


Group = tuple[tuple[PathPart, ...], tuple[int, ...]]
"""An event: its prefix and the positions of its leaves among the body leaves."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a rule makes of one event: the hit, the marks it proves, its categories."""

    hit: EventHit
    marks: tuple[str, ...]
    categories: frozenset[str]
    static: bool
    """Decided by the event's shape and name alone: the same for every flow."""


@dataclass(slots=True)
class _GroupPlan:
    """One event of one rule in one body shape: which leaves, and what they reach."""

    prefix: tuple[PathPart, ...]
    positions: tuple[int, ...]
    literal: tuple[int, ...] | None
    """Position of the first leaf at each plain `event` path (-1: there is none)."""
    kept: bool = True
    """Whether the plan is memoized with its shape (else it serves one flow)."""
    filled: bool = False
    """Whether the fields below are worked out (on first use: most plans fail `literal`)."""
    present: frozenset[Any] = frozenset()
    cats: frozenset[str] = frozenset()
    valued: tuple[tuple[Any, tuple[int, ...]], ...] = ()
    """(target, positions of the leaves whose values it takes, in order)."""
    names: tuple[tuple[int, ...], ...] = ()
    """Per `event` path: the positions of the leaves that may name the event."""
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    """Event name → what the rule makes of this event, when nothing else matters."""


class _Shape:
    """What the sequence of body leaf paths alone decides, per `each` and per rule.

    Memoized per exact tuple of paths: the same telemetry shape comes back
    flow after flow, and then only the leaf values are new.
    """

    __slots__ = ("groups", "plans", "first")

    def __init__(self) -> None:
        self.groups: dict[str, list[Group]] = {}
        self.plans: dict[int, list[_GroupPlan]] = {}
        self.first: dict[tuple[PathPart, ...], int] | None = None


class RuleInput:
    """What the fast path reads of one flow: the observation, its leaves split by
    source, and a lazily built request for filter expressions."""

    def __init__(self, obs: Observation, payload: Payload, pool: MemoPool,
                 shapes: dict[tuple[tuple[PathPart, ...], ...], _Shape]) -> None:
        self.obs = obs
        self.payload = payload
        self.pool = pool
        self.paths: list[tuple[PathPart, ...]] = [
            leaf.path for leaf in payload.leaves if leaf.source == "body"]
        """Body leaf paths; a body leaf's position is its index here."""
        self._body: list[Leaf] | None = None
        self._other: dict[str, list[Leaf]] | None = None
        self._shapes = shapes
        self._shape: _Shape | None = None
        self._values: list[Any] | None = None
        self._flow: Any = None
        self._groups: dict[str, list[Group]] = {}

    @property
    def flow(self) -> Any:
        if self._flow is None:
            self._flow = request_flow(self.obs)
        return self._flow

    @property
    def body(self) -> list[Leaf]:
        if self._body is None:
            self._body = [leaf for leaf in self.payload.leaves if leaf.source == "body"]
        return self._body

    @property
    def other(self) -> dict[str, list[Leaf]]:
        """The non-body leaves by source."""
        if self._other is None:
            self._other = {}
            if len(self.paths) != len(self.payload.leaves):
                for leaf in self.payload.leaves:
                    if leaf.source != "body":
                        self._other.setdefault(leaf.source, []).append(leaf)
        return self._other

    @property
    def shape(self) -> _Shape:
        if self._shape is None:
            key = tuple(self.paths)
            shape = self._shapes.get(key)
            if shape is None:
                shape = self._shapes[key] = _Shape()
                self.pool.added(len(key) + 1)  # the key holds a reference per leaf
            self._shape = shape
        return self._shape

    @property
    def values(self) -> list[Any]:
        """Body leaf values by position, then None (what position -1 reads)."""
        if self._values is None:
            self._values = [leaf.value for leaf in self.payload.leaves if leaf.source == "body"]
            self._values.append(None)
        return self._values

    def first_positions(self) -> dict[tuple[PathPart, ...], int]:
        """Body leaf path → position of the first leaf with that path."""
        shape = self.shape
        if shape.first is None:
            paths = self.paths
            shape.first = dict(zip(reversed(paths), range(len(paths) - 1, -1, -1),
                                   strict=True))
        return shape.first

    def event_groups(self, c: FastRule) -> list[Group]:
        """Events of a rule; rules that split with the same `each` share the work."""
        each = c.c.rule.each
        if each is None:
            return [((), tuple(range(len(self.paths))))]
        if c.c.each_trie is not None:
            groups = self.shape.groups.get(each.text)
            if groups is None:
                groups = self.shape.groups[each.text] = _trie_groups(c, self)
            return groups
        # a JSONPath `each` that is not compiled may test values: per flow
        groups = self._groups.get(each.text)
        if groups is None:
            groups = self._groups[each.text] = _found_groups(c, self)
        return groups

    def plans(self, c: FastRule) -> list[_GroupPlan]:
        """The events of a rule, with the leaf positions its plain `event` paths read."""
        shaped = c.c.rule.each is None or c.c.each_trie is not None
        if shaped:
            plans = self.shape.plans.get(c.c.index)
            if plans is not None:
                return plans
        plans = []
        groups = self.event_groups(c)
        first = self.first_positions() if c.c.literal_events is not None else {}
        for prefix, positions in groups:
            literal = None
            if c.c.literal_events is not None:
                literal = tuple(first.get(prefix + p, -1) for p in c.c.literal_events)
            plans.append(_GroupPlan(prefix, positions, literal, kept=shaped))
        if shaped:
            self.shape.plans[c.c.index] = plans
            self.pool.added(len(plans) + 1)
        return plans


def _leaf_entries(c: FastRule, leaves: Sequence[Leaf], offset: int) -> list[Any]:
    """Per leaf: (targets reached, targets that take its value, field categories).

    A function of the leaf's path alone (relative at `offset`), so it is memoized
    per exact path tuple. Field targets only count through their categories.
    Values are per target and a target is reached one way only (trie or key
    name), so doing both for one leaf before the next keeps every value order.
    """
    refs = c.c.refs
    trie_hits: list[list[tuple[Any, bool]]] = [[] for _ in leaves]
    if not refs.trie.empty:
        rel = [leaf.path[offset:] for leaf in leaves]
        for position, hits in walk_leaves(refs.trie, rel):
            if hits:
                full = len(rel[position])
                trie_hits[position] = [(target, depth == full) for target, depth in hits]
    valued_targets = c.c.valued
    field_cats = c.c.field_cats
    entries: list[Any] = []
    for leaf, hits in zip(leaves, trie_hits, strict=True):
        targets = [target for target, _exact in hits]
        valued = [target for target, exact in hits if exact and target in valued_targets]
        if refs.keys:
            key = leaf.key
            if key:
                for target, test in refs.keys:
                    if test(key):
                        targets.append(target)
                        if target in valued_targets:
                            valued.append(target)
        if not targets:
            entries.append(_NO_HITS)
            continue
        cats = frozenset(cat for target in targets for cat in field_cats.get(target, ()))
        others = tuple(dict.fromkeys(t for t in targets if t not in field_cats))
        entries.append((others, tuple(valued), cats))
    return entries


def _fill(c: FastRule, view: RuleInput, plan: _GroupPlan) -> None:
    """Work out what the leaves of one event reach, from the per-path memo."""
    if c.c.body_work:
        body = view.body
        paths = view.paths
        positions = plan.positions
        offset = len(plan.prefix)
        entries = lookup_all(
            view.pool, c.leaf_table(offset), [paths[i] for i in positions],
            lambda missing: _leaf_entries(c, [body[positions[j]] for j in missing], offset))
        present: set[Any] = set()
        cats: set[str] = set()
        valued: dict[Any, list[int]] = {}
        for position, (targets, takes, leaf_cats) in zip(positions, entries, strict=True):
            if leaf_cats:
                cats |= leaf_cats
            if targets:
                present.update(targets)
                for target in takes:
                    valued.setdefault(target, []).append(position)
        plan.present = frozenset(present)
        plan.cats = frozenset(cats)
        plan.valued = tuple((target, tuple(found)) for target, found in valued.items())
        plan.names = tuple(tuple(valued.get(Target(EVENT, j), ())) for j in range(c.c.event_count))
    plan.filled = True


def _collect(c: FastRule, view: RuleInput, plan: _GroupPlan) -> Found:
    """What one event holds for a rule: memoized reach, this flow's values."""
    if not plan.filled:
        _fill(c, view, plan)
    values = view.values
    found = Found(set(plan.present),
                   {target: [values[i] for i in positions] for target, positions in plan.valued},
                   set(plan.cats))
    if c.c.refs.fallback:
        node = subtree(view.payload.tree, plan.prefix)
        for target, parsed in c.c.refs.fallback:
            for _path, value in find_paths(parsed, node):
                if isinstance(value, (dict, list)):
                    if has_scalar(value):
                        found.present.add(target)
                else:
                    found.add(target, value, True)
    return found


def _collect_flow_level(c: FastRule, view: RuleInput) -> Found:
    found = Found()
    refs = c.c.refs
    table = c.flow_table
    for source, specs in refs.sources.items():
        for leaf in view.other.get(source, ()):
            name = leaf.key
            targets = table.get((source, name))
            if targets is None:
                targets = tuple(target for target, test in specs if test(name))
                view.pool.remember(table, (source, name), targets)
            for target in targets:
                found.add(target, leaf.value, True)
    if refs.keys:
        for leaf in view.other.get("query", ()):
            name = leaf.key
            targets = table.get(("", name))
            if targets is None:
                targets = tuple(target for target, test in refs.keys if test(name))
                view.pool.remember(table, ("", name), targets)
            for target in targets:
                found.add(target, leaf.value, True)
    return found


def _trie_groups(c: FastRule, view: RuleInput) -> list[Group]:
    """Events under a compiled `each`: prefixes per leaf path come from the memo."""
    assert c.c.each_trie is not None and c.each_table is not None
    trie = c.c.each_trie
    paths = view.paths

    def prefixes_of(missing: list[int]) -> list[tuple[tuple[PathPart, ...], ...]]:
        todo = [paths[i] for i in missing]
        return [tuple(todo[position][:depth] for _target, depth in hits)
                for position, hits in walk_leaves(trie, todo)]

    entries = lookup_all(view.pool, c.each_table, paths, prefixes_of)
    groups: dict[tuple[PathPart, ...], list[int]] = {}
    for position, prefixes in enumerate(entries):
        for prefix in prefixes:
            group = groups.get(prefix)
            if group is None:
                groups[prefix] = [position]
            else:
                group.append(position)
    return [(prefix, tuple(positions)) for prefix, positions in groups.items()]


def _found_groups(c: FastRule, view: RuleInput) -> list[Group]:
    """Events under an `each` that jsonpath-ng evaluates on the tree."""
    assert c.c.rule.each is not None
    groups: dict[tuple[PathPart, ...], list[int]] = {}
    for prefix, value in find_paths(c.c.rule.each, view.payload.tree):
        if not isinstance(value, (dict, list)) or has_scalar(value):
            groups.setdefault(prefix, [])
    lengths = sorted({len(p) for p in groups})
    for position, path in enumerate(view.paths):
        for length in lengths:
            group = groups.get(path[:length])
            if group is not None:
                group.append(position)
    return [(prefix, tuple(positions)) for prefix, positions in groups.items() if positions]


def _event_name(c: FastRule, found: Found) -> str | None:
    for j in range(c.c.event_count):
        name = first_name(found.values.get(Target(EVENT, j), ()))
        if name is not None:
            return name
    return None


def _classify_event(c: FastRule, plan: _GroupPlan, name: str, found: Found,
                    flow_found: Found) -> _Outcome:
    """The first `classify` case that holds names the trigger and adds its categories."""
    rule = c.c.rule
    field_cats = c.c.field_cats
    cats = found.cats
    for target in found.present:
        spec_cats = field_cats.get(target)
        if spec_cats:
            cats.update(spec_cats)
    trigger = None
    marks: tuple[str, ...] = ()
    static = not c.c.refs.fallback
    for k in c.cases_for(name):
        case = rule.classify[k]
        # shape and name decide unless a present field's value is tested
        if not c.c.static_cases[k] or (
                (case.equals is not None or case.matches is not None)
                and Target(CASE, k) in found.present):
            static = False
        if case.field is None or field_holds(case, Target(CASE, k), found, flow_found):
            # `unknown` classifies (categories, marks) without naming a trigger
            trigger = case.trigger if case.trigger != "unknown" else None
            cats.update(case.categories)
            marks = case.marks
            break
    hit = EventHit(name, rule.id, trigger, tuple(sorted(cats)), plan.prefix)
    return _Outcome(hit, marks, frozenset(cats), static)


def _plan_name(plan: _GroupPlan, values: list[Any]) -> str | None:
    """The event name from this flow's values at the plan's `event` positions."""
    for positions in plan.names:
        name = first_name(values[i] for i in positions)
        if name is not None:
            return name
    return None


def evaluate_fast(c: FastRule, view: RuleInput) -> RuleHit | None:
    rule = c.c.rule
    flow_found = _collect_flow_level(c, view)
    events: list[EventHit] = []
    marks: list[str] = list(rule.marks)
    categories: set[str] = set()
    plans = view.plans(c)
    values = view.values if plans else []
    for plan in plans:
        if plan.literal is not None:
            # cheap look-up first: most items of a shared batch belong to other rules
            if first_name(values[i] for i in plan.literal) is None:
                continue
        if not plan.filled:
            _fill(c, view, plan)
        outcome = None
        if c.c.refs.fallback:
            found = _collect(c, view, plan)
            name = _event_name(c, found) if c.c.event_count else rule.id
        else:  # names come from the leaves at known positions
            name = _plan_name(plan, values) if c.c.event_count else rule.id
            if name is not None:
                outcome = plan.outcomes.get(name)
                if outcome is None:
                    found = _collect(c, view, plan)
        if name is None:
            continue  # not an event this rule knows: absent is never a match
        if outcome is None:
            outcome = _classify_event(c, plan, name, found, flow_found)
            if outcome.static and plan.kept:
                view.pool.remember(plan.outcomes, name, outcome)
        events.append(outcome.hit)
        marks.extend(outcome.marks)
        categories |= outcome.categories
    if not events and (c.c.event_count or rule.each is not None):
        # An opaque body hides its events, not its endpoint: a vendor rule whose
        # domains and filter matched still explains the flow (fallback rules read
        # only the body, so they do not).
        if view.payload.opaque is None or c.c.pack.fallback:
            return None
    elif not events:
        events.append(EventHit(rule.id, rule.id, None, (), ()))
    if flow_found.present:
        for target, spec_cats in c.c.field_targets:
            if target in flow_found.present:
                categories.update(spec_cats)
    return RuleHit(rule, events, categories, list(dict.fromkeys(marks)))
