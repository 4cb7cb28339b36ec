"""Rule pack validation: YAML data → Pack/Rule values, every error with its place.

Everything that can be compiled is compiled here, once: flowfilter expressions,
JSONPaths, globs and regexes. Nothing in the engine parses anything per flow.
See rules/README.md for the format.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import flowfilter

from ..model import CATEGORIES, PURPOSES, SEVERITIES, TRIGGERS
from . import patterns
from .party import DomainResolver
from .paths import ParsedPath, parse_path
from .source import LDict, LList, Pos, RuleError
from .vocabulary import STRENGTHS, Vocabulary, VocabularyTest, entries_from, split_words

__all__ = [
    "ACTIONS",
    "MARKS",
    "PARTY_ROLES",
    "FieldRef",
    "FieldSpec",
    "Case",
    "Expect",
    "RuleTest",
    "Rule",
    "Pack",
    "PackBuilder",
]

ACTIONS = ("observe", "redact", "block")
PARTY_ROLES = ("first", "third")
MARKS = (
    "app_start",
    "sign_in",
    "meeting_create",
    "meeting_join",
    "meeting_leave",
    "screen_share_start",
    "screen_share_stop",
    "muted",
    "unmuted",
    "shutdown",
)
"""Phase labels a rule may prove (`marks`); the timeline stage knows these."""

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
class Expect:
    match: bool
    trigger: str | None = None
    categories: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    marks: tuple[str, ...] | None = None
    purpose: str | None = None
    party: str | None = None
    organization: str | None = None
    has_organization: bool = False


@dataclass(frozen=True, slots=True)
class RuleTest:
    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    expect: Expect
    line: int


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    pack: str
    source: str
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


class PackBuilder:
    """Validates one pack document; collects errors; shares compile caches."""

    def __init__(
        self,
        display: str,
        resolver: DomainResolver,
        caches: dict[str, dict[str, Any]],
    ) -> None:
        self.display = display
        self.errors: list[RuleError] = []
        self._resolver = resolver
        self._caches = caches

    # -- error helpers --

    def err(self, pos: Pos, message: str) -> None:
        self.errors.append(RuleError(self.display, pos.line, pos.col, message))

    def _vpos(self, m: LDict, key: str) -> Pos:
        return m.value_pos.get(key, m.pos)

    def _keys(self, m: Any, pos: Pos, allowed: tuple[str, ...], required: tuple[str, ...],
              what: str) -> bool:
        if not isinstance(m, LDict):
            self.err(pos, f"{what} must be a mapping, not {_typename(m)}")
            return False
        for key in m:
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                self.err(m.key_pos[key], f"unknown key {key!r} in {what}{hint}")
        for key in required:
            if key not in m:
                self.err(m.pos, f"{what} is missing required key {key!r}")
        return True

    def _str(self, m: LDict, key: str, *, choices: tuple[str, ...] | None = None,
             what: str = "", allow_number: bool = False) -> str | None:
        if key not in m:
            return None
        value = m[key]
        if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.err(self._vpos(m, key), f"{key!r} must be a string, not {_typename(value)}")
            return None
        if choices is not None and value not in choices:
            self.err(self._vpos(m, key),
                     f"{key!r}: {value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def _str_list(self, m: LDict, key: str, *, choices: tuple[str, ...] | None = None,
                  single: bool = True,
                  check: Callable[[str, Pos], Any] | None = None) -> list[tuple[str, Any]]:
        """A list of strings (or one string when `single`); returns (value, checked)."""
        if key not in m:
            return []
        value = m[key]
        if single and isinstance(value, str):
            items, poses = [value], [self._vpos(m, key)]
        elif isinstance(value, LList):
            items, poses = list(value), value.item_pos
        else:
            kind = "a string or a list of strings" if single else "a list of strings"
            self.err(self._vpos(m, key), f"{key!r} must be {kind}, not {_typename(value)}")
            return []
        out: list[tuple[str, Any]] = []
        for item, pos in zip(items, poses, strict=True):
            if not isinstance(item, str):
                self.err(pos, f"{key!r} items must be strings, not {_typename(item)}")
                continue
            if choices is not None and item not in choices:
                self.err(pos, f"{key!r}: {item!r} is not one of {', '.join(choices)}")
                continue
            checked: Any = item
            if check is not None:
                checked = check(item, pos)
                if checked is None:
                    continue
            out.append((item, checked))
        return out

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
        def make(t: str) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    parsed = flowfilter.parse(t)
                except ValueError:
                    raise ValueError(f"invalid mitmproxy filter expression {t!r}") from None
            if parsed is None:  # older mitmproxy returned None on bad input
                raise ValueError(f"invalid mitmproxy filter expression {t!r}")
            _refuse_response_parts(parsed, t)
            _linearize(parsed)
            return parsed

        try:
            return self._cached("filter", text, make)
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
        if not self._keys(data, getattr(data, "pos", top), allowed, ("pack", "vendor", "rules"),
                          "the pack"):
            return None
        pack_id = self._str(data, "pack")
        if pack_id is not None and not _SLUG.match(pack_id):
            self.err(self._vpos(data, "pack"), f"pack id {pack_id!r} must be a lowercase slug")
        vendor = self._str(data, "vendor") or ""
        version = self._str(data, "version", allow_number=True) or ""
        description = self._str(data, "description") or ""
        references = tuple(v for v, _ in self._str_list(data, "references"))
        domains = tuple(d for _, d in self._str_list(data, "domains", check=self.domain))
        party = self._str(data, "party", choices=PARTY_ROLES) or "first"
        fallback = False
        if "fallback" in data:
            if isinstance(data["fallback"], bool):
                fallback = data["fallback"]
            else:
                self.err(self._vpos(data, "fallback"), "'fallback' must be true or false")
        rules: list[Rule] = []
        raw_rules = data.get("rules")
        if "rules" in data:
            if not isinstance(raw_rules, LList):
                self.err(self._vpos(data, "rules"),
                         f"'rules' must be a list, not {_typename(raw_rules)}")
            elif len(raw_rules) > _MAX_RULES:
                self.err(self._vpos(data, "rules"), f"more than {_MAX_RULES} rules in one pack")
            else:
                for item, pos in zip(raw_rules, raw_rules.item_pos, strict=True):
                    rule = self.rule(item, pos, pack_id or "?")
                    if rule is not None:
                        rules.append(rule)
        vocabulary = (self.vocabulary(data["vocabulary"], self._vpos(data, "vocabulary"))
                      if "vocabulary" in data else None)
        return Pack(
            id=pack_id or "?", vendor=vendor, path=self.display, version=version,
            description=description, references=references, domains=domains, party=party,
            fallback=fallback, rules=tuple(rules), vocabulary=vocabulary,
        )

    def vocabulary(self, v: Any, pos: Pos) -> Vocabulary | None:
        """`vocabulary:` {description, triggers: {trigger: {strong, weak}}, neutral,
        precedence, marks, tests}; see rules/README.md."""
        allowed = ("description", "triggers", "neutral", "precedence", "marks", "tests")
        if not self._keys(v, pos, allowed, ("triggers", "tests"), "'vocabulary'"):
            return None
        self._str(v, "description")
        spec: dict[str, dict[str, list[str]]] = {}
        triggers = v.get("triggers")
        if isinstance(triggers, LDict):
            for trigger, by_strength in triggers.items():
                tpos = triggers.key_pos[trigger]
                if trigger not in TRIGGERS:
                    self.err(tpos, f"{trigger!r} is not one of {', '.join(TRIGGERS)}")
                    continue
                if not self._keys(by_strength, triggers.value_pos[trigger], STRENGTHS, (),
                                  f"vocabulary trigger {trigger!r}"):
                    continue
                spec[trigger] = {
                    strength: [w for w, _ in self._str_list(by_strength, strength, single=False,
                                                            check=self._phrase)]
                    for strength in STRENGTHS}
        elif "triggers" in v:
            self.err(self._vpos(v, "triggers"), "'triggers' must be a mapping of trigger → "
                     f"{{strong: [...], weak: [...]}}, not {_typename(triggers)}")
        neutral = frozenset(w for w, _ in self._str_list(v, "neutral", single=False,
                                                          check=self._phrase))
        precedence = tuple(t for t, _ in self._str_list(v, "precedence", single=False,
                                                        choices=TRIGGERS))
        marks = self._vocabulary_marks(v, spec)
        tests: list[VocabularyTest] = []
        raw = v.get("tests")
        if isinstance(raw, LList):
            for item, ipos in zip(raw, raw.item_pos, strict=True):
                test = self._vocabulary_test(item, ipos)
                if test is not None:
                    tests.append(test)
        elif "tests" in v:
            self.err(self._vpos(v, "tests"), f"'tests' must be a list, not {_typename(raw)}")
        if isinstance(raw, LList) and not raw:
            self.err(self._vpos(v, "tests"), "the vocabulary has no tests")
        return Vocabulary(entries=entries_from(spec), neutral=neutral, precedence=precedence,
                          marks=marks, tests=tuple(tests), source=f"{self.display}:{pos.line}")

    def _vocabulary_marks(self, v: LDict,
                          spec: dict[str, dict[str, list[str]]]) -> dict[str, frozenset[str]]:
        """`marks: {label: [phrase, ...]}`: each phrase one of the triggers' phrases."""
        raw = v.get("marks")
        if raw is None:
            return {}
        if not isinstance(raw, LDict):
            self.err(self._vpos(v, "marks"), "'marks' must be a mapping of marker label → "
                     f"[phrase, ...], not {_typename(raw)}")
            return {}
        phrases = {text for by_strength in spec.values() for texts in by_strength.values()
                   for text in texts}
        marks: dict[str, frozenset[str]] = {}
        for label in raw:
            if label not in MARKS:
                self.err(raw.key_pos[label], f"marks: {label!r} is not one of {', '.join(MARKS)}")
                continue

            def known(text: str, pos: Pos) -> str | None:
                if text not in phrases:
                    self.err(pos, f"marks: {text!r} is not a phrase of the vocabulary's triggers")
                    return None
                return text

            marks[label] = frozenset(t for t, _ in self._str_list(raw, label, single=False,
                                                                   check=known))
        return marks

    def _phrase(self, text: str, pos: Pos) -> str | None:
        words = split_words(text)
        if not words or " ".join(words) != text:
            self.err(pos, f"{text!r} must be lowercase words (a-z, 0-9) separated by spaces")
            return None
        return text

    def _vocabulary_test(self, t: Any, pos: Pos) -> VocabularyTest | None:
        if not self._keys(t, pos, ("name", "trigger", "confidence", "words", "marks"),
                          ("name", "trigger"), "a vocabulary test"):
            return None
        name = self._str(t, "name")
        trigger = self._str(t, "trigger", choices=TRIGGERS)
        confidence = self._str(t, "confidence", choices=("high", "medium"))
        words = (tuple(w for w, _ in self._str_list(t, "words", single=False))
                 if "words" in t else None)
        marks = (tuple(m for m, _ in self._str_list(t, "marks", single=False, choices=MARKS))
                 if "marks" in t else None)
        if name is None or trigger is None:
            return None
        return VocabularyTest(name, trigger, confidence, words, marks, pos.line)

    def rule(self, m: Any, pos: Pos, pack_id: str) -> Rule | None:
        allowed = ("id", "title", "description", "references", "purpose", "severity",
                   "organization", "match", "each", "event", "classify", "fields", "marks",
                   "action", "tests")
        if not self._keys(m, pos, allowed, ("id", "title", "purpose", "match"), "a rule"):
            return None
        rule_id = self._str(m, "id")
        if rule_id is not None and not _SLUG.match(rule_id):
            self.err(self._vpos(m, "id"),
                     f"rule id {rule_id!r} must be a lowercase slug ([a-z0-9._-])")
        title = self._str(m, "title") or ""
        purpose = self._str(m, "purpose", choices=PURPOSES) or "unknown"
        severity = self._str(m, "severity", choices=SEVERITIES) or "info"
        organization = self._str(m, "organization")
        action = self._str(m, "action", choices=ACTIONS)
        filter_text, filter_obj, domains = self.match(m)
        each = None
        if "each" in m:
            text = self._str(m, "each")
            each = self.jsonpath(text, self._vpos(m, "each")) if text is not None else None
        events = tuple(p for _, p in self._str_list(m, "event", check=self.jsonpath))
        classify = self.classify(m, has_events=bool(events) or "event" in m)
        fields = self.fields(m)
        marks = tuple(v for v, _ in self._str_list(m, "marks", choices=MARKS))
        tests = self.tests(m)
        if rule_id is None:
            return None
        return Rule(
            id=rule_id, title=title, pack=pack_id, source=f"{self.display}:{pos.line}",
            purpose=purpose, severity=severity,
            description=self._str(m, "description") or "",
            references=tuple(v for v, _ in self._str_list(m, "references")),
            organization=organization, filter_text=filter_text, filter=filter_obj,
            domains=domains, each=each, events=events, classify=classify, fields=fields,
            marks=marks, action=action, tests=tests,
        )

    def match(self, m: LDict) -> tuple[str | None, Any, tuple[str, ...]]:
        if "match" not in m:
            return None, None, ()
        spec = m["match"]
        pos = self._vpos(m, "match")
        if not self._keys(spec, pos, ("filter", "domains"), (), "'match'"):
            return None, None, ()
        if "filter" not in spec and "domains" not in spec:
            self.err(pos, "'match' needs a 'filter', 'domains' or both")
        text = self._str(spec, "filter")
        filt = self.flowfilter(text, self._vpos(spec, "filter")) if text is not None else None
        domains = tuple(d for _, d in self._str_list(spec, "domains", check=self.domain))
        if isinstance(spec.get("domains"), LList) and not spec["domains"]:
            self.err(self._vpos(spec, "domains"), "'domains' must not be empty")
        return text, filt, domains

    def classify(self, m: LDict, *, has_events: bool) -> tuple[Case, ...]:
        if "classify" not in m:
            return ()
        raw = m["classify"]
        if not isinstance(raw, LList):
            self.err(self._vpos(m, "classify"),
                     f"'classify' must be a list of cases, not {_typename(raw)}")
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
        if not self._keys(c, pos, allowed, ("trigger",), "a classify case"):
            return None
        trigger = self._str(c, "trigger", choices=TRIGGERS)
        categories = tuple(v for v, _ in self._str_list(c, "categories", choices=CATEGORIES))
        marks = tuple(v for v, _ in self._str_list(c, "marks", choices=MARKS))
        name_text = tuple(v for v, _ in self._str_list(c, "name"))
        names = self.globs(name_text, self._vpos(c, "name")) if name_text else None
        regex = None
        if "regex" in c:
            text = self._str(c, "regex")
            regex = self.regex(text, self._vpos(c, "regex")) if text is not None else None
        if ("name" in c or "regex" in c) and not has_events:
            key = "name" if "name" in c else "regex"
            self.err(c.key_pos[key], f"{key!r} needs the rule to have 'event' paths")
        ref = None
        if "field" in c:
            text = self._str(c, "field")
            ref = self.field_ref(text, self._vpos(c, "field")) if text is not None else None
        equals = None
        if "equals" in c:
            value = c["equals"]
            values = list(value) if isinstance(value, LList) else [value]
            if any(isinstance(v, (dict, list)) for v in values):
                self.err(self._vpos(c, "equals"), "'equals' must be a scalar or a list of them")
            else:
                equals = tuple(scalar_text(v) for v in values)
        matches = None
        if "matches" in c:
            text = self._str(c, "matches")
            matches = self.regex(text, self._vpos(c, "matches")) if text is not None else None
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
        if "fields" not in m:
            return ()
        raw = m["fields"]
        if not isinstance(raw, LDict):
            self.err(self._vpos(m, "fields"),
                     f"'fields' must be a mapping of field → category, not {_typename(raw)}")
            return ()
        out = []
        for key, value in raw.items():
            kpos = raw.key_pos[key]
            if not isinstance(key, str):
                self.err(kpos, f"a field must be a string, not {_typename(key)}")
                continue
            cats = self._str_list(raw, key, choices=CATEGORIES)
            if isinstance(value, LList) and not value:
                self.err(raw.value_pos[key], f"field {key!r} has no category")
            ref = self.field_ref(key, kpos)
            if ref is not None and cats:
                out.append(FieldSpec(ref, tuple(v for v, _ in cats)))
        return tuple(out)

    def tests(self, m: LDict) -> tuple[RuleTest, ...]:
        if "tests" not in m:
            return ()
        raw = m["tests"]
        if not isinstance(raw, LList):
            self.err(self._vpos(m, "tests"), f"'tests' must be a list, not {_typename(raw)}")
            return ()
        out = []
        for index, (item, pos) in enumerate(zip(raw, raw.item_pos, strict=True)):
            test = self.test(item, pos, index)
            if test is not None:
                out.append(test)
        return tuple(out)

    def test(self, t: Any, pos: Pos, index: int) -> RuleTest | None:
        if not self._keys(t, pos, ("name", "request", "expect"), ("request", "expect"),
                          "a test"):
            return None
        name = self._str(t, "name") or f"test {index + 1}"
        request = t.get("request")
        rpos = self._vpos(t, "request")
        method, url, headers, body = "GET", "", [], b""
        ok = True
        if self._keys(request, rpos, ("method", "url", "headers", "body"), ("url",),
                      "a test request"):
            method = (self._str(request, "method") or "GET").upper()
            url = self._str(request, "url") or ""
            if url and not re.match(r"^(https?|wss?)://[^/\s]+", url):
                self.err(self._vpos(request, "url"), f"{url!r} is not an absolute http(s) URL")
                ok = False
            raw_headers = request.get("headers")
            if raw_headers is not None:
                if isinstance(raw_headers, LDict):
                    for hk, hv in raw_headers.items():
                        if isinstance(hk, str) and isinstance(hv, (str, int, float)):
                            headers.append((hk, str(hv)))
                        else:
                            self.err(raw_headers.key_pos[hk],
                                     "header names and values must be strings")
                else:
                    self.err(self._vpos(request, "headers"), "'headers' must be a mapping")
            if "body" in request:
                raw_body = request["body"]
                if isinstance(raw_body, str):
                    body = raw_body.encode("utf-8")
                elif isinstance(raw_body, (dict, list)):
                    body = json.dumps(raw_body, separators=(",", ":")).encode()
                    if not any(k.lower() == "content-type" for k, _ in headers):
                        headers.append(("content-type", "application/json"))
                elif raw_body is not None:
                    self.err(self._vpos(request, "body"),
                             "'body' must be a string, a mapping or a list")
        else:
            ok = False
        expect = self.expect(t.get("expect"), self._vpos(t, "expect"))
        if expect is None or not ok:
            return None
        return RuleTest(name, method, url, tuple(headers), body, expect, pos.line)

    def expect(self, e: Any, pos: Pos) -> Expect | None:
        allowed = ("match", "trigger", "categories", "events", "marks", "purpose", "party",
                   "organization")
        if not self._keys(e, pos, allowed, ("match",), "a test's 'expect'"):
            return None
        match = e.get("match")
        if not isinstance(match, bool):
            if "match" in e:
                self.err(self._vpos(e, "match"), "'match' must be true or false")
            return None

        def opt_list(key: str, choices: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return tuple(v for v, _ in self._str_list(e, key, choices=choices,
                                                     single=False)) if key in e else None

        has_org = "organization" in e
        organization = None
        if has_org and e["organization"] is not None:
            organization = self._str(e, "organization")
        return Expect(
            match=match, trigger=self._str(e, "trigger", choices=TRIGGERS),
            categories=opt_list("categories", CATEGORIES), events=opt_list("events", None),
            marks=opt_list("marks", MARKS), purpose=self._str(e, "purpose", choices=PURPOSES),
            party=self._str(e, "party", choices=("first", "third", "unknown")),
            organization=organization, has_organization=has_org,
        )


class _LinearRegex:
    """Stands in for a flowfilter node's `re`: same pattern, run by RE2."""

    def __init__(self, original: re.Pattern[Any]) -> None:
        self.pattern = original.pattern
        self.flags = original.flags
        inline = "".join(letter for flag, letter in
                         ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
                         if original.flags & flag)
        prefix = f"(?{inline})" if inline else ""
        pattern = original.pattern
        if isinstance(pattern, bytes):
            self._re = patterns.compile_regex(prefix.encode() + pattern)
        else:
            self._re = patterns.compile_regex(prefix + pattern)

    def search(self, text: Any) -> Any:
        return self._re.search(text)


# Filter parts that read the response (or its absence). A live audit classifies
# the request before any response exists, so these would match differently live
# and offline; the request-only form is named where mitmproxy has one.
_RESPONSE_PARTS: dict[type, str] = {
    flowfilter.FCode: "~c", flowfilter.FResp: "~s", flowfilter.FReq: "~q",
    flowfilter.FErr: "~e", flowfilter.FAsset: "~a", flowfilter.FReplayServer: "~replays",
    flowfilter.FHeadResponse: "~hs", flowfilter.FBodResponse: "~bs",
    flowfilter.FContentTypeResponse: "~ts",
}
_EITHER_SIDE_PARTS: dict[type, tuple[str, str]] = {
    flowfilter.FHead: ("~h", "~hq"), flowfilter.FBod: ("~b", "~bq"),
    flowfilter.FContentType: ("~t", "~tq"),
}


def _filter_parts(node: Any) -> Iterator[Any]:
    """Every node of a parsed mitmproxy filter, the root first."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(getattr(item, "lst", ()))
        if getattr(item, "itm", None) is not None:
            stack.append(item.itm)


def _refuse_response_parts(node: Any, text: str) -> None:
    """ValueError when the filter reads the response: rules see requests only."""
    for item in _filter_parts(node):
        kind = type(item)
        if kind in _RESPONSE_PARTS:
            raise ValueError(
                f"filter {text!r} uses {_RESPONSE_PARTS[kind]}, which reads the response: rules "
                "classify the request (live, before any response exists), so match on the "
                "request alone")
        if kind in _EITHER_SIDE_PARTS:
            either, request_only = _EITHER_SIDE_PARTS[kind]
            raise ValueError(
                f"filter {text!r} uses {either}, which also reads the response: rules classify "
                f"the request, so use {request_only}")


def _linearize(node: Any) -> None:
    """Swap every regex inside a parsed filter for RE2, so no filter can backtrack."""
    for item in _filter_parts(node):
        original = getattr(item, "re", None)
        if isinstance(original, re.Pattern):
            item.re = _LinearRegex(original)


def scalar_text(value: Any) -> str:
    """How a scalar compares in `equals`: JSON spelling (true, null, 1.5, text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _typename(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _did_you_mean(key: Any, allowed: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(str(key), allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
