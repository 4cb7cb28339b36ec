"""Identity files are bounded (values, characters per value) with a one-line error,
and the identity search over form prefixes answers as a search of whole forms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import exceptions, io
from mitmproxy.test import taddons, tflow, tutils

from builders import identity_of
from phonehome.addon import PhonehomeAudit
from phonehome.detect.identity import (
    MAX_VALUE_CHARS,
    MAX_VALUES,
    TRIE_CHARS,
    Identity,
    IdentityError,
    IdentityIndex,
    _bounded,
    load_identity,
)


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def _capture(path: Path, bodies: list[bytes]) -> Path:
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for i, body in enumerate(bodies):
            request = tutils.treq(method=b"POST", path=f"/metrics/{i}".encode(), content=body,
                                  headers=((b"content-type", b"application/json"),))
            writer.add(tflow.tflow(req=request, resp=True))
    return path


def _titles(count: int) -> list[str]:
    return [f"Planning review number {i} for team {i % 37}" for i in range(count)]


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, width=1 << 20), encoding="utf-8")
    return path


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: {"custom": "x" * (MAX_VALUE_CHARS + 1)}, f"more than {MAX_VALUE_CHARS}"),
    (lambda: {"name": "Jane Roe", "custom": ["ok value", "y" * 400_000]},
     f"more than {MAX_VALUE_CHARS}"),
    (lambda: {"meeting_titles": _titles(MAX_VALUES + 1)}, f"more than the {MAX_VALUES}"),
])
def test_past_the_bounds_the_cli_exits_2_with_one_line(tmp_path, make, reason):
    identity = _write(tmp_path / "identity.yaml", make())
    capture = _capture(tmp_path / "a.mitm", [b'{"a": 1}'])
    result = _phonehome("audit", capture, "--identity", identity, "-o", tmp_path / "out", "-q")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert str(identity) in lines[0] and reason in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_the_line_of_an_over_long_value_is_named(tmp_path):
    path = tmp_path / "identity.yaml"
    path.write_text(f"email: jane@example.org\ncustom:\n  - fine\n  - {'z' * 2000}\n")
    with pytest.raises(IdentityError, match=r"identity.yaml:4:\d+: custom: value of 2000 char"):
        load_identity(path)


def test_mappings_are_bounded_too():
    with pytest.raises(IdentityError, match="more than"):
        identity_of({"custom": "q" * (MAX_VALUE_CHARS + 1)})
    with pytest.raises(IdentityError, match="more than"):
        Identity.from_entries([("custom", f"value {i}") for i in range(MAX_VALUES + 1)])


def test_a_file_at_the_bounds_loads_and_audits(tmp_path):
    long_value = ("Quarterly all-hands agenda " * 64)[:MAX_VALUE_CHARS]
    titles = _titles(MAX_VALUES - 2)
    identity = _write(tmp_path / "identity.yaml",
                      {"email": "jane.roe@example.org", "meeting_titles": titles,
                       "custom": long_value})
    assert len(load_identity(identity).values) == MAX_VALUES
    capture = _capture(tmp_path / "a.mitm", [
        json.dumps({"title": titles[-1]}).encode(),
        json.dumps({"notes": long_value}).encode(),
        json.dumps({"user": "jane.roe@example.org"}).encode(),
    ])
    out = tmp_path / "out"
    result = _phonehome("audit", capture, "--identity", identity, "-o", out, "-q",
                        "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "audit.json").read_text())
    flagged = {flow["url"].rsplit("/", 1)[1]: {f["location"] for f in flow["findings"]
                                               if f["type"] == "identity_match"}
               for flow in report["flows"]}
    assert flagged == {"0": {"$.title"}, "1": {"$.notes"}, "2": {"$.user"}}


def test_configure_turns_a_bound_into_options_error(tmp_path):
    identity = _write(tmp_path / "identity.yaml", {"custom": "w" * (MAX_VALUE_CHARS + 1)})
    addon = PhonehomeAudit()
    with taddons.context(addon) as tctx:
        try:
            with pytest.raises(exceptions.OptionsError, match=f"more than {MAX_VALUE_CHARS}"):
                tctx.configure(addon, phonehome_report_dir=str(tmp_path / "r"),
                               phonehome_identity=str(identity))
        finally:
            if not tctx.master.event_loop.is_closed():
                tctx.master.event_loop.close()


# --- the prefix trie against a plain search of whole forms ----------------------

_IDENTITY = identity_of({
    "email": "jane.roe@example.org",
    "name": "Jane Roe",
    "meeting_titles": ["Q3 budget review and planning for the whole year",
                       "Q3 budget review and planning for the next year"],
    "custom": ["a" * 60, "employee-4711"],
})
_INDEX = IdentityIndex(_IDENTITY)
_PIECES = sorted({form.needle for form in _IDENTITY.forms})


def _reference(text: str) -> list[tuple[int, int, str]]:
    """Every occurrence of every whole form, found with str.find."""
    out = []
    for form in _IDENTITY.forms:
        start = text.find(form.needle)
        while start != -1:
            end = start + len(form.needle)
            if not form.bounded or _bounded(text, start, end):
                out.append((start, end, form.needle))
            start = text.find(form.needle, start + 1)
    return sorted(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(_PIECES),
    st.sampled_from(_PIECES).map(lambda n: n[: TRIE_CHARS + 3]),  # a prefix, cut short
    st.text(alphabet="aJ3 .@x-_%=", max_size=12),
), max_size=8))
def test_prefix_trie_finds_what_whole_forms_find(parts):
    text = "".join(parts)
    got = sorted((start, end, form.needle) for start, end, form in _INDEX.matches(text))
    assert got == _reference(text)


def test_long_forms_share_a_trie_prefix_and_are_told_apart():
    long_forms = [f for f in _IDENTITY.forms if len(f.needle) > TRIE_CHARS]
    assert long_forms
    text = "x " + _IDENTITY.values[3][1] + " y"  # the second title only
    found = {form.index for _, _, form in _INDEX.matches(text)}
    assert found == {3}
