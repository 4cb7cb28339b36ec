"""Run the test cases embedded in rules (`tests:`), for pytest and `phonehome rules test`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..decode import decode as decode_payload
from ..model import Observation, Payload
from .engine import RuleHit, RuleSet
from .schema import Rule, RuleTest

__all__ = ["RuleTestResult", "run_rule_tests", "run_rule_test", "run_vocabulary_tests",
           "observation_for_test"]

Decoder = Callable[[Observation], Payload]


@dataclass(frozen=True, slots=True)
class RuleTestResult:
    id: str
    passed: bool
    messages: tuple[str, ...]
    """One line per failed check, each naming the test; empty when all pass."""
    count: int = 0
    """How many test cases the rule has."""


def observation_for_test(test: RuleTest, index: int = 0) -> Observation:
    """The Observation the capture stage would make of this request."""
    from mitmproxy import http

    from ..capture.observe import observe_request
    from ..capture.request_view import flow_of

    headers = [(k.encode("utf-8", "replace"), v.encode("utf-8", "replace"))
               for k, v in test.headers]
    request = http.Request.make(test.method or "GET", test.url, test.body or b"", headers)
    observation = observe_request(flow_of(request), source="rule-test")
    observation.id = f"rule-test-{index}"
    return observation


def _check(test: RuleTest, rule: Rule, hit: RuleHit | None, cls: Any) -> list[str]:
    exp = test.expect
    label = f"{rule.id} [{test.name}, line {test.line}]"
    if not exp.match:
        return [f"{label}: expected no match, but the rule matched"] if hit else []
    if hit is None:
        return [f"{label}: expected a match, but the rule did not match"]
    problems = []
    trigger = hit.trigger or "unknown"
    if exp.trigger is not None and trigger != exp.trigger:
        problems.append(f"{label}: trigger {trigger!r}, expected {exp.trigger!r}")
    if exp.categories is not None and sorted(hit.categories) != sorted(exp.categories):
        problems.append(f"{label}: categories {sorted(hit.categories)}, "
                        f"expected {sorted(exp.categories)}")
    names = [e.name for e in hit.events]
    if exp.events is not None and names != list(exp.events):
        problems.append(f"{label}: events {names}, expected {list(exp.events)}")
    if exp.marks is not None and sorted(hit.marks) != sorted(exp.marks):
        problems.append(f"{label}: marks {sorted(hit.marks)}, expected {sorted(exp.marks)}")
    for attr in ("purpose", "party"):
        wanted = getattr(exp, attr)
        if wanted is not None and getattr(cls, attr) != wanted:
            problems.append(f"{label}: {attr} {getattr(cls, attr)!r}, expected {wanted!r}")
    if exp.has_organization and cls.organization != exp.organization:
        problems.append(f"{label}: organization {cls.organization!r}, "
                        f"expected {exp.organization!r}")
    return problems


def run_rule_test(ruleset: RuleSet, rule: Rule, decoder: Decoder | None = None
                  ) -> RuleTestResult:
    decode = decoder or decode_payload
    messages: list[str] = []
    if not rule.tests:
        messages.append(f"{rule.id}: the rule has no tests")
    for index, test in enumerate(rule.tests):
        try:
            obs = observation_for_test(test, index)
            evaluation = ruleset.evaluate(obs, decode(obs))
        except Exception as e:  # report, don't crash the whole run
            messages.append(f"{rule.id} [{test.name}, line {test.line}]: "
                            f"{type(e).__name__}: {e}")
            continue
        hit = next((h for h in evaluation.hits if h.rule.id == rule.id), None)
        messages.extend(_check(test, rule, hit, evaluation.classification))
    return RuleTestResult(rule.id, not messages, tuple(messages), len(rule.tests))


def run_rule_tests(ruleset: RuleSet, decoder: Decoder | None = None) -> list[RuleTestResult]:
    """Run every rule's embedded tests; one result per rule, in load order."""
    decode = decoder or decode_payload
    results = [run_rule_test(ruleset, rule, decode) for rule in ruleset.rules]
    return results + run_vocabulary_tests(ruleset)


def run_vocabulary_tests(ruleset: RuleSet) -> list[RuleTestResult]:
    """Each pack vocabulary's inline tests, judged by the whole loaded vocabulary."""
    results = []
    for pack in ruleset.packs:
        if pack.vocabulary is None:
            continue
        tests = replace(ruleset.vocabulary, tests=pack.vocabulary.tests)
        messages = [f"{pack.path}: {m}" for m in tests.run_tests()]
        results.append(RuleTestResult(f"{pack.id}:vocabulary", not messages, tuple(messages),
                                      len(pack.vocabulary.tests)))
    return results
