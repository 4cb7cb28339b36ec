"""The detector contract: a leaf's context, a hit, and the base class.

A detector is a pure function of (value, context): no globals, no settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

import re2

from ..model import PathPart, Scalar

__all__ = [
    "Context",
    "Detector",
    "Hit",
    "LabelledDetector",
    "MIN_CONFIDENCE",
    "MAX_HITS_PER_LEAF",
    "normalize_key",
    "is_machine_token",
    "looks_like_text",
    "NEGATIVE_KEY_SUFFIXES",
    "compile_re2",
    "is_negative_key",
    "is_version_key",
    "neighbours_of",
    "safe_text",
    "tokens",
    "ALNUM",
    "text_before",
]

MIN_CONFIDENCE = 0.5
"""Hits below this confidence are dropped."""

MAX_HITS_PER_LEAF = 16
"""Bound on the matches one detector reports for one leaf (hostile repeats)."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 64 << 20


def compile_re2(pattern: str | bytes) -> Any:
    """A google-re2 pattern with a memory bound (patterns are compiled at import/init)."""
    return re2.compile(pattern, options=_RE2_OPTIONS)


# ASCII letters and digits: what may not stand right before or after a match.
ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def text_before(value: str, start: int, n: int = 1) -> str:
    return value[max(0, start - n) : start]


def normalize_key(key: str) -> str:
    """`display_name`, `Display-Name`, `displayName` → `displayname`."""
    return "".join(ch for ch in key.lower() if ch.isalnum())


# Keys whose values are versions, builds, models, times or counts: a weak
# match under them is almost surely a decoy (43.8.0.26 as clientVersion).
NEGATIVE_KEY_SUFFIXES = (
    "version",
    "build",
    "buildnumber",
    "model",
    "timestamp",
    "time",
    "date",
    "count",
    "counter",
    "duration",
    "useragent",
    "revision",
    "checksum",
    "hash",
    "digest",
    "etag",
    "size",
    "latency",
    "sequence",
)
_NEGATIVE_EXACT = frozenset({"ver", "v", "ts", "sha", "sha1", "sha256", "md5", "seq", "n", "num"})
_NOT_NEGATIVE = ("account", "discount")
# Keys that name a release: Sentry `release`, Amplitude/1DS `av`, Mixpanel
# `$app_version_string`, `build`; any key with "version" in it.
_VERSION_EXACT = frozenset({"release", "av", "ver", "build", "appver", "sdkver", "clientver",
                            "releasename", "releaseid", "dist", "buildid", "buildname"})


def is_version_key(key: str) -> bool:
    """A normalized key whose values are app/OS/SDK versions (43.8.0.26 is no IP there)."""
    return key in _VERSION_EXACT or "version" in key


def is_negative_key(key: str) -> bool:
    """Versions, builds, models, times, counts: keys whose values are not personal."""
    if key in _NEGATIVE_EXACT or is_version_key(key):
        return True
    return key.endswith(NEGATIVE_KEY_SUFFIXES) and not key.endswith(_NOT_NEGATIVE)


@dataclass(frozen=True, slots=True)
class Context:
    """Where a value sits: its nearest key, the key above, every key on the path.

    Keys are normalized (`normalize_key`). `raw_key` keeps the original
    spelling for reports. `in_list` is true when the value is a list item.
    """

    key: str = ""
    parent: str = ""
    keys: tuple[str, ...] = ()
    source: str = "body"
    in_list: bool = False
    raw_key: str = ""
    depth: int = 0
    """len(path) of the leaf, for grouping hits by container."""
    positions: tuple[int, ...] = ()
    """Index in the path of each key in `keys`."""
    event: str = ""
    """Neighbours: the names of the events around the value (`name`, `event`,
    `eventType`… of each enclosing object, nearest first) and the request's URL
    path, space-separated (see `tokens`). Filled in only for `neighbours` detectors."""
    siblings: frozenset[str] = frozenset()
    """Neighbours: the normalized keys beside the value in its object."""
    host: str = ""
    """Neighbours: the request's host, lowercased."""

    @classmethod
    def of(cls, path: tuple[PathPart, ...], source: str = "body") -> Context:
        names = [normalize_key(p) for p in path if isinstance(p, str)]
        positions = tuple(i for i, p in enumerate(path) if isinstance(p, str))
        raw = ""
        for part in reversed(path):
            if isinstance(part, str):
                raw = part
                break
        return cls(
            key=names[-1] if names else "",
            parent=names[-2] if len(names) > 1 else "",
            keys=tuple(names),
            source=source,
            in_list=bool(path) and isinstance(path[-1], int),
            raw_key=raw,
            depth=len(path),
            positions=positions,
        )

    def around(self, event: str = "", siblings: frozenset[str] = frozenset(),
               host: str = "") -> Context:
        """This context with its neighbours filled in."""
        return replace(self, event=event, siblings=siblings, host=host)

    @property
    def negative(self) -> bool:
        """True under version/build/model/time/count keys."""
        return is_negative_key(self.key)

    def ancestor(self, names: frozenset[str]) -> int | None:
        """Index in `keys` of the nearest key (the leaf's own included) in `names`."""
        for i in range(len(self.keys) - 1, -1, -1):
            if self.keys[i] in names:
                return i
        return None

    def group_at(self, index: int) -> int:
        """Hit.group for the container named by keys[index]: its path length."""
        return self.positions[index] + 1


