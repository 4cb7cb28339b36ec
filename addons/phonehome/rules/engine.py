"""The rule engine: which rules explain a flow, and what they say about it.

Per flow: pick candidate rules (by `match.domains`, a dict lookup, then
`match.filter` with mitmproxy's flowfilter), split the body into events
(`each`), name each event (`event`), pick its trigger from the first matching
`classify` case, and collect categories from the `fields` present. All paths
were compiled at load time into tries walked over the decoder's leaves.

Telemetry repeats itself, so what depends on one thing only is remembered in
bounded memo tables (memo.py): candidate rules and party per host; filter
verdicts per request line (filters.py); per exact leaf path, its `each`
prefixes and the references it reaches; per body shape (the exact tuple of
body leaf paths), the events and what their leaves reach; per event shape and
name, the outcome when no value is tested; cases per event name. Per flow
only the values are read. Memos never change a result: tests compare with a
rule set that remembers nothing (`memo_limit=0`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..capture.request_view import request_flow, request_line
from ..model import (
    TRIGGER_SPECIFICITY,
    Classification,
    EventHit,
    Leaf,
    Observation,
    PathPart,
    Payload,
)
from ..terms import strongest_action
from . import patterns
from .filters import Partial, partial_verdict
from .memo import DEFAULT_LIMIT, MemoPool, lookup_all
from .party import (
    Attribution,
    DomainResolver,
    PartyEntry,
    PartyIndex,
    attribute,
    host_suffixes,
    is_ip_or_local,
)
from .paths import Trie, find_paths, has_scalar, subtree, walk_leaves
from .schema import Case, FieldRef, Pack, Rule, scalar_text
from .vocabulary import Vocabulary

__all__ = ["RuleSet", "RuleHit", "Evaluation", "TRIGGER_SPECIFICITY", "most_specific"]

_RANK = {name: rank for rank, name in enumerate(TRIGGER_SPECIFICITY)}
_FLOW_SOURCES = ("query", "header", "cookie")


def most_specific(triggers: Iterable[str | None]) -> str | None:
    best: str | None = None
    for trigger in triggers:
        if trigger is not None and (best is None or _RANK[trigger] < _RANK[best]):
            best = trigger
    return best


# --- compiled form of a rule --------------------------------------------------


@dataclass(slots=True)
class _RefSet:
    """Field references of one rule, split by how they are evaluated."""

    trie: Trie = field(default_factory=Trie)
    fallback: list[tuple[Any, Any]] = field(default_factory=list)  # (target, ParsedPath)
    keys: list[tuple[Any, Any]] = field(default_factory=list)  # (target, matcher)
    sources: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)

    def add(self, ref: FieldRef, target: Any) -> None:
        if ref.kind == "path" and ref.path is not None:
            if ref.path.steps is not None:
                self.trie.add(ref.path.steps, target)
            else:
                self.fallback.append((target, ref.path))
        elif ref.name is not None:
            # `re:` patterns search (anchor them yourself); globs match the whole name
            test = ref.name.search if ref.text.startswith("re:") else ref.name.fullmatch
            if ref.kind == "key":
                self.keys.append((target, test))
            else:
                self.sources.setdefault(ref.kind, []).append((target, test))


_NO_HITS: tuple[tuple[Any, ...], tuple[Any, ...], frozenset[str]] = ((), (), frozenset())
"""The memo entry of a leaf path no reference of a rule reaches."""


@dataclass(slots=True)
class _Compiled:
    rule: Rule
    index: int
    pack: Pack
    each_trie: Trie | None
    refs: _RefSet
    event_count: int
    names: Any = None
    """One RE2 set of every case's name globs: a single call per event name."""
    name_cases: tuple[int, ...] = ()
    regexes: Any = None
    regex_cases: tuple[int, ...] = ()
    literal_events: tuple[tuple[PathPart, ...], ...] | None = None
    """The `event` paths as plain tuples, when all are plain (no wildcards)."""
    inputs: frozenset[str] = frozenset()
    """Request attributes `verdict` reads."""
    verdict: Partial | None = None
    """The filter's verdict from the request line alone (None when it has no say)."""
    valued: frozenset[Any] = frozenset()
    """Targets whose values are read (event names, cases with equals/matches)."""
    field_targets: tuple[tuple[Any, tuple[str, ...]], ...] = ()
    field_cats: dict[Any, tuple[str, ...]] = field(default_factory=dict)
    """("f", i) → the categories of field i."""
    body_work: bool = False
    """Whether the body leaves go through the trie or the key names."""
    static_cases: tuple[bool, ...] = ()
    """Per case: its field (if any) is a body path the trie reaches, so whether it
    is present depends on the event's leaf paths alone, never on flow-level leaves."""
    # memo tables, attached by the RuleSet that owns this rule
    pool: MemoPool | None = None
    leaf_tables: dict[int, dict[tuple[PathPart, ...], Any]] = field(default_factory=dict)
    """Per event offset: exact leaf path → (non-field targets reached, targets that
    take its value, field categories)."""
    each_table: dict[tuple[PathPart, ...], Any] | None = None
    """Leaf path → the `each` prefixes above it (shared by rules with the same `each`)."""
    name_table: dict[str, tuple[int, ...]] = field(default_factory=dict)
    flow_table: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """(source, name) of a non-body leaf → targets; source "" for key references."""

    def cases_by_name(self, name: str) -> frozenset[int]:
        """Indices of the cases whose `name`/`regex` condition holds for `name`."""
        hits: list[int] = []
        if self.names is not None:
            hits.extend(self.name_cases[i] for i in self.names.Match(name) or ())
        if self.regexes is not None:
            hits.extend(self.regex_cases[i] for i in self.regexes.Match(name) or ())
        return frozenset(hits)

    def attach(self, pool: MemoPool, each_tables: dict[str, dict[Any, Any]]) -> None:
        self.pool = pool
        self.name_table = pool.table()
        self.flow_table = pool.table()
        if self.each_trie is not None and self.rule.each is not None:
            table = each_tables.get(self.rule.each.text)
            if table is None:
                table = each_tables[self.rule.each.text] = pool.table()
            self.each_table = table

    def leaf_table(self, offset: int) -> dict[tuple[PathPart, ...], Any]:
        table = self.leaf_tables.get(offset)
        if table is None:
            assert self.pool is not None
            table = self.leaf_tables[offset] = self.pool.table()
        return table

    def cases_for(self, name: str) -> tuple[int, ...]:
        """In order, the cases that `name` does not rule out (memoized per name)."""
        found = self.name_table.get(name)
        if found is None:
            by_name = self.cases_by_name(name)
            found = tuple(k for k, case in enumerate(self.rule.classify)
                          if (case.names is None and case.regex is None) or k in by_name)
            if self.pool is not None:
                self.pool.remember(self.name_table, name, found)
        return found


