"""A pack's `vocabulary:` section (words in event names → trigger), validated."""

from __future__ import annotations

from functools import partial
from typing import Any

from ..model import TRIGGERS
from ..terms import MARKS
from ..yamldoc import Checker, LDict, LList, Pos, did_you_mean, typename
from .vocabulary import STRENGTHS, Vocabulary, VocabularyTest, entries_from, split_words

__all__ = ["read_vocabulary"]


def read_vocabulary(chk: Checker, v: Any, pos: Pos) -> Vocabulary | None:
    """`vocabulary:` {description, triggers: {trigger: {strong, weak}}, neutral,
    precedence, marks, tests}; see rules/README.md."""
    allowed = ("description", "triggers", "neutral", "precedence", "marks", "tests")
    if not chk.keys(v, pos, allowed, ("triggers", "tests"), "'vocabulary'"):
        return None
    chk.string(v, "description")
    spec: dict[str, dict[str, list[str]]] = {}
    triggers = v.get("triggers")
    if isinstance(triggers, LDict):
        for trigger, by_strength in triggers.items():
            tpos = triggers.key_pos[trigger]
            if trigger not in TRIGGERS:
                chk.err(tpos, f"{trigger!r} is not one of {', '.join(TRIGGERS)}"
                              f"{did_you_mean(trigger, TRIGGERS)}")
                continue
            if not chk.keys(by_strength, triggers.value_pos[trigger], STRENGTHS, (),
                            f"vocabulary trigger {trigger!r}"):
                continue
            spec[trigger] = {
                strength: [w for w, _ in chk.strings(by_strength, strength, single=False,
                                                      check=partial(_phrase, chk))]
                for strength in STRENGTHS}
    elif "triggers" in v:
        chk.err(chk.vpos(v, "triggers"), "'triggers' must be a mapping of trigger → "
                f"{{strong: [...], weak: [...]}}, not {typename(triggers)}")
    neutral = frozenset(w for w, _ in chk.strings(v, "neutral", single=False,
                                                  check=partial(_phrase, chk)))
    precedence = tuple(t for t, _ in chk.strings(v, "precedence", single=False,
                                                 choices=TRIGGERS))
    marks = _marks(chk, v, spec)
    tests: list[VocabularyTest] = []
    raw = v.get("tests")
    if isinstance(raw, LList):
        for item, ipos in zip(raw, raw.item_pos, strict=True):
            test = _test(chk, item, ipos)
            if test is not None:
                tests.append(test)
    elif "tests" in v:
        chk.err(chk.vpos(v, "tests"), f"'tests' must be a list, not {typename(raw)}")
    if isinstance(raw, LList) and not raw:
        chk.err(chk.vpos(v, "tests"), "the vocabulary has no tests")
    return Vocabulary(entries=entries_from(spec), neutral=neutral, precedence=precedence,
                      marks=marks, tests=tuple(tests), where=f"{chk.display}:{pos.line}")


def _marks(chk: Checker, v: LDict,
           spec: dict[str, dict[str, list[str]]]) -> dict[str, frozenset[str]]:
    """`marks: {label: [phrase, ...]}`: each phrase one of the triggers' phrases."""
    raw = v.get("marks")
    if raw is None:
        return {}
    if not isinstance(raw, LDict):
        chk.err(chk.vpos(v, "marks"), "'marks' must be a mapping of marker label → "
                f"[phrase, ...], not {typename(raw)}")
        return {}
    phrases = {text for by_strength in spec.values() for texts in by_strength.values()
               for text in texts}
    marks: dict[str, frozenset[str]] = {}
    for label in raw:
        if not chk.choice(label, raw.key_pos[label], "marks", MARKS):
            continue

        def known(text: str, pos: Pos) -> str | None:
            if text not in phrases:
                chk.err(pos, f"marks: {text!r} is not a phrase of the vocabulary's triggers")
                return None
            return text

        marks[label] = frozenset(t for t, _ in chk.strings(raw, label, single=False,
                                                           check=known))
    return marks


def _phrase(chk: Checker, text: str, pos: Pos) -> str | None:
    words = split_words(text)
    if not words or " ".join(words) != text:
        chk.err(pos, f"{text!r} must be lowercase words (a-z, 0-9) separated by spaces")
        return None
    return text


def _test(chk: Checker, t: Any, pos: Pos) -> VocabularyTest | None:
    if not chk.keys(t, pos, ("name", "trigger", "confidence", "words", "marks"),
                    ("name", "trigger"), "a vocabulary test"):
        return None
    name = chk.string(t, "name")
    trigger = chk.string(t, "trigger", choices=TRIGGERS)
    confidence = chk.string(t, "confidence", choices=("high", "medium"))
    words = (tuple(w for w, _ in chk.strings(t, "words", single=False))
             if "words" in t else None)
    marks = (tuple(m for m, _ in chk.strings(t, "marks", single=False, choices=MARKS))
             if "marks" in t else None)
    if name is None or trigger is None:
        return None
    return VocabularyTest(name, trigger, confidence, words, marks, pos.line)
