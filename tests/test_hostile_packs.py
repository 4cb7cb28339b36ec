"""Hostile rule packs and identity files: a clear error or a bounded load, never a hang."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonehome.detect import IdentityError, load_identity
from phonehome.rules import RuleLoadError, load_rules

yaml_text = st.text(alphabet=string.printable, max_size=400)
yaml_tree = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["pack", "vendor", "rules", "id", "match", "filter",
                                       "each", "event", "classify", "fields", "tests",
                                       "purpose", "trigger", "x"]), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_text)
def test_arbitrary_text_loads_or_fails_cleanly(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("pack") / "pack.yaml"
    path.write_text(text)
    try:
        load_rules([path], include_builtin=False)
    except RuleLoadError as e:
        assert e.errors and all(str(err).startswith(str(path)) for err in e.errors)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=yaml_tree)
def test_arbitrary_structures_load_or_fail_cleanly(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("pack") / "pack.yaml"
    path.write_text(yaml.safe_dump(tree))
    try:
        load_rules([path], include_builtin=False)
    except RuleLoadError as e:
        assert all(":" in str(err) for err in e.errors)


CATASTROPHIC = ["(a+)+$", "(a|a)*b", "(.*a){20}", "^(\\w+\\s?)*$"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_backtracking_regexes_run_in_linear_time(tmp_path, pattern):
    """RE2 accepts these and matches them in linear time: a 100 KB hostile name returns."""
    pack = {"pack": "evil", "vendor": "Evil", "version": "1", "domains": ["evil.example"],
            "rules": [{"id": "evil-rule", "title": "t", "description": "d", "purpose": "telemetry",
                       "severity": "low", "match": {"filter": "~d evil.example"},
                       "event": ["$.name"],
                       "classify": [{"regex": pattern, "trigger": "error",
                                     "categories": ["error_logs"]}]}]}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False))
    try:
        ruleset = load_rules([path], include_builtin=False)
    except RuleLoadError as e:  # or it is refused with a clear message
        assert "regex" in str(e).lower() or "pattern" in str(e).lower()
        return
    from mitmproxy.test import tflow, tutils

    from phonehome.capture.observe import observe_request
    from phonehome.decode import decode

    hostile = ("a" * 100_000) + "!"
    flow = tflow.tflow(req=tutils.treq(host="api.evil.example", method=b"POST",
                                       content=('{"name":"' + hostile + '"}').encode(),
                                       headers=((b"content-type", b"application/json"),)))
    observation = observe_request(flow)
    classification = ruleset.classify(observation, decode(observation))
    assert classification.rule_ids == ["evil-rule"]


def test_a_huge_pack_loads(tmp_path):
    rules = [{"id": f"r{i}", "title": "t", "description": "d", "purpose": "telemetry",
              "severity": "low", "match": {"filter": f"~d host{i}.example"}}
             for i in range(3000)]
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump({"pack": "huge", "vendor": "Huge", "version": "1",
                                    "domains": ["huge.example"], "rules": rules}))
    assert len(load_rules([path], include_builtin=False).rules) == 3000


@pytest.mark.parametrize(("text", "message"), [
    ("email: [unclosed", "identity.yaml:1"),
    ("email: 12\nshoe_size: 44\n", "shoe_size"),
    ("a: &x [*x]\n", "identity.yaml"),
])
def test_bad_identity_files(tmp_path, text, message):
    path = tmp_path / "identity.yaml"
    path.write_text(text)
    with pytest.raises(IdentityError, match=message):
        load_identity(path)
