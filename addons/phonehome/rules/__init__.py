"""The classify stage: YAML rule packs (format: rules/README.md) and their engine.

    ruleset = load_rules([Path("my-pack.yaml")])      # RuleLoadError lists every error
    classification = ruleset.classify(observation, payload)
"""


from __future__ import annotations

from ..terms import ACTIONS, MARKS
from .engine import TRIGGER_SPECIFICITY, Evaluation, RuleHit, RuleSet, most_specific
from .loader import RuleError, RuleLoadError, load_rules
from .schema import Case, FieldSpec, Pack, Rule, RuleTest
from .testing import RuleTestResult, run_rule_test, run_rule_tests

__all__ = [
    "load_rules",
    "RuleSet",
    "RuleLoadError",
    "RuleError",
    "run_rule_tests",
    "run_rule_test",
    "RuleTestResult",
    "Pack",
    "Rule",
    "Case",
    "FieldSpec",
    "RuleTest",
    "RuleHit",
    "Evaluation",
    "ACTIONS",
    "MARKS",
    "TRIGGER_SPECIFICITY",
    "most_specific",
]
