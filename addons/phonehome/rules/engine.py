"""The rule engine: which rules explain a flow, and what they say about it.

Per flow: pick candidate rules (by `match.domains`, a dict lookup, then
`match.filter` with mitmproxy's flowfilter), split the body into events
(`each`), name each event (`event`), pick its trigger from the first matching
`classify` case, and collect categories from the `fields` present. All paths
were compiled at load time into tries walked over the decoder's leaves.

Telemetry repeats itself, so what depends on one thing only is remembered in
bounded memo tables (memo.py): candidate rules and party per host, filter
verdicts per request line (filters.py), `each` prefixes and the references a
leaf path reaches per exact path tuple, cases per event name. Memos never
change a result; tests compare against fresh rule sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import Classification, EventHit, Leaf, Observation, PathPart, Payload
from . import patterns
from .filters import filter_inputs, request_reader
from .memo import DEFAULT_LIMIT, MemoPool, lookup_all
from .party import DomainResolver, PartyEntry, PartyIndex, host_suffixes, is_ip_or_local
from .paths import Trie, find_paths, has_scalar, subtree, walk_leaves
from .schema import Case, FieldRef, Pack, Rule, scalar_text

__all__ = ["RuleSet", "RuleHit", "Evaluation", "TRIGGER_SPECIFICITY", "most_specific"]

TRIGGER_SPECIFICITY = (
    "error",
    "screen_share",
    "meeting_create",
    "meeting_join",
    "meeting_leave",
    "sign_in",
    "setup",
    "app_start",
    "shutdown",
    "collaboration",
    "in_meeting",
    "periodic",
    "unknown",
)
"""Most specific first: a flow's trigger is the first of these among its events."""

_RANK = {name: rank for rank, name in enumerate(TRIGGER_SPECIFICITY)}
_ACTION_RANK = {"observe": 0, "redact": 1, "block": 2}
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


_NO_HITS: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ())
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
    inputs: frozenset[str] | None = frozenset()
    """Request attributes the filter reads (empty: no filter); None: it reads more."""
    valued: frozenset[Any] = frozenset()
    """Targets whose values are read (event names, cases with equals/matches)."""
    field_targets: tuple[tuple[Any, tuple[str, ...]], ...] = ()
    body_work: bool = False
    """Whether the body leaves go through the trie or the key names."""
    # memo tables, attached by the RuleSet that owns this rule
    pool: MemoPool | None = None
    leaf_tables: dict[int, dict[tuple[PathPart, ...], Any]] = field(default_factory=dict)
    """Per event offset: exact leaf path → (targets reached, targets with a value)."""
    each_table: dict[tuple[PathPart, ...], Any] | None = None
    """Leaf path → the `each` prefixes above it (shared by rules with the same `each`)."""
    name_table: dict[str, frozenset[int]] = field(default_factory=dict)
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

    def cases_for(self, name: str) -> frozenset[int]:
        found = self.name_table.get(name)
        if found is None:
            found = self.cases_by_name(name)
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
        compiled.inputs = filter_inputs(rule.filter)
    compiled.valued = frozenset(
        [("e", j) for j in range(len(rule.events))]
        + [("c", k) for k, case in enumerate(rule.classify)
           if case.field is not None and (case.equals is not None or case.matches is not None)])
    compiled.field_targets = tuple((("f", i), spec.categories)
                                   for i, spec in enumerate(rule.fields))
    compiled.body_work = not refs.trie.empty or bool(refs.keys)
    return compiled


def _literal(steps: Sequence[Any] | None) -> tuple[PathPart, ...] | None:
    if steps is None or any(st.kind not in ("key", "idx") or len(st.values) != 1
                            for st in steps):
        return None
    return tuple(next(iter(st.values)) for st in steps)


# --- per-flow evaluation ----------------------------------------------------------


@dataclass(slots=True)
class _Found:
    """What one scope (an event, or the flow's non-body leaves) holds."""

    present: set[Any] = field(default_factory=set)
    values: dict[Any, list[Any]] = field(default_factory=dict)

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