def _compile(rule: Rule, index: int, pack: Pack) -> _Compiled:
    each_trie = None
    if rule.each is not None and rule.each.steps is not None:
        each_trie = Trie()
        each_trie.add(rule.each.steps, "each")
        each_trie.freeze()
    refs = _RefSet()
    for i, spec in enumerate(rule.fields):
        refs.add(spec.ref, ("f", i))
    for j, path in enumerate(rule.events):
        ref = FieldRef(path.text, "path", path=path)
        refs.add(ref, ("e", j))
    for k, case in enumerate(rule.classify):
        if case.field is not None:
            refs.add(case.field, ("c", k))
    refs.trie.freeze()
    compiled = _Compiled(rule, index, pack, each_trie, refs, len(rule.events))
    literal = [_literal(p.steps) for p in rule.events]
    if literal and all(p is not None for p in literal):
        compiled.literal_events = tuple(p for p in literal if p is not None)
    name_cases = [(k, c) for k, c in enumerate(rule.classify) if c.names is not None]
    if name_cases:
        compiled.names = patterns.compile_set(
            [patterns.globs_body(c.name_text) for _, c in name_cases], anchored=True)
        compiled.name_cases = tuple(k for k, _ in name_cases)
    regex_cases = [(k, c) for k, c in enumerate(rule.classify) if c.regex is not None]
    if regex_cases:
        compiled.regexes = patterns.compile_set(
            [c.regex.pattern for _, c in regex_cases], anchored=False)
        compiled.regex_cases = tuple(k for k, _ in regex_cases)
    if rule.filter is not None:
        compiled.inputs, compiled.verdict = partial_verdict(rule.filter)
    compiled.valued = frozenset(
        [("e", j) for j in range(len(rule.events))]
        + [("c", k) for k, case in enumerate(rule.classify)
           if case.field is not None and (case.equals is not None or case.matches is not None)])
    compiled.field_targets = tuple((("f", i), spec.categories)
                                   for i, spec in enumerate(rule.fields))
    compiled.field_cats = dict(compiled.field_targets)
    compiled.body_work = not refs.trie.empty or bool(refs.keys)
    compiled.static_cases = tuple(
        not refs.fallback and (case.field is None or case.field.kind == "path")
        for case in rule.classify)
    return compiled