class Hit(NamedTuple):
    """One detector result before it becomes a Finding."""

    text: str
    """The matched raw text (becomes Finding.value; never reported as such)."""
    confidence: float
    severity: str
    reason: str
    group: int | None = None
    """When set, hits of one type whose paths share the first `group` parts merge
    into one finding located at that container (a participant list, a level series)."""
    category: str | None = None
    """The finding's category when it is not the detector's own (a public ingestion
    key is `identifiers`, a log archive's name `error_logs`)."""


class Detector:
    """Base class; subclasses set the class variables and override a hook or two.

    A detector is a small class with a stable `name`, one `type` from
    model.FINDING_TYPES, a `pattern` compiled once (google-re2), an optional
    `validate`-style structural check and key context in the manner of
    Presidio's context words. It is a pure function of (value, context): no
    globals, no settings.

    Two ways to fire, both pure:

    - `accept(value, start, end, ctx)`: a `pattern` match at value[start:end]
      is checked (checksum, structure, surrounding characters, key context).
      The engine finds the candidate spans for every pattern detector in one
      pass over all the leaves of a payload.
    - `inspect(value, ctx)`: the whole value, for detectors driven by the key
      (displayName, title, audioLevel, …); `applies(ctx)` says for which keys,
      and the engine caches that answer per distinct path. A detector with
      `neighbours = True` also reads what surrounds the value (`Context.event`,
      `Context.siblings`, `Context.host`), which the engine fills in per leaf.
    """

    name: ClassVar[str] = ""
    """The stable user-facing name; the finding `type` unless a subclass sets its own."""
    type: ClassVar[str] = ""
    category: ClassVar[str] = "personal_data"
    severity: ClassVar[str] = "medium"
    pattern: ClassVar[str | tuple[str, ...] | None] = None
    """One regex, or several (run separately, e.g. IPv4 and IPv6)."""
    prefilter: ClassVar[str | tuple[str, ...] | None] = None
    """Cheaper patterns, one per `pattern`, that every match of it contains: the
    engine's single re2.Set pass over a payload uses them to pick the regexes
    worth running (full patterns with counted repeats make one combined DFA
    too large)."""
    single_line: ClassVar[bool] = False
    """True when no match of `pattern` can hold a newline and it has no ^/$ anchors:
    the engine may then search each distinct text on its own and remember the
    matches (tests/test_detect_engine.py checks the claim). Leave False otherwise:
    such patterns are run over all of a payload's text at once, every time."""
    numeric: ClassVar[bool] = False
    """Also inspect int/float leaves (key-driven detectors only)."""
    positive_keys: ClassVar[frozenset[str]] = frozenset()
    """Normalized keys whose context raises a weak match's confidence."""
    base_confidence: ClassVar[float] = 0.7
    neighbours: ClassVar[bool] = False
    """`inspect` reads Context.event/siblings/host (the engine fills them per leaf
    where `reads_neighbours` says so)."""

    __slots__ = ("regexes", "byte_regexes", "prefilters")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.type

    def __init__(self) -> None:
        patterns = _as_tuple(self.pattern)
        prefilters = _as_tuple(self.prefilter) or patterns
        if len(prefilters) != len(patterns):
            raise ValueError(f"{self.name}: one prefilter per pattern")
        self.regexes: tuple[Any, ...] = tuple(compile_re2(p) for p in patterns)
        # The same patterns over bytes: for all-ASCII text, byte offsets are character
        # offsets and re2 skips its per-match offset translation.
        self.byte_regexes: tuple[Any, ...] = tuple(compile_re2(p.encode()) for p in patterns)
        self.prefilters: tuple[str, ...] = prefilters

    def rematch(self, value: str, start: int, end: int) -> Any | None:
        """The (single) pattern matched again over value[start:end], for its groups."""
        return self.regexes[0].search(value[start:end])

    # --- key context

    def context_score(self, ctx: Context) -> float:
        """Confidence adjustment from the key (Presidio-style context words)."""
        if ctx.key in self.positive_keys or ctx.parent in self.positive_keys:
            return 0.25
        if ctx.negative:
            return -0.6
        return 0.0

    # --- hooks

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        """A pattern match at value[start:end]: a Hit, or None to drop it."""
        return None

    def applies(self, ctx: Context) -> bool:
        """Whether `inspect` should see values at this place (cached per path)."""
        return False

    def reads_neighbours(self, ctx: Context) -> bool:
        """Whether `inspect` needs the neighbours at this place (cached per path)."""
        return self.neighbours

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        """The whole value, for key-driven detectors."""
        return None

    # --- the pure one-shot API (tests, ad-hoc use; the engine batches instead)

    def detect(self, value: Scalar, ctx: Context) -> list[Hit]:
        hits: list[Hit] = []
        if isinstance(value, str):
            value = safe_text(value)
        if self.applies(ctx):
            hit = self.inspect(value, ctx)
            if hit is not None and hit.confidence >= MIN_CONFIDENCE:
                hits.append(hit)
        if self.regexes and isinstance(value, str) and value:
            text = value
            for regex in self.regexes:
                found = 0
                for m in regex.finditer(text):
                    hit = self.accept(text, m.start(), m.end(), ctx)
                    if hit is not None and hit.confidence >= MIN_CONFIDENCE:
                        hits.append(hit)
                        found += 1
                        if found >= MAX_HITS_PER_LEAF:
                            break
        return hits

    def make(self, text: str, confidence: float, reason: str, severity: str | None = None,
             group: int | None = None, category: str | None = None) -> Hit | None:
        confidence = max(0.0, min(1.0, confidence))
        if confidence < MIN_CONFIDENCE:
            return None
        return Hit(text, confidence, severity or self.severity, reason, group, category)