class _FlowView:
    """The observation, its leaves split by source, and a lazily built flow."""

    def __init__(self, obs: Observation, payload: Payload) -> None:
        self.obs = obs
        self.payload = payload
        self.body: list[Leaf] = []
        self.other: dict[str, list[Leaf]] = {}
        for leaf in payload.leaves:
            if leaf.source == "body":
                self.body.append(leaf)
            else:
                self.other.setdefault(leaf.source, []).append(leaf)
        self._flow: Any = None
        self._key_memo: dict[tuple[int, str], list[Any]] = {}
        self._groups: dict[str, list[tuple[tuple[PathPart, ...], list[Leaf]]]] = {}
        self._indexes: dict[tuple[str, tuple[PathPart, ...]], dict[Any, Any]] = {}

    @property
    def flow(self) -> Any:
        if self._flow is None:
            self._flow = self.obs.flow if self.obs.flow is not None else synthesize_flow(self.obs)
        return self._flow

    def event_groups(self, c: _Compiled) -> list[tuple[tuple[PathPart, ...], list[Leaf]]]:
        """Events of a rule; rules that split with the same `each` share the work."""
        key = c.rule.each.text if c.rule.each is not None else ""
        groups = self._groups.get(key)
        if groups is None:
            groups = self._groups[key] = _event_groups(c, self)
        return groups

    def group_index(self, each: str, prefix: tuple[PathPart, ...],
                    leaves: list[Leaf]) -> dict[tuple[PathPart, ...], Any]:
        """relative path → value for one event's leaves (shared by rules)."""
        key = (each, prefix)
        index = self._indexes.get(key)
        if index is None:
            offset = len(prefix)
            index = self._indexes[key] = {}
            for leaf in leaves:
                index.setdefault(leaf.path[offset:], leaf.value)
        return index

    def key_targets(self, refs: _RefSet, key: str) -> list[Any]:
        memo_key = (id(refs), key)
        found = self._key_memo.get(memo_key)
        if found is None:
            found = [target for target, test in refs.keys if test(key)]
            self._key_memo[memo_key] = found
        return found


def synthesize_flow(obs: Observation) -> Any:
    """A minimal HTTPFlow for flowfilter matching of a flow-less Observation."""
    from mitmproxy import http
    from mitmproxy.test import tflow

    headers = [(k.encode("utf-8", "replace"), v.encode("utf-8", "replace"))
               for k, v in obs.headers]
    request = http.Request.make(obs.method or "GET", obs.url, obs.body or b"", headers)
    flow = tflow.tflow(req=request)
    flow.request.timestamp_start = obs.timestamp
    return flow


def _collect(refs: _RefSet, view: _FlowView, leaves: Sequence[Leaf], offset: int,
             prefix: tuple[PathPart, ...], found: _Found) -> None:
    """Fill `found` from the body leaves of one event (paths relative at `offset`)."""
    if not refs.trie.empty:
        rel = [leaf.path[offset:] for leaf in leaves]
        for position, hits in walk_leaves(refs.trie, rel):
            if hits:
                depth_full = len(rel[position])
                value = leaves[position].value
                for target, depth in hits:
                    found.add(target, value, depth == depth_full)
    if refs.keys:
        for leaf in leaves:
            key = leaf.key
            if key:
                for target in view.key_targets(refs, key):
                    found.add(target, leaf.value, True)
    if refs.fallback:
        node = subtree(view.payload.tree, prefix)
        for target, parsed in refs.fallback:
            for _path, value in find_paths(parsed, node):
                if isinstance(value, (dict, list)):
                    if has_scalar(value):
                        found.present.add(target)
                else:
                    found.add(target, value, True)


def _collect_flow_level(refs: _RefSet, view: _FlowView) -> _Found:
    found = _Found()
    for source, specs in refs.sources.items():
        for leaf in view.other.get(source, ()):
            name = leaf.key
            for target, test in specs:
                if test(name):
                    found.add(target, leaf.value, True)
    if refs.keys:
        for leaf in view.other.get("query", ()):
            for target in view.key_targets(refs, leaf.key):
                found.add(target, leaf.value, True)
    return found


def _event_groups(c: _Compiled, view: _FlowView) -> list[tuple[tuple[PathPart, ...], list[Leaf]]]:
    rule = c.rule
    if rule.each is None:
        return [((), view.body)]
    groups: dict[tuple[PathPart, ...], list[Leaf]] = {}
    if c.each_trie is not None:
        paths = [leaf.path for leaf in view.body]
        for position, hits in walk_leaves(c.each_trie, paths):
            for _target, depth in hits:
                groups.setdefault(paths[position][:depth], []).append(view.body[position])
        return list(groups.items())
    prefixes = [p for p, value in find_paths(rule.each, view.payload.tree)
                if not isinstance(value, (dict, list)) or has_scalar(value)]
    for prefix in prefixes:
        groups.setdefault(prefix, [])
    lengths = sorted({len(p) for p in groups})
    for leaf in view.body:
        for length in lengths:
            group = groups.get(leaf.path[:length])
            if group is not None:
                group.append(leaf)
    return [(p, leaves) for p, leaves in groups.items() if leaves]


def _case_holds(case: Case, k: int, by_name: frozenset[int], found: _Found,
                flow: _Found) -> bool:
    if (case.names is not None or case.regex is not None) and k not in by_name:
        return False
    if case.field is not None:
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


