"""Loading rule packs: every error kind, reported with its line; hostile packs stay bounded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from phonehome.bundled import builtin_rules_dir
from phonehome.rules import RuleError, RuleLoadError, load_rules
from phonehome.rules.loader import pack_files

HEAD = """\
pack: demo
vendor: Demo
domains: [demo.example.com]
rules:
"""

RULE = """\
  - id: demo-rule
    title: Demo
    purpose: telemetry
    match:
      filter: '~u "/m"'
    each: $.items[*]
    event: $.name
    classify:
      - name: "client.*"
        trigger: in_meeting
    fields:
      $.os: device_info
"""

# (case id, pack text with the bad line marked "# <--", expected message fragment)
ERRORS = [
    ("unknown rule key", RULE.replace("    each:", "    eachh: x  # <--\n    each:"),
     "unknown key 'eachh'"),
    ("unknown pack key", "packs: x  # <--\n", "unknown key 'packs'"),
    ("duplicate key", RULE.replace("    title: Demo\n",
                                   "    title: Demo\n    title: Again  # <--\n"),
     "duplicate key 'title'"),
    ("wrong type", RULE.replace("    title: Demo", "    title: [a, b]  # <--"),
     "'title' must be a string"),
    ("bad purpose", RULE.replace("purpose: telemetry", "purpose: marketing  # <--"),
     "'purpose': 'marketing' is not one of"),
    ("bad trigger", RULE.replace("trigger: in_meeting", "trigger: lunch  # <--"),
     "'trigger': 'lunch' is not one of"),
    ("bad category", RULE.replace("$.os: device_info", "$.os: gossip  # <--"),
     "'gossip' is not one of"),
    ("bad severity", RULE.replace("    title: Demo", "    title: Demo\n    severity: dire  # <--"),
     "'severity': 'dire'"),
    ("bad action", RULE.replace("    title: Demo", "    title: Demo\n    action: nuke  # <--"),
     "'action': 'nuke'"),
    ("bad mark", RULE.replace("    title: Demo", "    title: Demo\n    marks: [lunch]  # <--"),
     "'marks': 'lunch'"),
    ("bad filter", RULE.replace("""filter: '~u "/m"'""", "filter: '~nope x'  # <--"),
     "invalid mitmproxy filter expression"),
    ("backtracking regex in a filter", RULE.replace(
        """filter: '~u "/m"'""", """filter: '~u "(a)\\\\1"'  # <--"""), "RE2"),
    ("filter reads the response", RULE.replace(
        """filter: '~u "/m"'""", """filter: '~u "/m" & !~c 404'  # <--"""),
     "uses ~c, which reads the response"),
    ("filter reads either side", RULE.replace(
        """filter: '~u "/m"'""", """filter: '~u "/m" | ~b email'  # <--"""),
     "uses ~b, which also reads the response: rules classify the request, so use ~bq"),
    ("bad jsonpath", RULE.replace("event: $.name", "event: $.name[  # <--"),
     "invalid JSONPath"),
    ("jsonpath without $", RULE.replace("event: $.name", "event: name  # <--"),
     "must start with '$'"),
    ("deprecated jsonpath", RULE.replace("each: $.items[*]", "each: $.a | $.b  # <--"),
     "deprecated JSONPath"),
    ("lookaround regex", RULE.replace('      - name: "client.*"',
                                      '      - regex: "(?=x)"  # <--'),
     "not supported by the linear-time RE2"),
    ("backreference in a key pattern", RULE.replace("$.os: device_info",
                                                    '"re:(a)\\\\1": device_info  # <--'),
     "backreferences"),
    ("equals without field", RULE.replace("        trigger: in_meeting",
                                          "        equals: x  # <--\n        trigger: in_meeting"),
     "'equals' needs a 'field'"),
    ("name without event paths", RULE.replace("    event: $.name\n", ""),
     "'name' needs the rule to have 'event' paths"),
    ("missing title", RULE.replace("    title: Demo\n", ""), "missing required key 'title'"),
    ("match needs something", RULE.replace("""      filter: '~u "/m"'""", "      {}  # <--"),
     "'match' needs a 'filter', 'domains' or both"),
    ("match of the wrong type", RULE.replace("""    match:\n      filter: '~u "/m"'""",
                                             "    match: '~u /m'  # <--"),
     "'match' must be a mapping"),
    ("public suffix domain",
     RULE.replace("    match:\n", "    match:\n      domains: [co.uk]  # <--\n"),
     "public suffix"),
    ("not a domain",
     RULE.replace("    match:\n", "    match:\n      domains: ['not a host']  # <--\n"),
     "is not a domain name"),
    ("bad rule id", RULE.replace("id: demo-rule", "id: Demo Rule  # <--"),
     "must be a lowercase slug"),
    ("bad test url", RULE + "    tests:\n      - request: {url: 'ftp://x'}  # <--\n"
                            "        expect: {match: true}\n", "not an absolute http(s) URL"),
    ("test expect type", RULE + "    tests:\n      - request: {url: 'https://a.example.com/m'}\n"
                                "        expect: {match: maybe}  # <--\n",
     "'match' must be true or false"),
    ("yaml syntax", RULE.replace("    title: Demo", "\ttitle: Demo  # <--"),
     "invalid YAML"),
    ("yaml alias", RULE.replace("    title: Demo", "    title: Demo\n"
                                "    references: &refs [a, b]  # <--\n    marks: *refs"),
     "anchors/aliases are not allowed"),
]


