"""Rule pack validation: YAML data → Pack/Rule values, every error with its place.

Everything that can be compiled is compiled here, once: flowfilter expressions,
JSONPaths, globs and regexes. Nothing in the engine parses anything per flow.
See rules/README.md for the format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..model import CATEGORIES, PURPOSES, SEVERITIES, TRIGGERS
from ..terms import ACTIONS, MARKS
from ..yamldoc import Checker, LDict, LList, Pos, typename
from . import patterns
from .filters import compile_filter
from .party import DomainResolver
from .paths import ParsedPath, parse_path
from .schema_tests import Expect, RuleTest, read_tests
from .schema_vocabulary import read_vocabulary
from .vocabulary import Vocabulary

__all__ = [
    "PARTY_ROLES",
    "FieldRef",
    "FieldSpec",
    "Case",
    "Expect",
    "RuleTest",
    "Rule",
    "Pack",
    "PackBuilder",
    "scalar_text",
]

PARTY_ROLES = ("first", "third")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_SOURCES = ("header", "query", "cookie")
_MAX_RULES = 20_000


# --- values -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a field lives.

    kind "path": a JSONPath into the body (relative to the event under `each`);
    kind "key": a key-name glob or `re:` regex, matched against the nearest key
    of body and query leaves; kind "header"/"query"/"cookie": a name glob for
    that source.
    """

    text: str
    kind: str
    path: ParsedPath | None = None
    name: patterns.Matcher | None = None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    ref: FieldRef
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Case:
    trigger: str
    categories: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()
    names: patterns.Matcher | None = None
    name_text: tuple[str, ...] = ()
    regex: patterns.Matcher | None = None
    field: FieldRef | None = None
    equals: tuple[str, ...] | None = None
    matches: patterns.Matcher | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    pack: str
    where: str
    """`path:line` of the rule, for messages."""
    purpose: str = "unknown"
    severity: str = "info"
    description: str = ""
    references: tuple[str, ...] = ()
    organization: str | None = None
    filter_text: str | None = None
    filter: Any = field(default=None, repr=False, compare=False)
    domains: tuple[str, ...] = ()
    each: ParsedPath | None = None
    events: tuple[ParsedPath, ...] = ()
    classify: tuple[Case, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    marks: tuple[str, ...] = ()
    action: str | None = None
    tests: tuple[RuleTest, ...] = ()


@dataclass(frozen=True, slots=True)
class Pack:
    id: str
    vendor: str
    path: str
    version: str = ""
    description: str = ""
    references: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    party: str = "first"
    fallback: bool = False
    rules: tuple[Rule, ...] = ()
    vocabulary: Vocabulary | None = None
    """Words in event names that point to a trigger (`vocabulary:`), if the pack has them."""


# --- the validator ----------------------------------------------------------


class PackBuilder(Checker):
    """Validates one pack document; collects errors; shares compile caches."""

    def __init__(
        self,
        display: str,
        resolver: DomainResolver,
        caches: dict[str, dict[str, Any]],
    ) -> None:
        super().__init__(display)
        self._resolver = resolver
        self._caches = caches

    # -- compile helpers (cached by text across the whole load) --

    def _cached(self, kind: str, text: str, make: Callable[[str], Any]) -> Any:
        cache = self._caches.setdefault(kind, {})
        if text not in cache:
            try:
                cache[text] = make(text)
            except ValueError as e:
                cache[text] = e
        result = cache[text]
        if isinstance(result, ValueError):
            raise result
        return result

    def jsonpath(self, text: str, pos: Pos) -> ParsedPath | None:
        if not text.startswith(("$", "@")):
            self.err(pos, f"JSONPath {text!r} must start with '$'")
            return None
        try:
            return self._cached("jsonpath", text, parse_path)
        except ValueError as e:
            self.err(pos, str(e))
            return None

    def regex(self, text: str, pos: Pos) -> patterns.Matcher | None:
        try:
            return self._cached("regex", text, patterns.compile_regex)
        except ValueError as e:
            self.err(pos, str(e))
            return None

    def globs(self, texts: tuple[str, ...], pos: Pos) -> patterns.Matcher | None:
        try:
            return self._cached("glob", "\0".join(texts),
                                lambda _: patterns.compile_globs(texts))
        except ValueError as e:
            self.err(pos, str(e))
            return None

    def flowfilter(self, text: str, pos: Pos) -> Any:
        try:
            return self._cached("filter", text, compile_filter)
        except ValueError as e:
            self.err(pos, str(e))
            return None

    def field_ref(self, text: str, pos: Pos) -> FieldRef | None:
        if text.startswith(("$", "@")):
            parsed = self.jsonpath(text, pos)
            return FieldRef(text, "path", path=parsed) if parsed else None
        source, sep, rest = text.partition(":")
        if sep and source in _SOURCES:
            if not rest:
                self.err(pos, f"{text!r}: a name is missing after '{source}:'")
                return None
            name = self.globs((rest,), pos)
            return FieldRef(text, source, name=name) if name else None
        if sep and source == "re":
            name = self.regex(rest, pos)
            return FieldRef(text, "key", name=name) if name else None
        if not text:
            self.err(pos, "a field name must not be empty")
            return None
        name = self.globs((text,), pos)
        return FieldRef(text, "key", name=name) if name else None

    def domain(self, text: str, pos: Pos) -> str | None:
        name = text.strip().lower().rstrip(".")
        if not _DOMAIN.match(name):
            self.err(pos, f"{text!r} is not a domain name")
            return None
        if self._resolver.is_public_suffix(name):
            self.err(pos, f"{text!r} is a public suffix; list a registrable domain under it")
            return None
        return name

    # -- the document --

    def pack(self, data: Any) -> Pack | None:
        top = Pos(1, 1)
        if data is None:
            self.err(top, "the pack is empty")
            return None
        allowed = ("pack", "vendor", "version", "description", "references", "domains",
                   "party", "fallback", "rules", "vocabulary")
        if not self.keys(data, getattr(data, "pos", top), allowed, ("pack", "vendor", "rules"),
                          "the pack"):
            return None
        pack_id = self.string(data, "pack")
        if pack_id is not None and not _SLUG.match(pack_id):
            self.err(self.vpos(data, "pack"), f"pack id {pack_id!r} must be a lowercase slug")
        vendor = self.string(data, "vendor") or ""
        version = self.string(data, "version", allow_number=True) or ""
        description = self.string(data, "description") or ""
        references = tuple(v for v, _ in self.strings(data, "references"))
        domains = tuple(d for _, d in self.strings(data, "domains", check=self.domain))
        party = self.string(data, "party", choices=PARTY_ROLES) or "first"
        fallback = False
        if "fallback" in data:
            if isinstance(data["fallback"], bool):
                fallback = data["fallback"]
            else:
                self.err(self.vpos(data, "fallback"), "'fallback' must be true or false")
        rules: list[Rule] = []
        raw_rules = data.get("rules")
        if "rules" in data:
            if not isinstance(raw_rules, LList):
                self.err(self.vpos(data, "rules"),
                         f"'rules' must be a list, not {typename(raw_rules)}")
            elif len(raw_rules) > _MAX_RULES:
                self.err(self.vpos(data, "rules"), f"more than {_MAX_RULES} rules in one pack")
            else:
                for item, pos in zip(raw_rules, raw_rules.item_pos, strict=True):
                    rule = self.rule(item, pos, pack_id or "?")
                    if rule is not None:
                        rules.append(rule)
        vocabulary = (read_vocabulary(self, data["vocabulary"], self.vpos(data, "vocabulary"))
                      if "vocabulary" in data else None)
        return Pack(
            id=pack_id or "?", vendor=vendor, path=self.display, version=version,
            description=description, references=references, domains=domains, party=party,
            fallback=fallback, rules=tuple(rules), vocabulary=vocabulary,
        )

    def rule(self, m: Any, pos: Pos, pack_id: str) -> Rule | None:
        allowed = ("id", "title", "description", "references", "purpose", "severity",
                   "organization", "match", "each", "event", "classify", "fields", "marks",
                   "action", "tests")
        if not self.keys(m, pos, allowed, ("id", "title", "purpose", "match"), "a rule"):
            return None
        rule_id = self.string(m, "id")
        if rule_id is not None and not _SLUG.match(rule_id):
            self.err(self.vpos(m, "id"),
                     f"rule id {rule_id!r} must be a lowercase slug ([a-z0-9._-])")
        title = self.string(m, "title") or ""
        purpose = self.string(m, "purpose", choices=PURPOSES) or "unknown"
        severity = self.string(m, "severity", choices=SEVERITIES) or "info"
        organization = self.string(m, "organization")
        action = self.string(m, "action", choices=ACTIONS)
        filter_text, filter_obj, domains = self.match(m)
        each = None
        if "each" in m:
            text = self.string(m, "each")
            each = self.jsonpath(text, self.vpos(m, "each")) if text is not None else None
        events = tuple(p for _, p in self.strings(m, "event", check=self.jsonpath))
        classify = self.classify(m, has_events=bool(events) or "event" in m)
        fields = self.fields(m)
        marks = tuple(v for v, _ in self.strings(m, "marks", choices=MARKS))
        tests = read_tests(self, m)
        if rule_id is None:
            return None
        return Rule(
            id=rule_id, title=title, pack=pack_id, where=f"{self.display}:{pos.line}",
            purpose=purpose, severity=severity,
            description=self.string(m, "description") or "",
            references=tuple(v for v, _ in self.strings(m, "references")),
            organization=organization, filter_text=filter_text, filter=filter_obj,
            domains=domains, each=each, events=events, classify=classify, fields=fields,
            marks=marks, action=action, tests=tests,
        )

    def match(self, m: LDict) -> tuple[str | None, Any, tuple[str, ...]]:
        if "match" not in m:
            return None, None, ()
        spec = m["match"]
        pos = self.vpos(m, "match")
        if not self.keys(spec, pos, ("filter", "domains"), (), "'match'"):
            return None, None, ()
        if "filter" not in spec and "domains" not in spec:
            self.err(pos, "'match' needs a 'filter', 'domains' or both")
        text = self.string(spec, "filter")
        filt = self.flowfilter(text, self.vpos(spec, "filter")) if text is not None else None
        domains = tuple(d for _, d in self.strings(spec, "domains", check=self.domain))
        if isinstance(spec.get("domains"), LList) and not spec["domains"]:
            self.err(self.vpos(spec, "domains"), "'domains' must not be empty")
        return text, filt, domains

    def classify(self, m: LDict, *, has_events: bool) -> tuple[Case, ...]:
        raw = self.member(m, "classify", LList, "a list of cases")
        if raw is None:
            return ()
        cases = []
        for item, pos in zip(raw, raw.item_pos, strict=True):
            case = self.case(item, pos, has_events=has_events)
            if case is not None:
                cases.append(case)
        return tuple(cases)

    def case(self, c: Any, pos: Pos, *, has_events: bool) -> Case | None:
        allowed = ("name", "regex", "field", "equals", "matches", "trigger", "categories",
                   "marks")
        if not self.keys(c, pos, allowed, ("trigger",), "a classify case"):
            return None
        trigger = self.string(c, "trigger", choices=TRIGGERS)
        categories = tuple(v for v, _ in self.strings(c, "categories", choices=CATEGORIES))
        marks = tuple(v for v, _ in self.strings(c, "marks", choices=MARKS))
        name_text = tuple(v for v, _ in self.strings(c, "name"))
        names = self.globs(name_text, self.vpos(c, "name")) if name_text else None
        regex = None
        if "regex" in c:
            text = self.string(c, "regex")
            regex = self.regex(text, self.vpos(c, "regex")) if text is not None else None
        if ("name" in c or "regex" in c) and not has_events:
            key = "name" if "name" in c else "regex"
            self.err(c.key_pos[key], f"{key!r} needs the rule to have 'event' paths")
        ref = None
        if "field" in c:
            text = self.string(c, "field")
            ref = self.field_ref(text, self.vpos(c, "field")) if text is not None else None
        equals = None
        if "equals" in c:
            value = c["equals"]
            values = list(value) if isinstance(value, LList) else [value]
            if any(isinstance(v, (dict, list)) for v in values):
                self.err(self.vpos(c, "equals"), "'equals' must be a scalar or a list of them")
            else:
                equals = tuple(scalar_text(v) for v in values)
        matches = None
        if "matches" in c:
            text = self.string(c, "matches")
            matches = self.regex(text, self.vpos(c, "matches")) if text is not None else None
        for key in ("equals", "matches"):
            if key in c and "field" not in c:
                self.err(c.key_pos[key], f"{key!r} needs a 'field' to test")
        if trigger is None:
            return None
        return Case(
            trigger=trigger, categories=categories, marks=marks, names=names,
            name_text=name_text, regex=regex, field=ref, equals=equals, matches=matches,
            line=pos.line,
        )

    def fields(self, m: LDict) -> tuple[FieldSpec, ...]:
        raw = self.member(m, "fields", LDict, "a mapping of field → category")
        if raw is None:
            return ()
        out = []
        for key, value in raw.items():
            kpos = raw.key_pos[key]
            if not isinstance(key, str):
                self.err(kpos, f"a field must be a string, not {typename(key)}")
                continue
            cats = self.strings(raw, key, choices=CATEGORIES)
            if isinstance(value, LList) and not value:
                self.err(raw.value_pos[key], f"field {key!r} has no category")
            ref = self.field_ref(key, kpos)
            if ref is not None and cats:
                out.append(FieldSpec(ref, tuple(v for v, _ in cats)))
        return tuple(out)


def scalar_text(value: Any) -> str:
    """How a scalar compares in `equals`: JSON spelling (true, null, 1.5, text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