def _evaluate_rule(c: _Compiled, view: _FlowView) -> RuleHit | None:
    rule = c.rule
    refs = c.refs
    flow_found = _collect_flow_level(refs, view)
    events: list[EventHit] = []
    marks: list[str] = list(rule.marks)
    categories: set[str] = set()
    name_memo: dict[str, frozenset[int]] = {}
    each_key = rule.each.text if rule.each is not None else ""
    for prefix, leaves in view.event_groups(c):
        if c.literal_events is not None:
            # cheap look-up first: most items of a shared batch belong to other rules
            index = view.group_index(each_key, prefix, leaves)
            if _first_name(index.get(p) for p in c.literal_events) is None:
                continue
        found = _Found()
        _collect(refs, view, leaves, len(prefix), prefix, found)
        if c.event_count:
            name = _event_name(c, found)
            if name is None:
                continue  # not an event this rule knows: absent is never a match
        else:
            name = rule.id
        trigger = None
        cats = {cat for i, spec in enumerate(rule.fields) if ("f", i) in found.present
                for cat in spec.categories}
        by_name = name_memo.get(name)
        if by_name is None:
            by_name = name_memo[name] = c.cases_by_name(name)
        for k, case in enumerate(rule.classify):
            if _case_holds(case, k, by_name, found, flow_found):
                # `unknown` classifies (categories, marks) without naming a trigger
                trigger = case.trigger if case.trigger != "unknown" else None
                cats.update(case.categories)
                marks.extend(case.marks)
                break
        categories |= cats
        events.append(EventHit(name, rule.id, trigger, tuple(sorted(cats)), prefix))
    if not events and (c.event_count or rule.each is not None):
        return None
    if not events:
        events.append(EventHit(rule.id, rule.id, None, (), ()))
    for i, spec in enumerate(rule.fields):
        if ("f", i) in flow_found.present:
            categories.update(spec.categories)
    return RuleHit(rule, events, categories, list(dict.fromkeys(marks)))


# --- the rule set -----------------------------------------------------------------


class RuleSet:
    """Loaded, validated and compiled packs. Immutable; safe to share."""

    def __init__(self, packs: Sequence[Pack], resolver: DomainResolver) -> None:
        self.packs: tuple[Pack, ...] = tuple(packs)
        self.rules: tuple[Rule, ...] = tuple(r for p in self.packs for r in p.rules)
        self._resolver = resolver
        compiled: list[_Compiled] = []
        for pack in self.packs:
            for rule in pack.rules:
                compiled.append(_compile(rule, len(compiled), pack))
        self._packs_by_id = {pack.id: pack for pack in self.packs}
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
                entries.extend((d, PartyEntry(pack.party, org)) for d in rule.domains)
            entries.extend((d, PartyEntry(pack.party, pack.vendor or None))
                           for d in pack.domains)
        # Rule domains come first so a tracker's own organization wins.
        self._party = PartyIndex(entries, resolver)

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

    def _run(self, rules: Iterable[_Compiled], view: _FlowView) -> list[RuleHit]:
        hits = []
        for c in rules:
            if c.rule.filter is not None and not c.rule.filter(view.flow):
                continue
            hit = _evaluate_rule(c, view)
            if hit is not None:
                hits.append(hit)
        return hits

    def evaluate(self, obs: Observation, payload: Payload) -> Evaluation:
        """Classification plus what each rule found (used by the rule tests)."""
        view = _FlowView(obs, payload)
        host = (obs.host or "").lower()
        hits = self._run(self._candidates(host), view)
        explained = any(self.pack_of_hit(h).party == "first" for h in hits)
        fallback_hits: list[RuleHit] = []
        if not explained and self._fallback:
            fallback_hits = self._run(self._fallback, view)
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
        result.events = [e for h in all_hits for e in h.events]
        trigger = most_specific(e.trigger for e in result.events)
        if trigger is not None:
            result.trigger, result.trigger_source = trigger, "rule"
        result.categories = sorted({cat for h in all_hits for cat in h.categories})
        result.marks = list(dict.fromkeys(m for h in all_hits for m in h.marks))
        if hits:
            result.purpose = hits[0].rule.purpose
        elif fallback_hits:
            result.purpose = fallback_hits[0].rule.purpose
        actions = [h.rule.action for h in all_hits if h.rule.action]
        result.action = max(actions, key=_ACTION_RANK.__getitem__) if actions else None
        result.party, result.organization = self._attribute(host, hits)
        return result

    def _attribute(self, host: str, hits: list[RuleHit]) -> tuple[str, str | None]:
        entry = self._party.lookup(host) if host else None
        if entry is not None:
            return entry.party, entry.organization
        if not host or is_ip_or_local(host) or self._resolver.registrable(host) is None:
            # No domain to compare: a first-party vendor rule that matched still tells.
            for hit in hits:
                pack = self.pack_of_hit(hit)
                if pack.party == "first":
                    return "first", hit.rule.organization or pack.vendor or None
            return "unknown", None
        return "third", None
