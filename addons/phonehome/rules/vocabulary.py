"""Event names → timing triggers, by the words the names are made of.

A pack's `vocabulary:` (rules/generic.yaml) speaks only for events no rule gave a
trigger; the timeline weighs its verdict against the session's timing. Compiled
once at load; verdicts are remembered per name (bounded).
"""


from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "STRENGTHS",
    "MAX_NAME",
    "Entry",
    "NameVerdict",
    "VocabularyTest",
    "Vocabulary",
    "split_words",
]

STRENGTHS = ("strong", "weak")
"""strong: the word names the moment (crash, login, hangup); weak: it only hints
(media, launched, scheduled) and counts when no strong word speaks."""

MAX_NAME = 256
"""Only this much of a name is read: names come from the traffic."""

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_MAX_SPLIT = 40  # longest run-together word we try to split into known words
_MEMO = 4096


def split_words(name: str) -> tuple[str, ...]:
    """Lowercase words of a name: camelCase, snake_case, dotted, kebab-case and digits split.

    `JS_SDK_WDM_REGISTRATION_SUCCESSFUL` → js sdk wdm registration successful;
    `TfLSignInSuccessful` → tf l sign in successful; `app_crash2` → app crash 2.
    """
    return tuple(w.lower() for w in _WORD.findall(name[:MAX_NAME]))


@dataclass(frozen=True, slots=True)
class Entry:
    """A word or phrase (all its words present, in any order) and where it points."""

    words: frozenset[str]
    trigger: str
    """A trigger, or "unknown": a phrase that only keeps its words from pointing elsewhere."""
    strength: str
    text: str


@dataclass(frozen=True, slots=True)
class NameVerdict:
    """What an event's name says about its trigger."""

    trigger: str | None
    """The trigger, or None: the name says nothing, or points to several."""
    confidence: str | None = None
    """high (strong words), medium (weak words only), None without a trigger."""
    candidates: tuple[str, ...] = ()
    """The triggers an ambiguous name points to (empty otherwise)."""
    reason: str = ""
    words: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()
    """Marker labels the phrases that gave the trigger prove (`muted` from "muted")."""

    @property
    def weak(self) -> bool:
        return self.confidence == "medium"


@dataclass(frozen=True, slots=True)
class VocabularyTest:
    name: str
    trigger: str
    """The expected trigger; "unknown" when the name must get none."""
    confidence: str | None = None
    words: tuple[str, ...] | None = None
    marks: tuple[str, ...] | None = None
    line: int = 0


