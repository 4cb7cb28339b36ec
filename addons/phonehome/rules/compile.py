"""A rule compiled for evaluation: its references by kind, its case names in RE2 sets.

Every place a rule reads (a field, an `event` path, a case's `field`) is a `Target`.
Compiled paths share one trie per rule; paths with constructs the trie lacks fall back
to jsonpath-ng on the tree; key names and header/query/cookie names are matchers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..model import PathPart
from . import patterns
from .filters import Partial, partial_verdict
from .paths import ParsedPath, Step, Trie
from .schema import FieldRef, Pack, Rule

__all__ = ["CASE", "EVENT", "FIELD", "CompiledRule", "RefSet", "Target", "compile_rule"]

FIELD, EVENT, CASE = "field", "event", "case"


class Target(NamedTuple):
    """One place a rule reads: its `fields` entry, `event` path or classify case `index`."""

    kind: str
    """FIELD, EVENT or CASE."""
    index: int


@dataclass(slots=True)
class RefSet:
    """Field references of one rule, split by how they are evaluated."""

    trie: Trie = field(default_factory=Trie)
    fallback: list[tuple[Target, ParsedPath]] = field(default_factory=list)
    keys: list[tuple[Target, Any]] = field(default_factory=list)
    """(target, name test) for key-name references, matched against the nearest key."""
    sources: dict[str, list[tuple[Target, Any]]] = field(default_factory=dict)
    """"header"/"query"/"cookie" → (target, name test)."""

    def add(self, ref: FieldRef, target: Target) -> None:
        if ref.kind == "path" and ref.path is not None:
            if ref.path.steps is not None:
                self.trie.add(ref.path.steps, target)
            else:
                self.fallback.append((target, ref.path))
        elif ref.name is not None:
            test = name_test(ref)
            if ref.kind == "key":
                self.keys.append((target, test))
            else:
                self.sources.setdefault(ref.kind, []).append((target, test))


def name_test(ref: FieldRef) -> Any:
    """How a name reference tests a name: `re:` patterns search (anchor them yourself);
    globs match the whole name."""
    assert ref.name is not None
    return ref.name.search if ref.text.startswith("re:") else ref.name.fullmatch


def references(rule: Rule) -> list[tuple[Target, FieldRef]]:
    """Every place the rule reads, with its target: fields, `event` paths, case fields."""
    refs = [(Target(FIELD, i), spec.ref) for i, spec in enumerate(rule.fields)]
    refs.extend((Target(EVENT, j), FieldRef(path.text, "path", path=path))
                for j, path in enumerate(rule.events))
    refs.extend((Target(CASE, k), case.field) for k, case in enumerate(rule.classify)
                if case.field is not None)
    return refs


@dataclass(slots=True)
class CompiledRule:
    """What evaluation needs of a rule, worked out once at load."""

    rule: Rule
    index: int
    """Load order: candidates are tried in it."""
    pack: Pack
    each_trie: Trie | None
    refs: RefSet
    event_count: int
    names: Any = None
    """One RE2 set of every case's name globs: a single call per event name."""
    name_cases: tuple[int, ...] = ()
    regexes: Any = None
    regex_cases: tuple[int, ...] = ()
    literal_events: tuple[tuple[PathPart, ...], ...] | None = None
    """The `event` paths as plain tuples, when all are plain (no wildcards)."""
    verdict: Partial | None = None
    """The filter's verdict from the request line alone (None when it has no say)."""
    valued: frozenset[Target] = frozenset()
    """Targets whose values are read (event names, cases with equals/matches)."""
    field_targets: tuple[tuple[Target, tuple[str, ...]], ...] = ()
    field_cats: dict[Target, tuple[str, ...]] = field(default_factory=dict)
    """A field's target → its categories."""
    body_work: bool = False
    """Whether the body leaves go through the trie or the key names."""
    static_cases: tuple[bool, ...] = ()
    """Per case: its field (if any) is a body path the trie reaches, so whether it
    is present depends on the event's leaf paths alone, never on flow-level leaves."""

    def cases_by_name(self, name: str) -> frozenset[int]:
        """Indices of the cases whose `name`/`regex` condition holds for `name`."""
        hits: list[int] = []
        if self.names is not None:
            hits.extend(self.name_cases[i] for i in self.names.Match(name) or ())
        if self.regexes is not None:
            hits.extend(self.regex_cases[i] for i in self.regexes.Match(name) or ())
        return frozenset(hits)


def compile_rule(rule: Rule, index: int, pack: Pack) -> CompiledRule:
    each_trie = None
    if rule.each is not None and rule.each.steps is not None:
        each_trie = Trie()
        each_trie.add(rule.each.steps, "each")
        each_trie.freeze()
    refs = RefSet()
    for target, ref in references(rule):
        refs.add(ref, target)
    refs.trie.freeze()
    compiled = CompiledRule(rule, index, pack, each_trie, refs, len(rule.events))
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
        compiled.verdict = partial_verdict(rule.filter)[1]
    compiled.valued = frozenset(
        [Target(EVENT, j) for j in range(len(rule.events))]
        + [Target(CASE, k) for k, case in enumerate(rule.classify)
           if case.field is not None and (case.equals is not None or case.matches is not None)])
    compiled.field_targets = tuple((Target(FIELD, i), spec.categories)
                                   for i, spec in enumerate(rule.fields))
    compiled.field_cats = dict(compiled.field_targets)
    compiled.body_work = not refs.trie.empty or bool(refs.keys)
    compiled.static_cases = tuple(
        not refs.fallback and (case.field is None or case.field.kind == "path")
        for case in rule.classify)
    return compiled


def _literal(steps: Sequence[Step] | None) -> tuple[PathPart, ...] | None:
    if steps is None or any(st.kind not in ("key", "idx") or len(st.values) != 1
                            for st in steps):
        return None
    return tuple(next(iter(st.values)) for st in steps)
