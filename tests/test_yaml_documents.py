"""One loader for our YAML documents: rule packs, claims, enforce and identity files
all report `path:line:col: message`, with did-you-mean hints, and claims carry tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from builders import ROOT
from phonehome.analysis.claims import load_claims, run_claim_tests
from phonehome.detect import load_identity
from phonehome.enforce import load_enforce_file
from phonehome.rules import load_rules
from phonehome.yamldoc import DocumentError, Problem

CLAIMS = sorted((ROOT / "rules" / "claims").glob("*.yaml"))

CLAIMS_HEAD = """\
schema: phonehome.claims/1
vendor: Example
claims:
  - id: a
    statement: s
    check: no_third_party_sharing
    source: {title: t}
"""


def _load(kind: str, path: Path) -> object:
    loaders = {"rules": lambda p: load_rules([p], include_builtin=False),
               "claims": load_claims, "enforce": load_enforce_file, "identity": load_identity}
    return loaders[kind](path)


@pytest.mark.parametrize(("kind", "text", "line", "col", "words"), [
    ("rules", "pack: p\nvendor: V\nrules:\n  - id: r\n    title: t\n    purpose: telemtry\n"
     "    match: {filter: '~all'}\n", 6, 14, "(did you mean 'telemetry'?)"),
    ("rules", "pack: p\nvendor: V\nrulez: []\n", 3, 1, "(did you mean 'rules'?)"),
    ("claims", CLAIMS_HEAD + "    chek: x\n", 8, 5, "(did you mean 'check'?)"),
    ("claims", CLAIMS_HEAD.replace("no_third_party_sharing", "no_third_party_sharng"), 6, 12,
     "(did you mean 'no_third_party_sharing'?)"),
    ("claims", CLAIMS_HEAD + "    params: {partys: [third]}\n", 8, 14,
     "(did you mean 'parties'?)"),
    ("enforce", "rules:\n  r: blok\n", 2, 6, "(did you mean 'block'?)"),
    ("enforce", "block_statuss: 403\n", 1, 1, "(did you mean 'block_status'?)"),
    ("identity", "name: Jane Roe\nemial: jane@example.org\n", 2, 1, "(did you mean 'email'?)"),
])
def test_every_kind_names_line_and_column_with_a_hint(tmp_path: Path, kind: str, text: str,
                                                      line: int, col: int, words: str) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    with pytest.raises(DocumentError) as info:
        _load(kind, path)
    problem = next((e for e in info.value.errors if words in e), None)
    assert problem is not None, info.value.errors
    assert isinstance(problem, Problem)
    assert (problem.path, problem.line, problem.col) == (str(path), line, col), problem
    assert problem.startswith(f"{path}:{line}:{col}: ")


def test_claims_errors_have_a_real_line(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS_HEAD + "    params: 3\n  - 4\n")
    with pytest.raises(DocumentError) as info:
        load_claims(path)
    assert [(e.line, e.col) for e in info.value.errors] == [(8, 13), (9, 5)]


@pytest.mark.parametrize("path", CLAIMS, ids=[p.stem for p in CLAIMS])
def test_bundled_claims_pass_their_inline_tests(path: Path) -> None:
    results = run_claim_tests(load_claims(path))
    assert results and all(claim.tests for claim, _ in results)
    assert [failures for _, failures in results] == [[] for _ in results]


def test_a_wrong_expectation_fails_with_the_claim_and_line(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS_HEAD + textwrap.indent(textwrap.dedent("""\
        tests:
          - name: a third party
            flows: [{}, {party: third}]
            verdict: holds
          - flows: [{party: third}]
            verdict: contradicted
            evidence: [f2]
        """), "    "))
    ((claim, failures),) = run_claim_tests(load_claims(path))
    assert failures == [
        "a [a third party, line 9]: contradicted (1 telemetry flow goes to third parties "
        "(None ×1)), expected holds",
        "a [test 2, line 12]: evidence ['f1'], expected ['f2']",
    ]


def test_claim_tests_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(CLAIMS_HEAD + "    tests:\n      - verdict: holdz\n"
                    "        flows: [{purpose: telemetri, findings: [{type: email}]}]\n")
    with pytest.raises(DocumentError) as info:
        load_claims(path)
    messages = [e.message for e in info.value.errors]
    assert any("(did you mean 'holds'?)" in m for m in messages), messages
    assert any("(did you mean 'telemetry'?)" in m for m in messages), messages
    assert any("missing required key 'category'" in m for m in messages), messages


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_claims_test_command(tmp_path: Path) -> None:
    bundled = _phonehome("claims", "test")
    assert bundled.returncode == 0, bundled.stdout + bundled.stderr
    assert "PASS webex-telemetry-opt-out (2 tests)" in bundled.stdout
    assert "0 failed" in bundled.stdout
    failing = tmp_path / "claims.yaml"
    failing.write_text(CLAIMS_HEAD + "    tests:\n      - {flows: [{party: third}], "
                                     "verdict: holds}\n")
    result = _phonehome("claims", "test", failing)
    assert result.returncode == 1 and "FAIL a" in result.stdout, result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(CLAIMS_HEAD + "    tests: [{verdict: maybe}]\n")
    result = _phonehome("claims", "test", bad)
    assert result.returncode == 2 and f"{bad}:8:" in result.stdout, result.stdout