@dataclass(slots=True)
class Vocabulary:
    entries: tuple[Entry, ...] = ()
    neutral: frozenset[str] = frozenset()
    """Words known to point nowhere: they help split run-together names."""
    precedence: tuple[str, ...] = ()
    """When a name points to several triggers, the first of these among them wins."""
    marks: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Marker label → the phrases (entry texts) that prove it when they give the trigger."""
    tests: tuple[VocabularyTest, ...] = ()
    where: str = ""
    """`path:line` of the section (of each section, for a combined vocabulary)."""
    _by_word: dict[str, list[Entry]] = field(default_factory=dict, init=False, repr=False)
    _known: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _memo: dict[str, NameVerdict] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            for word in entry.words:
                self._by_word.setdefault(word, []).append(entry)
        self._known = frozenset(self._by_word) | self.neutral

    @classmethod
    def combine(cls, vocabularies: Iterable[Vocabulary]) -> Vocabulary:
        """One vocabulary from several packs' (entries add up; precedence in load order)."""
        parts = list(vocabularies)
        precedence: list[str] = []
        for part in parts:
            precedence.extend(t for t in part.precedence if t not in precedence)
        marks: dict[str, frozenset[str]] = {}
        for part in parts:
            for label, texts in part.marks.items():
                marks[label] = marks.get(label, frozenset()) | texts
        return cls(
            entries=tuple(e for part in parts for e in part.entries),
            neutral=frozenset().union(*(part.neutral for part in parts)),
            precedence=tuple(precedence),
            marks=marks,
            tests=tuple(t for part in parts for t in part.tests),
            where=", ".join(part.where for part in parts if part.where),
        )

    def __bool__(self) -> bool:
        return bool(self.entries)

    # -- words --

    def _split_known(self, word: str) -> tuple[str, ...] | None:
        """`word` as a run of known words (`callend` → call end), fewest pieces; else None."""
        n = len(word)
        best: list[tuple[str, ...] | None] = [None] * (n + 1)
        best[0] = ()
        for end in range(2, n + 1):
            for start in range(max(0, end - _MAX_SPLIT), end - 1):
                head = best[start]
                piece = word[start:end]
                if head is not None and piece in self._known:
                    candidate = (*head, piece)
                    if best[end] is None or len(candidate) < len(best[end] or ()):
                        best[end] = candidate
        return best[n]

    def words(self, name: str) -> tuple[str, ...]:
        """The name's words; an unknown word made of known words is split into them."""
        out: list[str] = []
        for word in split_words(name):
            if word in self._known or len(word) < 5 or len(word) > _MAX_SPLIT:
                out.append(word)
                continue
            pieces = self._split_known(word)
            out.extend(pieces if pieces and len(pieces) > 1 else (word,))
        return tuple(out)

    # -- verdicts --

    def judge(self, name: str) -> NameVerdict:
        """What the name says (remembered per name)."""
        verdict = self._memo.get(name)
        if verdict is None:
            verdict = self._judge(name)
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            self._memo[name] = verdict
        return verdict

    def _judge(self, name: str) -> NameVerdict:
        words = self.words(name)
        present = frozenset(words)
        holding = {e for w in present for e in self._by_word.get(w, ()) if e.words <= present}
        # a longer phrase speaks for the words it contains ("call end" over "call")
        kept = [e for e in holding if not any(e.words < other.words for other in holding)]
        kept = [e for e in kept if e.trigger != "unknown"]
        if not kept:
            return NameVerdict(None, words=words)
        strong = [e for e in kept if e.strength == "strong"]
        pool, confidence = (strong, "high") if strong else (kept, "medium")
        triggers = {e.trigger for e in pool}
        for trigger in self.precedence:
            if trigger in triggers and len(triggers) > 1:
                said = sorted(e.text for e in pool if e.trigger == trigger)
                return NameVerdict(trigger, confidence, (), f"{', '.join(said)}: {trigger} "
                                   f"comes first when a name points to several", words,
                                   self._marks(said))
        if len(triggers) > 1:
            longest = max(len(e.words) for e in pool)
            pool = [e for e in pool if len(e.words) == longest]
            triggers = {e.trigger for e in pool}
        texts = ", ".join(sorted({e.text for e in pool}))
        if len(triggers) == 1:
            trigger = next(iter(triggers))
            return NameVerdict(trigger, confidence, (), f"the name says {texts}", words,
                               self._marks(e.text for e in pool))
        candidates = tuple(sorted(triggers))
        return NameVerdict(None, None, candidates,
                           f"the name points to {' and '.join(candidates)} ({texts})", words)

    def _marks(self, texts: Iterable[str]) -> tuple[str, ...]:
        """The labels whose phrases are among `texts` (the phrases that gave the trigger)."""
        said = set(texts)
        return tuple(sorted(label for label, phrases in self.marks.items() if phrases & said))

    def run_tests(self) -> list[str]:
        """One message per failed inline test."""
        problems = []
        for test in self.tests:
            verdict = self.judge(test.name)
            got = verdict.trigger or "unknown"
            label = f"vocabulary [{test.name!r}, line {test.line}]"
            if got != test.trigger:
                problems.append(f"{label}: trigger {got!r}, expected {test.trigger!r}"
                                f" ({verdict.reason or 'no word points to a trigger'})")
            if test.confidence is not None and verdict.confidence != test.confidence:
                problems.append(f"{label}: confidence {verdict.confidence!r}, "
                                f"expected {test.confidence!r}")
            if test.words is not None and verdict.words != test.words:
                problems.append(f"{label}: words {list(verdict.words)}, "
                                f"expected {list(test.words)}")
            if test.marks is not None and sorted(verdict.marks) != sorted(test.marks):
                problems.append(f"{label}: marks {list(verdict.marks)}, "
                                f"expected {sorted(test.marks)}")
        return problems


def entries_from(triggers: Mapping[str, Mapping[str, Sequence[str]]]) -> tuple[Entry, ...]:
    """Entries from `{trigger: {strong: [...], weak: [...]}}` (phrases are space-separated)."""
    out = []
    for trigger, by_strength in triggers.items():
        for strength, texts in by_strength.items():
            for text in texts:
                out.append(Entry(frozenset(split_words(text)), trigger, strength, text))
    return tuple(out)