class LabelledDetector(Detector):
    """A detector whose one pattern reads a value after its label in free text
    ("SSID: Home-5G"); each match is read again for its groups and judged by `labelled`."""

    single_line = True

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        m = self.rematch(value, start, end)
        return None if m is None else self.labelled(m, value[start:end], ctx)

    def labelled(self, m: Any, span: str, ctx: Context) -> Hit | None:
        """A Hit for the match `m` of `span`, or None to drop it."""
        raise NotImplementedError


def _as_tuple(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


# --- neighbours -----------------------------------------------------------------

# Keys whose string value names the event a record describes: Webex `event.name`,
# 1DS/Application Insights `name`, Amplitude `event_type`, Mixpanel `event`, and
# Activity Streams' `verb`/`objectType` (Webex conversations).
EVENT_NAME_KEYS = frozenset({"name", "event", "eventname", "eventtype", "type", "action",
                             "basetype", "operation", "eventaction", "category",
                             "verb", "objecttype"})
_MAX_EVENT_CHARS = 200


_normalized = lru_cache(maxsize=4096)(normalize_key)


def neighbours_of(tree: Any, path: tuple[PathPart, ...], url: str = ""
                  ) -> tuple[str, frozenset[str], str]:
    """(event text, sibling keys, host) for the value at `path` in `tree`.

    Walks the path once; a string on the way (JSON inside a string) ends the walk.
    """
    objects: list[dict[str, Any]] = []
    node = tree
    for part in path[:-1]:
        if isinstance(node, dict):
            objects.append(node)
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            node = None
            break
    siblings: frozenset[str] = frozenset()
    if isinstance(node, dict) and path and isinstance(path[-1], str):
        objects.append(node)
        siblings = frozenset(_normalized(k) for k in node if k != path[-1])
    names: list[str] = []
    for obj in reversed(objects):
        for key, value in obj.items():
            if value.__class__ is str and len(value) <= _MAX_EVENT_CHARS \
                    and _normalized(key) in EVENT_NAME_KEYS:
                names.append(value)
    host = ""
    if url:
        rest = url.split("://", 1)[-1]
        authority, _, tail = rest.partition("/")
        host = authority.rpartition("@")[2].split(":")[0].lower()
        names.append("/" + tail.split("?", 1)[0])
    return " ".join(names), siblings, host


_TOKEN_SPLIT = compile_re2(r"[A-Z]?[a-z]+|[A-Z]+(?:[a-z]+)?|[0-9]+")


def tokens(text: str) -> frozenset[str]:
    """The lowercased words of an event name or key (camelCase, snake, dotted, kebab)."""
    return frozenset(m.group(0).lower() for m in _TOKEN_SPLIT.finditer(text[:1000]))


# --- shared value tests -------------------------------------------------------

def safe_text(value: str) -> str:
    """`value` with lone surrogates replaced (same length), so re2 can encode it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


_MACHINE = compile_re2(
    r"^(?:"
    r"[A-Za-z0-9]+(?:[._:/-][A-Za-z0-9]+)+"  # client.call.initiated, a-b-c, x/y
    r"|[A-Z0-9_]+"  # ENUM_VALUE
    r"|[a-z]+[A-Z][A-Za-z0-9]*"  # camelCase
    r"|[0-9a-fA-F-]{8,}"  # hex / uuid
    r"|[0-9.,:+-]+"  # numbers, versions, times
    r")$"
)
_WORDS = compile_re2(r"\pL{2,}")
_URL = compile_re2(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


def is_machine_token(value: str) -> bool:
    """Enum values, dotted event names, camelCase ids, hex, numbers, bare URLs."""
    if len(value) > 256:
        return False
    return _MACHINE.search(value) is not None or _URL.search(value) is not None


def looks_like_text(value: str, min_words: int = 2) -> bool:
    """Natural-language-ish: at least `min_words` words of letters, not a machine token."""
    value = value.strip()
    if not value or is_machine_token(value):
        return False
    sample = value[:2000]
    words = 0
    for _ in _WORDS.finditer(sample):
        words += 1
        if words >= min_words:
            return True
    return False