def _literal(steps: Sequence[Any] | None) -> tuple[PathPart, ...] | None:
    if steps is None or any(st.kind not in ("key", "idx") or len(st.values) != 1
                            for st in steps):
        return None
    return tuple(next(iter(st.values)) for st in steps)


# --- per-flow evaluation ----------------------------------------------------------


@dataclass(slots=True)
class _Found:
    """What one scope (an event, or the flow's non-body leaves) holds.

    Body leaves reached through the memo record field targets (`("f", i)`)
    only as their categories, in `cats`; everything else is in `present`.
    """

    present: set[Any] = field(default_factory=set)
    values: dict[Any, list[Any]] = field(default_factory=dict)
    cats: set[str] = field(default_factory=set)

    def add(self, target: Any, value: Any, exact: bool) -> None:
        self.present.add(target)
        if exact:
            self.values.setdefault(target, []).append(value)


@dataclass(slots=True)
class RuleHit:
    """What one rule found in one flow."""

    rule: Rule
    events: list[EventHit]
    categories: set[str]
    marks: list[str]

    @property
    def trigger(self) -> str | None:
        return most_specific(hit.trigger for hit in self.events)


@dataclass(slots=True)
class Evaluation:
    classification: Classification
    hits: list[RuleHit]


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


class _FlowView:
    """The observation, its leaves split by source, and a lazily built flow."""

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

    def event_groups(self, c: _Compiled) -> list[Group]:
        """Events of a rule; rules that split with the same `each` share the work."""
        each = c.rule.each
        if each is None:
            return [((), tuple(range(len(self.paths))))]
        if c.each_trie is not None:
            groups = self.shape.groups.get(each.text)
            if groups is None:
                groups = self.shape.groups[each.text] = _trie_groups(c, self)
            return groups
        # a JSONPath `each` that is not compiled may test values: per flow
        groups = self._groups.get(each.text)
        if groups is None:
            groups = self._groups[each.text] = _found_groups(c, self)
        return groups

    def plans(self, c: _Compiled) -> list[_GroupPlan]:
        """The events of a rule, with the leaf positions its plain `event` paths read."""
        shaped = c.rule.each is None or c.each_trie is not None
        if shaped:
            plans = self.shape.plans.get(c.index)
            if plans is not None:
                return plans
        plans = []
        groups = self.event_groups(c)
        first = self.first_positions() if c.literal_events is not None else {}
        for prefix, positions in groups:
            literal = None
            if c.literal_events is not None:
                literal = tuple(first.get(prefix + p, -1) for p in c.literal_events)
            plans.append(_GroupPlan(prefix, positions, literal, kept=shaped))
        if shaped:
            self.shape.plans[c.index] = plans
            self.pool.added(len(plans) + 1)
        return plans


def _leaf_entries(c: _Compiled, leaves: Sequence[Leaf], offset: int) -> list[Any]:
    """Per leaf: (targets reached, targets that take its value, field categories).

    A function of the leaf's path alone (relative at `offset`), so it is memoized
    per exact path tuple. Field targets only count through their categories.
    Values are per target and a target is reached one way only (trie or key
    name), so doing both for one leaf before the next keeps every value order.
    """
    refs = c.refs
    trie_hits: list[list[tuple[Any, bool]]] = [[] for _ in leaves]
    if not refs.trie.empty:
        rel = [leaf.path[offset:] for leaf in leaves]
        for position, hits in walk_leaves(refs.trie, rel):
            if hits:
                full = len(rel[position])
                trie_hits[position] = [(target, depth == full) for target, depth in hits]
    valued_targets = c.valued
    field_cats = c.field_cats
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


def _fill(c: _Compiled, view: _FlowView, plan: _GroupPlan) -> None:
    """Work out what the leaves of one event reach, from the per-path memo."""
    if c.body_work:
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
        plan.names = tuple(tuple(valued.get(("e", j), ())) for j in range(c.event_count))
    plan.filled = True


