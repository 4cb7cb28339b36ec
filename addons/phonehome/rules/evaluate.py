"""What a rule makes of a flow, written plainly: the reference the fast path must equal.

Split the body into events (`each`), name each (`event`), take the first `classify`
case that holds, collect the categories of the fields present. A path finds a leaf
when it matches the leaf's path or a prefix of it; only an exact match gives a value.
"""


from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import TRIGGER_SPECIFICITY, Classification, EventHit, Leaf, PathPart, Payload
from .compile import CASE, EVENT, FIELD, CompiledRule, Target, name_test, references
from .paths import ANY, DESC, Step, find_paths, has_scalar, subtree
from .schema import Case, Rule, scalar_text

__all__ = ["Evaluation", "RuleHit", "Found", "evaluate_plainly", "first_name",
           "most_specific", "field_holds"]

_RANK = {name: rank for rank, name in enumerate(TRIGGER_SPECIFICITY)}


def most_specific(triggers: Iterable[str | None]) -> str | None:
    best: str | None = None
    for trigger in triggers:
        if trigger is not None and (best is None or _RANK[trigger] < _RANK[best]):
            best = trigger
    return best


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


@dataclass(slots=True)
class Found:
    """What one scope (an event, or the flow's non-body leaves) holds: the targets
    present and, per target, the values of the leaves it matched exactly."""

    present: set[Any] = field(default_factory=set)
    values: dict[Any, list[Any]] = field(default_factory=dict)
    cats: set[str] = field(default_factory=set)

    def add(self, target: Any, value: Any, exact: bool) -> None:
        self.present.add(target)
        if exact:
            self.values.setdefault(target, []).append(value)


def first_name(values: Iterable[Any]) -> str | None:
    """The first usable event name: a non-empty string or a number."""
    for value in values:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return scalar_text(value)
    return None


def field_holds(case: Case, target: Target, found: Found, flow: Found) -> bool:
    """Whether a case's `field` (with its equals/matches) holds; the name test is done."""
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


# --- the reference ------------------------------------------------------------------


def prefix_depths(steps: Sequence[Step], parts: Sequence[PathPart], at: int = 0) -> set[int]:
    """Every length d such that the compiled path matches `parts[:d]` (from `at`)."""
    if not steps:
        return {at}
    step, rest = steps[0], steps[1:]
    if step.kind == DESC:
        return set().union(*(prefix_depths(rest, parts, i) for i in range(at, len(parts) + 1)))
    if at == len(parts):
        return set()
    part = parts[at]
    if step.kind == ANY or (part in step.values and not isinstance(part, bool)):
        return prefix_depths(rest, parts, at + 1)
    return set()


def _events(c: CompiledRule, tree: Any, body: list[Leaf]) -> list[tuple[tuple, list[Leaf]]]:
    """(prefix, leaves) of every event: the whole body, or each node `each` finds."""
    each = c.rule.each
    if each is None:
        return [((), body)]
    groups: dict[tuple[PathPart, ...], list[Leaf]] = {}
    if each.steps is not None:
        for leaf in body:
            for depth in sorted(prefix_depths(each.steps, leaf.path)):
                groups.setdefault(leaf.path[:depth], []).append(leaf)
        return list(groups.items())
    for prefix, value in find_paths(each, tree):
        if not isinstance(value, (dict, list)) or has_scalar(value):
            groups.setdefault(prefix, [])
    for prefix, members in groups.items():
        members.extend(leaf for leaf in body if leaf.path[:len(prefix)] == prefix)
    return [(prefix, members) for prefix, members in groups.items() if members]


def _event_found(c: CompiledRule, tree: Any, prefix: tuple, leaves: list[Leaf]) -> Found:
    found = Found()
    for target, ref in references(c.rule):
        if ref.kind == "path" and ref.path is not None and ref.path.steps is not None:
            for leaf in leaves:
                rel = leaf.path[len(prefix):]
                depths = prefix_depths(ref.path.steps, rel)
                if depths:
                    found.add(target, leaf.value, len(rel) in depths)
        elif ref.kind == "path" and ref.path is not None:
            for _path, value in find_paths(ref.path, subtree(tree, prefix)):
                if not isinstance(value, (dict, list)):
                    found.add(target, value, True)
                elif has_scalar(value):
                    found.present.add(target)
        elif ref.kind == "key" and ref.name is not None:
            test = name_test(ref)
            for leaf in leaves:
                if leaf.key and test(leaf.key):
                    found.add(target, leaf.value, True)
    return found


def _flow_found(c: CompiledRule, others: list[Leaf]) -> Found:
    """What the query, header and cookie leaves hold (key names: the query's only)."""
    found = Found()
    for target, ref in references(c.rule):
        if ref.name is None or ref.kind == "path":
            continue
        source = "query" if ref.kind == "key" else ref.kind
        test = name_test(ref)
        for leaf in others:
            if leaf.source == source and test(leaf.key):
                found.add(target, leaf.value, True)
    return found


def _cases_for(rule: Rule, name: str) -> list[tuple[int, Case]]:
    return [(k, case) for k, case in enumerate(rule.classify)
            if (case.names is None and case.regex is None)
            or (case.names is not None and case.names.search(name))
            or (case.regex is not None and case.regex.search(name))]


def evaluate_plainly(c: CompiledRule, payload: Payload) -> RuleHit | None:
    """What the rule finds in a flow whose domains and filter it matched."""
    rule = c.rule
    body = [leaf for leaf in payload.leaves if leaf.source == "body"]
    flow = _flow_found(c, [leaf for leaf in payload.leaves if leaf.source != "body"])
    events: list[EventHit] = []
    marks = list(rule.marks)
    categories: set[str] = set()
    for prefix, leaves in _events(c, payload.tree, body):
        found = _event_found(c, payload.tree, prefix, leaves)
        name = rule.id
        if rule.events:
            name = next((n for j in range(len(rule.events))
                         if (n := first_name(found.values.get(Target(EVENT, j), ())))), None)
        if name is None:
            continue  # not an event this rule knows: absent is never a match
        cats = {cat for target, cats in c.field_targets if target in found.present
                for cat in cats}
        trigger = None
        for k, case in _cases_for(rule, name):
            if case.field is None or field_holds(case, Target(CASE, k), found, flow):
                trigger = case.trigger if case.trigger != "unknown" else None
                cats.update(case.categories)
                marks.extend(case.marks)
                break
        events.append(EventHit(name, rule.id, trigger, tuple(sorted(cats)), prefix))
        categories |= cats
    if not events and (rule.events or rule.each is not None):
        # an opaque body hides its events, not its endpoint (vendor packs only)
        if payload.opaque is None or c.pack.fallback:
            return None
    elif not events:
        events.append(EventHit(rule.id, rule.id, None, (), ()))
    categories.update(cat for target, cats in c.field_targets
                      if target.kind == FIELD and target in flow.present for cat in cats)
    return RuleHit(rule, events, categories, list(dict.fromkeys(marks)))
