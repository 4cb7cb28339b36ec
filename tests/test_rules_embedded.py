"""Every rule's own `tests:` cases, one pytest case per rule."""

from __future__ import annotations

import pytest

from phonehome.rules import RuleSet, load_rules, run_rule_test

_RULESET = load_rules()


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return _RULESET


@pytest.mark.parametrize("rule_id", [rule.id for rule in _RULESET.rules])
def test_rule_embedded_tests(ruleset: RuleSet, rule_id: str) -> None:
    result = run_rule_test(ruleset, next(r for r in ruleset.rules if r.id == rule_id))
    assert result.passed, "\n".join(result.messages)
    assert result.count >= 1


def test_every_bundled_rule_has_tests_that_expect_a_match_and_a_miss_somewhere() -> None:
    expectations = [t.expect.match for r in _RULESET.rules for t in r.tests]
    assert all(r.tests for r in _RULESET.rules)
    assert True in expectations and False in expectations