def _collect(c: _Compiled, view: _FlowView, plan: _GroupPlan) -> _Found:
    """What one event holds for a rule: memoized reach, this flow's values."""
    if not plan.filled:
        _fill(c, view, plan)
    values = view.values
    found = _Found(set(plan.present),
                   {target: [values[i] for i in positions] for target, positions in plan.valued},
                   set(plan.cats))
    if c.refs.fallback:
        node = subtree(view.payload.tree, plan.prefix)
        for target, parsed in c.refs.fallback:
            for _path, value in find_paths(parsed, node):
                if isinstance(value, (dict, list)):
                    if has_scalar(value):
                        found.present.add(target)
                else:
                    found.add(target, value, True)
    return found


def _collect_flow_level(c: _Compiled, view: _FlowView) -> _Found:
    found = _Found()
    refs = c.refs
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


def _trie_groups(c: _Compiled, view: _FlowView) -> list[Group]:
    """Events under a compiled `each`: prefixes per leaf path come from the memo."""
    assert c.each_trie is not None and c.each_table is not None
    trie = c.each_trie
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


def _found_groups(c: _Compiled, view: _FlowView) -> list[Group]:
    """Events under an `each` that jsonpath-ng evaluates on the tree."""
    assert c.rule.each is not None
    groups: dict[tuple[PathPart, ...], list[int]] = {}
    for prefix, value in find_paths(c.rule.each, view.payload.tree):
        if not isinstance(value, (dict, list)) or has_scalar(value):
            groups.setdefault(prefix, [])
    lengths = sorted({len(p) for p in groups})
    for position, path in enumerate(view.paths):
        for length in lengths:
            group = groups.get(path[:length])
            if group is not None:
                group.append(position)
    return [(prefix, tuple(positions)) for prefix, positions in groups.items() if positions]


def _field_holds(case: Case, k: int, found: _Found, flow: _Found) -> bool:
    """Whether a case's `field` (with its equals/matches) holds; the name test is done."""
    target = ("c", k)
    if target not in found.present and target not in flow.present:
        return False
    values = found.values.get(target, []) + flow.values.get(target, [])
    if case.equals is not None and not any(scalar_text(v) in case.equals for v in values):
        return False
    if case.matches is not None and not any(
        case.matches.search(scalar_text(v)) for v in values
    ):
        return False
    return True


def _first_name(values: Iterable[Any]) -> str | None:
    """The first usable event name: a non-empty string or a number."""
    for value in values:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return scalar_text(value)
    return None


def _event_name(c: _Compiled, found: _Found) -> str | None:
    for j in range(c.event_count):
        name = _first_name(found.values.get(("e", j), ()))
        if name is not None:
            return name
    return None


def _classify_event(c: _Compiled, plan: _GroupPlan, name: str, found: _Found,
                    flow_found: _Found) -> _Outcome:
    """The first `classify` case that holds names the trigger and adds its categories."""
    rule = c.rule
    field_cats = c.field_cats
    cats = found.cats
    for target in found.present:
        spec_cats = field_cats.get(target)
        if spec_cats:
            cats.update(spec_cats)
    trigger = None
    marks: tuple[str, ...] = ()
    static = not c.refs.fallback
    for k in c.cases_for(name):
        case = rule.classify[k]
        # shape and name decide unless a present field's value is tested
        if not c.static_cases[k] or (
                (case.equals is not None or case.matches is not None)
                and ("c", k) in found.present):
            static = False
        if case.field is None or _field_holds(case, k, found, flow_found):
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
        name = _first_name(values[i] for i in positions)
        if name is not None:
            return name
    return None


def _evaluate_rule(c: _Compiled, view: _FlowView) -> RuleHit | None:
    rule = c.rule
    flow_found = _collect_flow_level(c, view)
    events: list[EventHit] = []
    marks: list[str] = list(rule.marks)
    categories: set[str] = set()
    plans = view.plans(c)
    values = view.values if plans else []
    for plan in plans:
        if plan.literal is not None:
            # cheap look-up first: most items of a shared batch belong to other rules
            if _first_name(values[i] for i in plan.literal) is None:
                continue
        if not plan.filled:
            _fill(c, view, plan)
        outcome = None
        if c.refs.fallback:
            found = _collect(c, view, plan)
            name = _event_name(c, found) if c.event_count else rule.id
        else:  # names come from the leaves at known positions
            name = _plan_name(plan, values) if c.event_count else rule.id
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
    if not events and (c.event_count or rule.each is not None):
        # An opaque body hides its events, not its endpoint: a vendor rule whose
        # domains and filter matched still explains the flow (fallback rules read
        # only the body, so they do not).
        if view.payload.opaque is None or c.pack.fallback:
            return None
    elif not events:
        events.append(EventHit(rule.id, rule.id, None, (), ()))
    if flow_found.present:
        for target, spec_cats in c.field_targets:
            if target in flow_found.present:
                categories.update(spec_cats)
    return RuleHit(rule, events, categories, list(dict.fromkeys(marks)))


