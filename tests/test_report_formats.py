"""Markdown, HTML and CSV built from one report dict: structure, content, escaping.

No byte snapshots: each format is parsed (html.parser, csv, Markdown tables)
and checked against the JSON it came from.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import jsonschema
import pytest

from builders import FIXTURES, ROOT
from phonehome.report.csv_export import (
    FINDING_COLUMNS,
    FLOW_COLUMNS,
    format_findings_csv,
    format_flows_csv,
)
from phonehome.report.html import format_html, timeline_model
from phonehome.report.html_parts import EXAMPLES_PER_CLAIM
from phonehome.report.markdown import format_markdown, md_escape
from phonehome.report.view import endpoint_key, format_time, path_template

SCHEMA = ROOT / "addons" / "phonehome" / "report" / "report.schema.json"
FIXTURE_NAMES = ("report_webex_session1.json", "report_webex_session2.json")


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def all_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for flow in report["flows"] for f in flow["findings"]]


# --- a tiny DOM from html.parser ---------------------------------------------------------

VOID = {"meta", "br", "input", "link", "img", "hr", "area", "base", "col", "embed", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str) -> list[Node]:
        return [node for node in self.iter() if node.tag == tag]

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class DomBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent  # type: ignore[assignment]
        if node is not self.root:
            self.current = node.parent  # type: ignore[assignment]

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = DomBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def _children(node: Node, tag: str) -> list[Node]:
    return [c for c in node.children if isinstance(c, Node) and c.tag == tag]


def tree_json(tree: Node) -> Any:
    """The JSON a payload tree (ul.tree) shows, read back from its nodes."""

    def item(li: Node) -> tuple[str | None, Any]:
        details = _children(li, "details")
        head = details[0].children[0] if details else li
        keys = [c for c in _children(head, "span") if c.has_class("k")]
        key = keys[0].text() if keys else None
        if not details:
            return key, json.loads(_children(li, "code")[0].text())
        (size,) = [c for c in _children(head, "span") if c.has_class("n")]
        members = [item(c) for c in _children(_children(details[0], "ul")[0], "li")]
        if size.text().startswith("{"):
            return key, {k: v for k, v in members}
        return key, [v for _k, v in members]

    (root,) = [li for li in _children(tree, "li") if not li.has_class("cut")]
    return item(root)[1]


# --- Markdown helpers ----------------------------------------------------------------------

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def md_headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^#{1,3} ", line)]


def md_section(text: str, heading_prefix: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading_prefix))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
    )
    return "\n".join(lines[start + 1 : end])


def md_table(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) >= 2 and set(rows[1].replace("|", "")) <= {"-"}, rows[:2]
    width = len(_CELL_SPLIT.split(rows[0]))
    body = []
    for row in rows[2:]:
        cells = _CELL_SPLIT.split(row)
        assert len(cells) == width, row
        body.append([cell.strip() for cell in cells[1:-1]])
    return body


def md_unescape(text: str) -> str:
    text = re.sub(r"\\(.)", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- hostile input -------------------------------------------------------------------------

HOSTILE_URL = "https://metrics-a.wbx2.com/x?q=<script>alert('url')</script>"
HOSTILE_HOST = "\"><img src=x onerror=alert('host')>"
HOSTILE_DECODED = {"note": "</pre><script>alert('decoded')</script>", "a|b": "[x](http://e.vil)"}
HOSTILE_EVIDENCE = "<b onmouseover=alert(1)>ev</b> | =cmd|' /C calc'!A0"
HOSTILE_LOCATION = "=HYPERLINK(\"https://e.vil\",\"click\")"


def hostile_report() -> dict[str, Any]:
    report = copy.deepcopy(load("report_webex_session1.json"))
    flow = next(f for f in report["flows"] if f["id"] == "f04")
    flow["url"] = HOSTILE_URL
    flow["host"] = HOSTILE_HOST
    flow["decoded"] = HOSTILE_DECODED
    flow["findings"][0]["evidence"] = HOSTILE_EVIDENCE
    flow["findings"][0]["location"] = HOSTILE_LOCATION
    flow["events"][0]["name"] = "<svg onload=alert('event')>"
    report["markers"][0]["label"] = "<script>alert('marker')</script>"
    report["claims"][0]["reason"] = "<iframe src=https://e.vil>"
    return report


# --- the fixtures themselves -----------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_is_schema_valid(name: str) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema)(schema).validate(load(name))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_summary_agrees_with_its_flows(name: str) -> None:
    report = load(name)
    summary = report["summary"]
    assert summary["flows"] == len(report["flows"])
    assert summary["bytes_out"] == sum(f["bytes_out"] for f in report["flows"])
    assert summary["by_trigger"] == dict(Counter(f["trigger"] for f in report["flows"]))
    types = Counter(f["type"] for f in all_findings(report))
    if report["persistent_ids"]:
        types["persistent_id"] = len(report["persistent_ids"])
    assert summary["by_finding_type"] == dict(types)
    ids = {f["id"] for f in report["flows"]}
    assert set(report["after_opt_out"]) <= ids
    for entry in report["persistent_ids"]:
        assert set(entry["flows"]) <= ids


# --- view helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/metrics/api/v1/clientmetrics", "/metrics/api/v1/clientmetrics"),
        ("/wdm/api/v1/devices/7f3c2b1a-0c1d-4e5f-8a9b-0123456789ab", "/wdm/api/v1/devices/{id}"),
        ("/locus/api/v1/loci/12345/participant", "/locus/api/v1/loci/{id}/participant"),
        ("/x/0123456789abcdef0123/y", "/x/{id}/y"),
        ("/t/eyJhbGciOiJIUzI1NiJ9abc123_-xyz", "/t/{id}"),
        ("/clientmetrics-prelogin?alias=true", "/clientmetrics-prelogin"),
        ("/v1/region", "/v1/region"),
        ("", "/"),
    ],
)
def test_path_template(path: str, template: str) -> None:
    assert path_template(path) == template


def test_endpoint_key() -> None:
    flow = {"method": "POST", "host": "h.example", "url": "https://h.example/a/42?x=1"}
    assert endpoint_key(flow) == "POST h.example/a/{id}"


@pytest.mark.parametrize(
    ("raw", "forbidden"),
    [
        ("a|b", "a|b"),
        ("<script>", "<script>"),
        ("[x](http://e.vil)", "[x]("),
        ("line1\nline2", "\n"),
        ("`code`", "`code`"),
        ("*bold*", "*bold*"),
        ("_em_", "_em_"),
    ],
)
def test_md_escape_makes_text_inert(raw: str, forbidden: str) -> None:
    escaped = md_escape(raw)
    assert forbidden not in escaped
    assert md_unescape(escaped) == " ".join(raw.split())


# --- Markdown ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_markdown_structure_and_claims_first(name: str) -> None:
    report = load(name)
    text = format_markdown(report)
    headings = md_headings(text)
    assert headings[0] == "# phonehome audit report"
    assert headings[1] == "## What of yours went where"
    assert headings[2] == "## Claims"
    for expected in ("## Summary", "## Findings", "## Endpoints", "## Flows"):
        assert any(h.startswith(expected) for h in headings), expected
    rows = md_table(md_section(text, "## Claims"))
    assert len(rows) == len(report["claims"])
    for row, claim in zip(rows, report["claims"], strict=True):
        assert row[0] == f"**{claim['verdict'].upper()}**"
        assert f"`{claim['id']}`" in row[1]
        assert md_unescape(row[2]) == claim["reason"]
        assert re.findall(r"`(d\d+)`", row[3]) == claim["digest"]
        for flow_id in claim["evidence"]:
            assert flow_id in row[4]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_markdown_tables_agree_with_json(name: str) -> None:
    report = load(name)
    text = format_markdown(report)
    groups = md_table(md_section(text, "## Findings"))  # one row per finding group
    assert sum(int(r[7]) for r in groups) == len(all_findings(report))
    evidence: Counter[str] = Counter()
    for row in groups:
        evidence[md_unescape(row[6])] += int(row[7])
    assert evidence == Counter(f["evidence"] for f in all_findings(report))
    flows = md_table(md_section(text, "## Flows"))
    assert [r[0] for r in flows] == [f["id"] for f in report["flows"]]
    endpoints = md_table(md_section(text, "## Endpoints"))
    assert sum(int(r[1]) for r in endpoints) == len(report["flows"])
    summary = dict((r[0], r[1]) for r in md_table(md_section(text, "## Summary")))
    assert summary["Flows"] == str(report["summary"]["flows"])


def test_markdown_escapes_hostile_values() -> None:
    report = hostile_report()
    text = format_markdown(report)
    assert "<script>" not in text and "<img" not in text and "<iframe" not in text
    assert "](http://e.vil)" not in text
    rows = md_table(md_section(text, "## Findings"))  # cell counts hold despite the pipes
    evidence = [md_unescape(r[6]) for r in rows]
    assert HOSTILE_EVIDENCE in evidence
    flows = md_table(md_section(text, "## Flows"))
    assert md_unescape(next(r for r in flows if r[0] == "f04")[3]) == HOSTILE_URL


# --- CSV ------------------------------------------------------------------------------------------


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or ()), rows


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_flows_csv_agrees_with_json(name: str) -> None:
    report = load(name)
    header, rows = read_csv(format_flows_csv(report))
    assert header == list(FLOW_COLUMNS)
    assert [r["id"] for r in rows] == [f["id"] for f in report["flows"]]
    assert sum(int(r["bytes_out"]) for r in rows) == report["summary"]["bytes_out"]
    for row, flow in zip(rows, report["flows"], strict=True):
        assert int(row["finding_count"]) == len(flow["findings"])
        assert row["trigger"] == flow["trigger"]
        assert row["categories"].split("; ") == flow["categories"] or not flow["categories"]
        assert float(row["timestamp"]) == pytest.approx(flow["timestamp"], abs=1e-3)
        assert (row["after_opt_out"] == "true") == (flow["id"] in report["after_opt_out"])
        assert bool(row["audit_error"]) == bool(flow.get("audit_error"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_findings_csv_agrees_with_json(name: str) -> None:
    report = load(name)
    header, rows = read_csv(format_findings_csv(report))
    assert header == list(FINDING_COLUMNS)
    assert len(rows) == len(all_findings(report))
    expected = Counter(
        (flow["id"], f["type"], f["location"], f["evidence"], f["severity"])
        for flow in report["flows"] for f in flow["findings"]
    )
    got = Counter((r["flow_id"], r["type"], r["location"], r["evidence"], r["severity"])
                  for r in rows)
    assert got == expected
    ranks = ["info", "low", "medium", "high"]
    severities = [ranks.index(r["severity"]) for r in rows]
    assert severities == sorted(severities, reverse=True)


def test_csv_neutralises_formulas_and_keeps_hostile_text() -> None:
    report = hostile_report()
    _, rows = read_csv(format_findings_csv(report))
    row = next(r for r in rows if r["evidence"].startswith("<b "))
    assert row["location"] == "'" + HOSTILE_LOCATION
    assert row["evidence"] == HOSTILE_EVIDENCE
    _, flows = read_csv(format_flows_csv(report))
    assert next(r for r in flows if r["id"] == "f04")["url"] == HOSTILE_URL
    for r in rows + flows:
        for value in r.values():
            assert not value.startswith(("=", "+", "@")), value


# --- HTML ---------------------------------------------------------------------------------------

URL_ATTRS = ("src", "href", "action", "formaction", "xlink:href", "poster", "data", "background",
             "srcset", "ping")


def section_order(dom: Node) -> list[str]:
    return [n.attrs.get("id") or "" for n in dom.find_all("section")]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_html_structure_digest_then_claims(name: str) -> None:
    report = load(name)
    by_id = {f["id"]: f for f in report["flows"]}
    dom = parse_html(format_html(report))
    order = section_order(dom)
    assert order[:2] == ["digest", "claims"]
    for needed in ("summary", "timeline", "endpoints", "findings", "flows"):
        assert needed in order
    entries = [n for n in dom.find_all("details") if n.has_class("digest-entry")]
    assert report["digest"]
    assert [n.attrs["data-digest"] for n in entries] == [e["id"] for e in report["digest"]]
    for node, entry in zip(entries, report["digest"], strict=True):
        text = node.text()
        assert entry["label"] in text and entry["evidence"] in text
        assert format_time(entry["first_seen"]) in text  # a time, not epoch seconds
        assert str(entry["first_seen"]) not in text
        for org in entry["organizations"]:
            assert org in text
        rows = [r for r in node.find_all("tr") if r.has_class("destination")]
        assert [r.find_all("td")[1].text() for r in rows] == [
            d["host"] for d in entry["destinations"]]
    articles = [n for n in dom.find_all("article") if n.attrs.get("data-claim")]
    assert [a.attrs["data-claim"] for a in articles] == [c["id"] for c in report["claims"]]
    for article, claim in zip(articles, report["claims"], strict=True):
        assert article.attrs["data-verdict"] == claim["verdict"]
        assert claim["statement"] in article.text()
        assert claim["reason"] in article.text()
        links = [a.attrs["href"] or "" for a in article.find_all("a")]
        assert [h for h in links if h.startswith("#digest-")] == [
            f"#digest-{d}" for d in claim.get("digest") or ()]
        # readable examples (time, host, field, value, trigger) of evidence flows, in order
        flows = [h.removeprefix("#flow-") for h in links if h.startswith("#flow-")]
        evidence = [i for i in claim["evidence"] if i in flows]
        assert flows == evidence
        assert len(flows) == min(EXAMPLES_PER_CLAIM, len(claim["evidence"]))
        rows = [r for r in article.find_all("tr") if r.has_class("example")]
        for row, flow_id in zip(rows, flows, strict=True):
            flow = by_id[flow_id]
            cells = [c.text() for c in row.find_all("td")]
            assert cells[0] == format_time(flow["timestamp"]) and cells[1] == flow["host"]
            if flow["findings"]:
                assert cells[3] in {f["evidence"] for f in flow["findings"]}
                assert any(cells[2].startswith(f["location"]) for f in flow["findings"])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_html_content_agrees_with_json(name: str) -> None:
    report = load(name)
    dom = parse_html(format_html(report))
    rows = [n for n in dom.find_all("tr") if n.has_class("finding")]  # one per finding group
    assert sum(int(row.attrs["data-count"] or 0) for row in rows) == len(all_findings(report))
    evidence: Counter[str] = Counter()
    for row in rows:
        (cell,) = [n for n in row.find_all("td") if n.has_class("evidence")]
        evidence[cell.text().strip()] += int(row.attrs["data-count"] or 0)
    assert evidence == Counter(f["evidence"] for f in all_findings(report))
    flows = [n for n in dom.find_all("details") if n.has_class("flow")]
    assert [n.attrs["id"] for n in flows] == [f"flow-{f['id']}" for f in report["flows"]]
    for node, flow in zip(flows, report["flows"], strict=True):
        assert node.attrs["data-trigger"] == flow["trigger"]
        assert node.attrs["data-party"] == flow["party"]
        assert node.attrs["data-categories"].split() == flow["categories"]
        text = node.text()
        for rule_id in flow["rule_ids"]:
            assert rule_id in text
        if flow.get("decoded"):
            (tree,) = [u for u in node.find_all("ul") if u.has_class("tree")]
            assert tree_json(tree) == flow["decoded"]
    svg = dom.find_all("svg")[0]
    dots = svg.find_all("circle")
    assert len(dots) == len(report["flows"])
    assert len([n for n in svg.find_all("line") if n.attrs.get("stroke-dasharray")]) == len(
        report["markers"]
    )
    assert len(svg.find_all("rect")) == len(report["phases"])
    endpoint_rows = [n for n in dom.find_all("tr") if n.has_class("endpoint")]
    assert len(endpoint_rows) == len({endpoint_key(f) for f in report["flows"]})
    cards = {
        t.attrs["data-summary"]: {
            r.find_all("td")[0].text(): int(r.find_all("td")[1].text())
            for r in t.find_all("tr") if r.find_all("td")
        }
        for t in dom.find_all("table") if t.attrs.get("data-summary")
    }
    assert cards["by_severity"] == report["summary"]["by_severity"]
    assert cards["by_trigger"] == report["summary"]["by_trigger"]


def test_html_is_self_contained() -> None:
    text = format_html(load("report_webex_session1.json"))
    dom = parse_html(text)
    for node in dom.iter():
        for attr in URL_ATTRS:
            value = node.attrs.get(attr)
            if value is not None:
                assert value.startswith("#"), (node.tag, attr, value)
        assert node.tag not in ("link", "iframe", "object", "embed", "img", "base")
    scripts = dom.find_all("script")
    assert len(scripts) == 1 and "src" not in scripts[0].attrs
    (style,) = dom.find_all("style")
    assert "url(" not in style.text() and "@import" not in style.text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text)
    (csp,) = [m for m in dom.find_all("meta") if m.attrs.get("http-equiv")]
    policy = csp.attrs["content"] or ""
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy


def test_html_readable_without_javascript() -> None:
    report = load("report_webex_session1.json")
    dom = parse_html(format_html(report))
    (filters,) = [n for n in dom.find_all("div") if n.attrs.get("id") == "filters"]
    assert "hidden" in filters.attrs  # shown by the script only
    boxes = [b for b in filters.find_all("input") if b.attrs.get("type") == "checkbox"]
    assert [b.attrs.get("id") for b in filters.find_all("input")
            if b.attrs.get("type") == "search"] == ["search"]  # hidden with the filters
    names = Counter(b.attrs["name"] for b in boxes)
    assert names["trigger"] == len({f["trigger"] for f in report["flows"]})
    assert names["party"] == len({f["party"] for f in report["flows"]})
    assert all("checked" in b.attrs for b in boxes)
    assert dom.find_all("noscript")


def test_html_escapes_hostile_payloads() -> None:
    report = hostile_report()
    text = format_html(report)
    dom = parse_html(text)
    scripts = dom.find_all("script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text()
    assert not dom.find_all("img") and not dom.find_all("iframe")
    assert len(dom.find_all("svg")) == 1
    for node in dom.iter():
        assert not any(name.startswith("on") for name in node.attrs), (node.tag, node.attrs)
    flow = next(n for n in dom.find_all("details") if n.attrs.get("id") == "flow-f04")
    (tree,) = [u for u in flow.find_all("ul") if u.has_class("tree")]
    assert tree_json(tree) == HOSTILE_DECODED
    assert HOSTILE_URL in flow.text()
    assert HOSTILE_HOST in flow.text()
    assert "&lt;script&gt;alert(&#39;url&#39;)&lt;/script&gt;" in text
    evidence = [n.text() for n in dom.find_all("td") if n.has_class("evidence")]
    assert HOSTILE_EVIDENCE in evidence


def test_timeline_model_scales_into_the_plot() -> None:
    report = load("report_webex_session1.json")
    model = timeline_model(report)
    xs = [d["x"] for d in model["dots"]]
    assert min(xs) >= model["left"] and max(xs) <= model["right"]
    assert [lane["name"] for lane in model["lanes"]] == [
        t for t in ("setup", "sign_in", "meeting_join", "in_meeting", "screen_share",
                    "meeting_leave", "periodic")
    ]
    flagged = {d["id"] for d in model["dots"] if d["flagged"]}
    assert flagged == {f["id"] for f in report["flows"]
                       if any(x["severity"] in ("medium", "high") for x in f["findings"])}
    ordered = sorted(report["flows"], key=lambda f: f["timestamp"])
    by_id = {d["id"]: d["x"] for d in model["dots"]}
    assert [by_id[f["id"]] for f in ordered] == sorted(by_id.values())


def test_empty_report_renders_in_every_format() -> None:
    report = {"schema": "phonehome.report/1", "generated_at": "", "tool": {"name": "phonehome",
              "version": "0"}, "inputs": {}, "flows": [], "summary": {}, "cadence": [],
              "claims": []}
    assert "## Claims" in format_markdown(report)
    dom = parse_html(format_html(report))
    assert section_order(dom)[:2] == ["digest", "claims"]
    assert read_csv(format_flows_csv(report))[1] == []
    assert read_csv(format_findings_csv(report))[1] == []