def _write(tmp_path: Path, body: str, name: str = "pack.yaml") -> tuple[Path, int]:
    text = body if body.startswith(("pack", "x:")) else HEAD + body
    if body.startswith("packs"):
        text = HEAD + RULE + body
    if body.startswith("x:"):
        text = body
    lines = text.splitlines()
    marked = [i + 1 for i, line in enumerate(lines) if "# <--" in line]
    path = tmp_path / name
    path.write_text(text)
    return path, (marked[0] if marked else 0)


def test_the_template_itself_loads(tmp_path: Path) -> None:
    path, _ = _write(tmp_path, RULE)
    ruleset = load_rules([path], include_builtin=False)
    assert [r.id for r in ruleset.rules] == ["demo-rule"]


@pytest.mark.parametrize(("text", "fragment"), [(t, f) for _, t, f in ERRORS],
                         ids=[case for case, _, _ in ERRORS])
def test_each_error_kind_is_reported_with_its_line(tmp_path: Path, text: str,
                                                   fragment: str) -> None:
    path, line = _write(tmp_path, text)
    with pytest.raises(RuleLoadError) as info:
        load_rules([path], include_builtin=False)
    matching = [e for e in info.value.errors if fragment in e.message]
    assert matching, [str(e) for e in info.value.errors]
    error = matching[0]
    assert error.path == str(path)
    if line:
        assert error.line == line, str(error)
    assert str(error).startswith(f"{path}:{error.line}:{error.col}: ")


def test_every_error_is_gathered_not_just_the_first(tmp_path: Path) -> None:
    broken = (RULE.replace("purpose: telemetry", "purpose: nope")
              .replace("trigger: in_meeting", "trigger: nope")
              .replace("$.os: device_info", "$.os: nope"))
    second = RULE.replace("demo-rule", "other-rule").replace("title: Demo", "titel: x")
    path, _ = _write(tmp_path, broken + second)
    with pytest.raises(RuleLoadError) as info:
        load_rules([path], include_builtin=False)
    lines = sorted(e.line for e in info.value.errors)
    assert len(lines) == 5  # purpose, trigger, category, unknown 'titel', missing title
    assert len(set(lines)) == 5
    assert "(and 4 more errors)" in str(info.value)


def test_duplicate_rule_ids_across_packs(tmp_path: Path) -> None:
    first, _ = _write(tmp_path, RULE, "a.yaml")
    second, _ = _write(tmp_path, RULE.replace("pack: demo", "pack: demo"), "b.yaml")
    second.write_text(second.read_text().replace("pack: demo", "pack: demo2"))
    with pytest.raises(RuleLoadError) as info:
        load_rules([first, second], include_builtin=False)
    (error,) = info.value.errors
    assert error.path == str(second) and error.line == 5
    assert "duplicate rule id 'demo-rule'" in error.message and f"{first}:5" in error.message


def test_duplicate_pack_ids(tmp_path: Path) -> None:
    first, _ = _write(tmp_path, RULE, "a.yaml")
    second, _ = _write(tmp_path, RULE.replace("demo-rule", "other"), "b.yaml")
    with pytest.raises(RuleLoadError, match="duplicate pack id 'demo'"):
        load_rules([first, second], include_builtin=False)


def test_missing_file_and_empty_pack(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(RuleLoadError) as info:
        load_rules([tmp_path / "nope.yaml", empty], include_builtin=False)
    messages = sorted(e.message for e in info.value.errors)
    assert messages == ["no such file or folder", "the pack is empty"]


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RuleLoadError, match="aliases are not allowed"):
        load_rules([path], include_builtin=False)


@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("pack: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(RuleLoadError, match="nesting") as info:
        load_rules([path], include_builtin=False)
    error = next(e for e in info.value.errors if "nesting" in e.message)
    assert error.line == 1 and error.col > 64


def test_a_huge_pack_loads(tmp_path: Path) -> None:
    """5,000 rules: parse caches make repeated filters and paths cheap (no timing assert)."""
    body = "".join(
        RULE.replace("demo-rule", f"rule-{i}").replace('"client.*"', f'"client.{i % 50}.*"')
        for i in range(5000))
    path, _ = _write(tmp_path, body)
    ruleset = load_rules([path], include_builtin=False)
    assert len(ruleset.rules) == 5000


def test_rule_error_formats_as_path_line_col() -> None:
    assert str(RuleError("rules/x.yaml", 42, 7, "bad")) == "rules/x.yaml:42:7: bad"


def test_builtin_packs_are_the_yaml_files_directly_in_rules(tmp_path: Path) -> None:
    files, errors = pack_files(include_builtin=True)
    assert not errors
    assert {f.parent for f, _ in files} == {builtin_rules_dir()}
    assert all(f.read_text().count("\npack:") + f.read_text().startswith("pack:")
               for f, _ in files)
    assert {f.name for f, _ in files} >= {"webex.yaml", "generic.yaml", "trackers.yaml"}


def test_builtin_packs_load_and_a_folder_path_adds_its_packs(tmp_path: Path) -> None:
    path, _ = _write(tmp_path, RULE)
    ruleset = load_rules([tmp_path])
    ids = {p.id for p in ruleset.packs}
    assert {"webex", "generic", "trackers", "demo"} <= ids


def test_giving_a_builtin_pack_again_does_not_duplicate_it() -> None:
    ruleset = load_rules([builtin_rules_dir() / "webex.yaml"])
    assert [p.id for p in ruleset.packs].count("webex") == 1


def test_action_and_marks_are_kept(tmp_path: Path) -> None:
    text = RULE.replace("    title: Demo", "    title: Demo\n    action: redact\n"
                                          "    marks: [meeting_join]")
    path, _ = _write(tmp_path, textwrap.dedent(text))
    (rule,) = load_rules([path], include_builtin=False).rules
    assert rule.action == "redact" and rule.marks == ("meeting_join",)