# --- the rule set -----------------------------------------------------------------


class _Plan:
    """The rules to try for one host, and how to key their remembered filter verdicts."""

    __slots__ = ("rules", "tag", "settled", "verdicts", "pool")

    def __init__(self, rules: Sequence[_Compiled], tag: str,
                 verdicts: dict[Any, tuple[bool | None, ...]], pool: MemoPool) -> None:
        self.rules = tuple(rules)
        self.tag = tag
        self.verdicts = verdicts
        self.pool = pool
        self.settled = any(c.verdict is not None for c in self.rules)
        """Whether the request line can settle some rule's filter."""

    def filter_verdicts(self, view: _FlowView) -> tuple[bool | None, ...] | None:
        """Per rule: True/False when the request line settles its filter, else None."""
        if not self.settled:
            return None
        key = (self.tag, request_line(view.obs))
        verdicts = self.verdicts.get(key)
        if verdicts is None:
            flow = view.flow
            verdicts = tuple(True if c.rule.filter is None
                             else c.verdict(flow) if c.verdict is not None
                             else None
                             for c in self.rules)
            self.pool.remember(self.verdicts, key, verdicts)
        return verdicts


class RuleSet:
    """Loaded, validated and compiled packs.

    The rules never change; the memo tables behind `classify` are bounded
    (`memo_limit` entries in all) and never change a result, so a RuleSet is
    safe to share. `app` is the audited app (a first-party pack id, see
    `apps`): its vendor is the first party; None leaves every app vendor first
    until the report picks one.
    """

    def __init__(self, packs: Sequence[Pack], resolver: DomainResolver, *,
                 memo_limit: int = DEFAULT_LIMIT, app: str | None = None) -> None:
        self.packs: tuple[Pack, ...] = tuple(packs)
        self.apps: tuple[str, ...] = tuple(
            p.id for p in self.packs if p.party == "first" and not p.fallback
            and (p.domains or any(r.domains for r in p.rules)))
        """The apps a pack describes: first-party packs that own domains."""
        if app is not None and app not in self.apps:
            raise ValueError(f"unknown app {app!r}: no loaded first-party pack has that id "
                             f"(apps: {', '.join(self.apps) or 'none'})")
        self.app = app
        self.rules: tuple[Rule, ...] = tuple(r for p in self.packs for r in p.rules)
        self._resolver = resolver
        self._pool = MemoPool(memo_limit)
        compiled: list[_Compiled] = []
        each_tables: dict[str, dict[Any, Any]] = {}
        for pack in self.packs:
            for rule in pack.rules:
                c = _compile(rule, len(compiled), pack)
                c.attach(self._pool, each_tables)
                compiled.append(c)
        self._packs_by_id = {pack.id: pack for pack in self.packs}
        self.vocabulary = Vocabulary.combine(p.vocabulary for p in self.packs if p.vocabulary)
        self._main = [c for c in compiled if not c.pack.fallback]
        self._fallback = [c for c in compiled if c.pack.fallback]
        self._by_domain: dict[str, list[_Compiled]] = {}
        self._anywhere: list[_Compiled] = []
        for c in self._main:
            if c.rule.domains:
                for domain in c.rule.domains:
                    self._by_domain.setdefault(domain, []).append(c)
            else:
                self._anywhere.append(c)
        entries: list[tuple[str, PartyEntry]] = []
        for pack in self.packs:
            if pack.fallback:
                continue
            for rule in pack.rules:
                org = rule.organization or pack.vendor or None
                entries.extend((d, PartyEntry(pack.party, org, pack.id)) for d in rule.domains)
            entries.extend((d, PartyEntry(pack.party, pack.vendor or None, pack.id))
                           for d in pack.domains)
        # Rule domains come first so a tracker's own organization wins.
        self._party = PartyIndex(entries, resolver)
        self._verdicts: dict[Any, tuple[bool | None, ...]] = self._pool.table()
        self._plans: dict[str, _Plan] = self._pool.table()
        self._hosts: dict[str, tuple[PartyEntry | None, bool]] = self._pool.table()
        self._shapes: dict[tuple[tuple[PathPart, ...], ...], _Shape] = self._pool.table()
        self._fallback_plan = _Plan(self._fallback, "\0fallback", self._verdicts,
                                    self._pool)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def pack_of(self, rule_id: str) -> Pack:
        for pack in self.packs:
            if any(r.id == rule_id for r in pack.rules):
                return pack
        raise KeyError(rule_id)

    def _candidates(self, host: str) -> list[_Compiled]:
        found: dict[int, _Compiled] = {c.index: c for c in self._anywhere}
        if self._by_domain:
            for suffix in host_suffixes(host):
                for c in self._by_domain.get(suffix, ()):
                    found[c.index] = c
        return [found[i] for i in sorted(found)]

    def _plan(self, host: str) -> _Plan:
        plan = self._plans.get(host)
        if plan is None:
            plan = _Plan(self._candidates(host), host, self._verdicts, self._pool)
            self._pool.remember(self._plans, host, plan)
        return plan

    def _run(self, plan: _Plan, view: _FlowView) -> list[RuleHit]:
        hits = []
        verdicts = plan.filter_verdicts(view) if plan.rules else None
        for i, c in enumerate(plan.rules):
            verdict = verdicts[i] if verdicts is not None else None
            if verdict is None:
                verdict = c.rule.filter is None or bool(c.rule.filter(view.flow))
            if not verdict:
                continue
            hit = _evaluate_rule(c, view)
            if hit is not None:
                hits.append(hit)
        return hits

    def evaluate(self, obs: Observation, payload: Payload) -> Evaluation:
        """Classification plus what each rule found (used by the rule tests)."""
        view = _FlowView(obs, payload, self._pool, self._shapes)
        host = (obs.host or "").lower()
        hits = self._run(self._plan(host), view)
        explained = any(self.pack_of_hit(h).party == "first" for h in hits)
        fallback_hits: list[RuleHit] = []
        if not explained and self._fallback:
            fallback_hits = self._run(self._fallback_plan, view)
        all_hits = hits + fallback_hits
        return Evaluation(self._summarize(host, hits, fallback_hits), all_hits)

    def pack_of_hit(self, hit: RuleHit) -> Pack:
        return self._packs_by_id[hit.rule.pack]

    def classify(self, obs: Observation, payload: Payload) -> Classification:
        return self.evaluate(obs, payload).classification

    def _summarize(self, host: str, hits: list[RuleHit],
                   fallback_hits: list[RuleHit]) -> Classification:
        result = Classification()
        all_hits = hits + fallback_hits
        result.rule_ids = [h.rule.id for h in all_hits]
        result.events = [self._named(e) for h in all_hits for e in h.events]
        trigger = most_specific(e.trigger for e in result.events)
        if trigger is not None:
            result.trigger, result.trigger_source = trigger, "rule"
        result.categories = sorted({cat for h in all_hits for cat in h.categories})
        result.marks = list(dict.fromkeys(m for h in all_hits for m in h.marks))
        if hits:
            result.purpose = hits[0].rule.purpose
        elif fallback_hits:
            result.purpose = fallback_hits[0].rule.purpose
        result.action = strongest_action(h.rule.action for h in all_hits)
        where = self.attribute(host)
        result.party, result.organization = where.party, where.organization
        result.vendor_pack = where.vendor_pack
        return result

    def _named(self, event: EventHit) -> EventHit:
        """The event with what its name says, when no rule gave it a trigger."""
        if event.trigger is not None or event.name == event.rule_id or not self.vocabulary:
            return event
        verdict = self.vocabulary.judge(event.name)
        if verdict.trigger is None and not verdict.candidates:
            return event
        return replace(event, name_trigger=verdict.trigger, name_confidence=verdict.confidence,
                       name_candidates=verdict.candidates, name_reason=verdict.reason,
                       name_marks=verdict.marks)

    def _host_party(self, host: str) -> tuple[PartyEntry | None, bool]:
        """(the packs' entry for `host`, whether `host` has no registrable domain)."""
        known = self._hosts.get(host)
        if known is None:
            entry = self._party.lookup(host) if host else None
            no_domain = entry is None and (
                not host or is_ip_or_local(host) or self._resolver.registrable(host) is None)
            known = self._pool.remember(self._hosts, host, (entry, no_domain))
        return known

    def attribute(self, host: str) -> Attribution:
        """The host's party and organization: from the host alone, never from a rule
        that matched on the path."""
        entry, no_domain = self._host_party(host)
        return attribute(entry, not no_domain, self.app)
