"""The HTML report of a real `phonehome audit`, driven in headless Chromium over DevTools:
a mouse click opens a flow and shows its flagged field highlighted; the search box filters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builders import audit_sample
from test_html_browser import _chromium, _DevTools, _flags

pytestmark = pytest.mark.e2e

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("audit")
    done = audit_sample(out)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    return out / "audit.html", report


class Page:
    def __init__(self, tools: _DevTools, session: str) -> None:
        self.tools, self.session = tools, session

    def js(self, expression: str) -> Any:
        reply = self.tools.call("Runtime.evaluate", self.session, expression=expression,
                                returnByValue=True)
        assert "exceptionDetails" not in reply, reply
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.js(f"""(function () {{
            var el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: "center"}});
            var r = el.getClientRects()[0];
            return [r.left + Math.min(r.width / 2, 40), r.top + r.height / 2];
        }}())""")
        for kind in ("mousePressed", "mouseReleased"):
            self.tools.call("Input.dispatchMouseEvent", self.session, type=kind, x=box[0],
                            y=box[1], button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        self.tools.call("Input.insertText", self.session, text=text)

    def shown_flows(self) -> set[str]:
        return set(self.js("""Array.from(document.querySelectorAll("details.flow"))
            .filter(function (d) { return d.checkVisibility(); })
            .map(function (d) { return d.id.slice(5); })"""))


@pytest.fixture
def page(audited: tuple[Path, dict[str, Any]], tmp_path: Path):
    chromium = _chromium()
    tools = _DevTools(chromium, [*_flags(tmp_path), "--window-size=1280,1000"])
    try:
        yield Page(tools, tools.open_page(audited[0].as_uri(), RECORD_VIOLATIONS))
    finally:
        tools.close()


def _flagged_body_finding(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    for flow in report["flows"]:
        for finding in flow["findings"]:
            if finding["severity"] == "high" and finding["location"].startswith("$."):
                return flow, finding
    raise AssertionError("the sample has a high finding in a body")


def test_click_opens_the_flow_and_shows_the_flagged_field(page: Page, audited) -> None:
    _html, report = audited
    flow, finding = _flagged_body_finding(report)
    field = f'#flow-{flow["id"]} li.flag[data-loc="{finding["location"]}"]'
    assert page.js(f"document.querySelector({json.dumps(field)}) !== null")
    assert page.js(f"document.querySelector({json.dumps(field)}).checkVisibility()") is False
    page.click(f'#flow-{flow["id"]} > summary')
    assert page.js(f'document.getElementById({json.dumps("flow-" + flow["id"])}).open') is True
    seen = page.js(f"""(function () {{
        var li = document.querySelector({json.dumps(field)});
        var s = getComputedStyle(li);
        return {{visible: li.checkVisibility(), text: li.textContent,
                 outline: s.outlineStyle, background: s.backgroundColor,
                 findings: Array.from(li.querySelectorAll(":scope > .fnd"))
                     .map(function (x) {{ return x.getAttribute("data-type"); }})}};
    }}())""")
    assert seen["visible"] is True
    assert seen["outline"] == "solid" and seen["background"] != "rgba(0, 0, 0, 0)"
    assert finding["type"] in seen["findings"]
    assert finding["evidence"] in seen["text"]
    assert page.js("window.__violations") == []


def test_batch_items_carry_their_event(page: Page, audited) -> None:
    _html, report = audited
    flow = next(f for f in report["flows"] if len(f["events"]) > 1
                and all(e.get("location") for e in f["events"]))
    page.click(f'#flow-{flow["id"]} > summary')
    labels = page.js(f"""Array.from(document.querySelectorAll(
        {json.dumps("#flow-" + flow["id"] + " ul.tree .evt")}))
        .filter(function (x) {{ return x.checkVisibility(); }})
        .map(function (x) {{ return [x.querySelector("b").textContent,
                                     x.getAttribute("data-event-trigger")]; }})""")
    assert labels == [[e["name"], e["trigger"] or "unknown"] for e in flow["events"]]


@pytest.mark.parametrize("what", ["host", "field", "value"])
def test_search_box_filters_flows(page: Page, audited, what: str) -> None:
    _html, report = audited
    every = {f["id"] for f in report["flows"]}
    assert page.shown_flows() == every
    if what == "host":
        query = "api.amplitude.com"
        expected = {f["id"] for f in report["flows"] if f["host"] == query}
    elif what == "field":
        query = "macAddress"
        expected = {f["id"] for f in report["flows"] if query in json.dumps(f["decoded"])}
    else:
        query = _flagged_body_finding(report)[1]["evidence"]
        expected = {f["id"] for f in report["flows"]
                    if any(x["evidence"] == query for x in f["findings"])}
    assert 0 < len(expected) < len(every)
    page.type_into("#search", query)
    assert page.shown_flows() == expected
    count = page.js('document.getElementById("filter-count").textContent')
    assert count == f"{len(expected)} of {len(every)} flows shown"
    page.type_into("#search", "")
    page.js('document.getElementById("search").dispatchEvent(new Event("input"))')
    assert page.shown_flows() == every
    assert page.js("window.__violations") == []


def test_digest_comes_first_and_its_example_link_opens_the_flow(page: Page, audited) -> None:
    _html, report = audited
    first = page.js('document.querySelector("main > section").id')
    assert first == "digest"
    entry = report["digest"][0]
    shown = page.js(f"""Array.from(document.querySelectorAll(
        "#digest-{entry['id']} tr.destination td:nth-child(2)"))
        .map(function (td) {{ return td.textContent; }})""")
    assert shown == [d["host"] for d in entry["destinations"]]
    example = entry["destinations"][0]["example_flow"]
    page.click(f'#digest-{entry["id"]} a[href="#flow-{example}"]')
    assert page.js(f'document.getElementById("flow-{example}").open') is True
    assert page.js("location.hash") == f"#flow-{example}"


def test_a_malformed_link_hash_leaves_the_page_working(audited, tmp_path: Path) -> None:
    """A hash that is not valid percent-encoding (a pasted, cut-off link) must not stop
    the page's script before the search box is wired."""
    html, report = audited
    tools = _DevTools(_chromium(), [*_flags(tmp_path), "--window-size=1280,1000"])
    try:
        page = Page(tools, tools.open_page(html.as_uri() + "#flow-%E0%A4%A", RECORD_VIOLATIONS))
        query = "api.amplitude.com"
        expected = {f["id"] for f in report["flows"] if f["host"] == query}
        assert 0 < len(expected) < len(report["flows"])
        page.type_into("#search", query)
        assert page.shown_flows() == expected
    finally:
        tools.close()
