"""The terminal summary's budget (an 80×60 screen) and the live view's running total."""

from __future__ import annotations

import copy
import io
import json

import pytest
from rich.cells import cell_len
from rich.console import Console

from builders import audit_sample
from phonehome.addon_config import ConfigError, parse_config
from phonehome.report.terminal import (
    MAX_DESTINATIONS,
    RunningTotal,
    format_flow_line,
    format_summary,
)
from phonehome.report.terminal_summary import MAX_LINES, short_path


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sample")
    result = audit_sample(out, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads((out / "audit.json").read_text())


def _render(renderable, width: int) -> list[str]:
    """What rich prints at `width` columns."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()


def _inflated(report: dict, times: int) -> dict:
    """The sample's claims and digest entries, repeated: a session with far more of both."""
    big = copy.deepcopy(report)
    big["claims"] = [dict(c, id=f"{c['id']}-{i}", statement=c["statement"] * 3)
                     for i in range(times) for c in report["claims"]]
    big["digest"] = [dict(e, id=f"d{i}-{e['id']}") for i in range(times)
                     for e in report["digest"]]
    return big


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("times", [1, 10])
def test_summary_fits_the_screen_at_any_width(sample_report, width, times):
    report = _inflated(sample_report, times)
    written = [f"/tmp/a/rather/long/folder/name/for/reports/audit.{x}" for x in
               ("json", "md", "html")]
    lines = _render(format_summary(report, written=written), width)
    assert len(lines) <= MAX_LINES
    assert max(cell_len(line) for line in lines) <= width
    text = "\n".join(lines)
    assert lines[0].startswith("phonehome · Cisco Webex: 90 flows")
    assert "Vendor claims" in text and "What of yours went where" in text
    assert "Reports in /tmp/a/rather/long" in text.replace("\n", "")
    # the first entry is there, by its label and where it went
    first = report["digest"][0]
    assert f"{first['label']} {first['evidence']} →" in text


def test_every_claim_has_its_verdict_and_one_line_reason(sample_report):
    lines = _render(format_summary(sample_report), 80)
    for claim in sample_report["claims"]:
        verdict = {"holds": "✓ holds", "contradicted": "✗ contradicted",
                   "untested": "? untested"}[claim["verdict"]]
        opening = claim["statement"].split()[:4]
        at = next(i for i, line in enumerate(lines)
                  if line.startswith(f" {verdict}") and line.split()[2:6] == opening)
        reason = next(line for line in lines[at + 1:at + 3]
                      if line.strip().split()[:3] == claim["reason"].split()[:3])
        assert reason.startswith(" " * 17)


def test_a_line_is_shortened_after_a_whole_word(sample_report):
    claims = [c for c in sample_report["claims"] if len(c["reason"]) > 70]
    assert claims  # the sample has long reasons
    lines = _render(format_summary(sample_report), 80)
    for claim in claims:
        line = next(x for x in lines if x.strip().startswith(claim["reason"][:40]))
        shown = line.strip().removesuffix("…").rstrip()
        assert claim["reason"].startswith(shown)
        rest = claim["reason"][len(shown):]
        assert rest[:1] in (" ", ""), (shown, rest)  # cut at a space, never inside a word


def test_the_third_parties_that_got_personal_data_are_on_the_first_screen(sample_report):
    text = "\n".join(_render(format_summary(sample_report), 80))
    third = {d["organization"] or d["host"] for e in sample_report["digest"]
             for d in e["destinations"] if d["party"] == "third"}
    assert third >= {"Amplitude"}
    for organization in third:
        assert organization in text


def test_short_path_keeps_the_head_and_the_field():
    assert short_path("$.metrics[].eventPayload.event.loginInfo.userEmail") == \
        "$.metrics[].eventPayload…userEmail"
    assert short_path("$.a.b") == "$.a.b"
    assert short_path("header:Authorization") == "header:Authorization"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(host: str, *severities: str) -> dict:
    return {"host": host, "findings": [{"severity": s} for s in severities]}


def test_running_total_every_interval_with_new_destinations():
    clock = Clock()
    total = RunningTotal(30.0, clock)
    assert total.due() is None  # nothing yet
    total.add(_record("a.example", "high", "low"))
    total.add(_record("b.example"))
    clock.now += 29.9
    assert total.due() is None  # not yet 30 s
    clock.now += 0.1
    line = total.due()
    assert line is not None
    assert line.plain == ("── total: 2 flows (+2), 2 findings (+2, 1 high in all), "
                          "2 destinations (+2 new: a.example, b.example)")
    clock.now += 60
    assert total.due() is None  # nothing new came in
    total.add(_record("a.example", "medium"))
    assert total.due() is not None
    total.add(_record("c.example"))
    clock.now += 30
    assert total.due().plain == ("── total: 4 flows (+1), 3 findings (+0, 1 high in all), "
                                 "3 destinations (+1 new: c.example)")


def test_running_total_off_at_zero():
    clock = Clock()
    total = RunningTotal(0, clock)
    total.add(_record("a.example"))
    clock.now += 1e6
    assert total.due() is None


def test_hostile_host_in_the_total_is_shown_inert():
    clock = Clock()
    total = RunningTotal(1, clock)
    total.add(_record("evil\x1b]0;pwned\x07.example"))
    clock.now += 1
    plain = total.due().plain
    assert "\x1b" not in plain and "\\x1b" in plain


def test_a_flood_of_hostile_hosts_keeps_the_total_bounded():
    clock = Clock()
    total = RunningTotal(1, clock)
    total.add(_record("x" * 100_000 + ".example"))
    for i in range(MAX_DESTINATIONS + 10):
        total.add(_record(f"h{i}.example"))
    assert total.destinations == f"{MAX_DESTINATIONS}+"
    clock.now += 1
    plain = total.due().plain
    assert f"{MAX_DESTINATIONS}+ destinations (+{MAX_DESTINATIONS} new: " in plain
    assert plain.endswith(", …)") and len(plain) < 1000
    total.add(_record("late.example"))  # past the cap: counted as a flow, not remembered
    clock.now += 1
    assert total.due().plain.endswith(f"{MAX_DESTINATIONS}+ destinations")


def test_a_long_host_is_cut_in_the_flow_line():
    record = {"method": "POST", "host": "a" * 100_000, "url": "https://" + "a" * 100_000 + "/x",
              "purpose": "telemetry", "trigger": "periodic", "bytes_out": 10, "findings": []}
    assert len(format_flow_line(record).plain) < 200


@pytest.mark.parametrize(("value", "reason"), [
    ("-1", "must be 0 or more seconds"), ("soon", "not a number"), ("inf", "must be 0 or more"),
])
def test_bad_total_interval_is_one_line(tmp_path, value, reason):
    from test_addon_config import _options

    with pytest.raises(ConfigError) as info:
        parse_config(_options(tmp_path, phonehome_total_interval=value))
    [line] = info.value.problems
    assert line.startswith("phonehome_total_interval: ") and reason in line


def test_total_interval_and_details_are_read(tmp_path):
    from test_addon_config import _options

    config = parse_config(_options(tmp_path, phonehome_total_interval="0.5",
                                   phonehome_details="true"))
    assert config.total_interval == 0.5 and config.details is True
