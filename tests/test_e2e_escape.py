"""Captured text cannot drive the terminal or a Markdown viewer.

Hostile hosts, paths, JSON keys, values, event names and content types go through
the real `phonehome audit` CLI and a real mitmdump; every output shows them inert
and visible. Outputs are read by an independent check (unicodedata, markdown-it).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from mitmproxy import io
from mitmproxy.test import tflow, tutils

from builders import FIXTURES
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess
from phonehome.report.markdown import _code, md_escape
from phonehome.report.safe_text import safe_text, visible

ESC = "\x1b"
OSC_TITLE = f"{ESC}]0;pwned-title{ESC}\\"  # sets the window title
CLEAR = f"{ESC}[2J{ESC}[1A{ESC}[2K"  # clear screen, cursor up, erase line
LINK_MARKUP = "[link=https://attacker.example/]click[/link]"
HOST = f"evil{ESC}7\u202e\u009b2J.attacker.example"
EVENT = "x|<img src=https://attacker.example/a.png>|y"
EVENT_LINKS = "<b> https://attacker.example/b www.attacker.com t.attacker.com j@attacker.com"
EVENT_TERMINAL = f"client.{OSC_TITLE}[bold red]ev[/bold red]"
KEY_OSC = f"{OSC_TITLE}email"  # keys are short: the terminal cuts a location at 48
KEY_LINK = "[link=https://a.eu]mail"
KEY_C1 = "\u009b31m[bold red]mail[/bold red]\u202e"
CONTENT_TYPE = f"application/json{CLEAR}[bold red]ct[/bold red]; charset=utf-8"
# what the outputs must show instead (written out, not computed by the code under test)
SHOWN_HOST = "evil\\x1b7\\u202e\\x9b2J.attacker.example"
SHOWN_CONTENT_TYPE = "application/json\\x1b[2J\\x1b[1A\\x1b[2K[bold red]ct[/bold red]"
SHOWN_EVENT = "client.\\x1b]0;pwned-title\\x1b\\[bold red]ev[/bold red]"
SHOWN_KEY_OSC = "$.metrics[0]['\\x1b]0;pwned-title\\x1b\\\\email']"
SHOWN_KEY_C1 = "$.metrics[0]['\\x9b31m[bold red]mail[/bold red]\\u202e']"
INVISIBLE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")


def _invisible(text: str, allowed: str = "\n") -> list[str]:
    """Characters a terminal or viewer would act on or hide (independent of safe_text)."""
    return sorted({c for c in text if c not in allowed
                   and unicodedata.category(c) in INVISIBLE_CATEGORIES})


def _request(path: str, body: dict[str, Any], content_type: str, timestamp: float) -> Any:
    request = tutils.treq(
        method=b"POST", host=HOST, port=80, scheme=b"http", path=path.encode(),
        headers=((b"host", HOST.encode()), (b"content-type", content_type.encode())),
        content=json.dumps(body).encode(),
    )
    flow = tflow.tflow(req=request, resp=True)
    flow.request.timestamp_start = timestamp
    flow.request.timestamp_end = timestamp + 0.05
    return flow


def _event(name: str, **fields: Any) -> dict[str, Any]:
    return {"eventPayload": {"event": {"name": name}}, **fields}


def hostile_capture(path: Path) -> Path:
    """One flow with every hostile field, then a regular stream whose event name is hostile."""
    flows = [_request(
        f"/clientmetrics?q={CLEAR}{OSC_TITLE}",
        {"metrics": [
            _event(EVENT, **{KEY_OSC: "jane.roe@example.org", KEY_C1: "john.doe@example.org",
                             KEY_LINK: "jim.poe@example.org",
                             "note": f"{LINK_MARKUP} [bold red]RED[/bold red] {OSC_TITLE}"}),
            _event(EVENT_LINKS),
        ]},
        CONTENT_TYPE, 1_700_000_000.0,
    )]
    for i in range(8):
        flows.append(_request("/clientmetrics", {"metrics": [_event(EVENT_TERMINAL)]},
                              "application/json", 1_700_000_100.0 + 30 * i))
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for flow in flows:
            writer.add(flow)
    return path


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """`phonehome audit` run on the hostile capture, and its report folder."""
    tmp = tmp_path_factory.mktemp("escape")
    capture = hostile_capture(tmp / "hostile.mitm")
    out = tmp / "out"
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "-o", str(out),
         "--format", "json,md,html,csv", "--details"],
        capture_output=True, timeout=180,
        env={**os.environ, "COLUMNS": "400"},  # wide enough that no hostile cell is cut
    )
    return result, out


# --- terminal --------------------------------------------------------------------------------


@pytest.mark.e2e
def test_terminal_summary_shows_captured_text_inert_and_visible(audited):
    result, _ = audited
    assert result.returncode == 0, result.stderr.decode(errors="replace")  # markup cannot crash it
    stdout = result.stdout.decode("utf-8")
    assert _invisible(stdout) == []  # no ESC, no C1, no bidi override reaches the terminal
    assert "]8;" not in stdout  # no OSC-8 hyperlink
    # the hostile text is there, escaped: this test cannot pass on an empty table
    assert "By host" in stdout and "Findings" in stdout and "Regular streams" in stdout
    assert SHOWN_HOST in stdout
    assert SHOWN_CONTENT_TYPE in stdout
    assert SHOWN_KEY_OSC in stdout
    assert SHOWN_KEY_C1 in stdout
    assert f"$.metrics[0]['{KEY_LINK}']" in stdout  # markup is shown, not interpreted
    assert SHOWN_EVENT in stdout


# --- Markdown --------------------------------------------------------------------------------


def _markdown() -> MarkdownIt:
    """GFM as a viewer renders it: tables, strikethrough, autolinks (linkify), raw HTML on."""
    return MarkdownIt("gfm-like")


def _walk(tokens: list[Any]) -> list[Any]:
    out = []
    for token in tokens:
        out.append(token)
        out.extend(_walk(token.children or []))
    return out


SAFE_ELEMENTS = {"h1", "h2", "h3", "p", "ul", "li", "strong", "code", "table", "thead", "tbody",
                 "tr", "th", "td"}
UNSAFE_TOKENS = {"html_inline", "html_block", "link_open", "image", "autolink"}


def _cells(line: str) -> int:
    """Table cells in one row as GFM splits them: on every `|` not escaped by a backslash."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count - 1


def _tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def assert_inert_markdown(text: str) -> str:
    """`text` renders to nothing that loads, links or runs, with whole table rows; the HTML."""
    assert _invisible(text) == []
    tokens = _walk(_markdown().parse(text))
    assert sorted({t.type for t in tokens} & UNSAFE_TOKENS) == []
    html = _markdown().render(text)
    # markdown-it writes a "<" of text as "&lt;": each "<" left is an element it made
    assert set(re.findall(r"</?([a-z0-9]+)", html)) <= SAFE_ELEMENTS
    assert re.findall(r"<[a-z0-9]+\s[^>]*>", html) == []  # no attribute: no href, no src
    # every row has the cells of its header, so no payload text opened a cell of its own
    tables = _tables(text)
    assert tables
    for table in tables:
        width = _cells(table[0])
        assert [_cells(row) for row in table] == [width] * len(table), table[0]
    return html


@pytest.mark.e2e
def test_markdown_report_loads_and_links_nothing(audited):
    _, out = audited
    html = assert_inert_markdown((out / "audit.md").read_text(encoding="utf-8"))
    # and the payload text is in its cell, shown as text
    assert "x|&lt;img src=https://attacker.example/a.png&gt;|y" in html
    assert "&lt;b&gt; https://attacker.example/b www.attacker.com t.attacker.com j@attacker.com" \
        in html
    assert SHOWN_HOST in html


@pytest.mark.e2e
def test_diff_markdown_and_terminal_are_inert(audited, tmp_path):
    _, out = audited
    baseline = FIXTURES / "report_webex_session1.json"
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "diff", str(baseline), str(out / "audit.json"),
         "-o", str(tmp_path / "diff.md")],
        capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    stdout = result.stdout.decode("utf-8")
    assert _invisible(stdout) == []
    assert EVENT in stdout and SHOWN_EVENT in stdout
    assert SHOWN_HOST + "/clientmetrics" in stdout
    html = assert_inert_markdown((tmp_path / "diff.md").read_text(encoding="utf-8"))
    assert "<td>x|&lt;img src=https://attacker.example/a.png&gt;|y</td>" in html
    assert SHOWN_HOST + "/clientmetrics" in html


def _cell_text(markdown_cell: str) -> tuple[list[str], str]:
    """The one row of a two-cell table around `markdown_cell`: its token kinds and text."""
    source = f"| a | b |\n|---|---|\n| {markdown_cell} | z |\n"
    tokens = _markdown().parse(source)
    cells = [i for i, t in enumerate(tokens) if t.type == "td_open"]
    assert len(cells) == 2, source
    inline = tokens[cells[0] + 1]
    kinds = [t.type for t in _walk([inline])[1:]]
    return kinds, "".join(t.content for t in _walk([inline])[1:])


HOSTILE_CHARS = list("|\\`*_[]()<>!&#;:/.@$~-=+ \t\nwW.coma1") + [
    "https://", "www.", ".com", "@x.org", ESC, "\u202e", "\u200b", "\u009b", "&amp;", "<img>"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(HOSTILE_CHARS) | st.characters(), max_size=30).map("".join))
def test_md_escape_is_one_inert_cell_holding_the_visible_text(raw):
    for render in (md_escape, _code):
        kinds, text = _cell_text(render(raw))
        assert set(kinds) <= {"text", "text_special", "code_inline"}, (raw, kinds)
        assert text == visible(raw), raw


# --- HTML and CSV ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_html_and_csv_show_invisible_characters(audited):
    _, out = audited
    html = (out / "audit.html").read_text(encoding="utf-8")
    assert _invisible(html, allowed="\n") == []
    assert SHOWN_HOST in html
    assert "\\x1b]0;pwned-title" in html
    for name in ("audit-flows.csv", "audit-findings.csv"):
        text = (out / name).read_text(encoding="utf-8")
        assert _invisible(text, allowed="\r\n") == [], name
        assert SHOWN_HOST in text, name
    assert SHOWN_KEY_C1 in (out / "audit-findings.csv").read_text()


# --- the one function ---------------------------------------------------------------------------


def test_visible_covers_every_control_format_and_separator_character():
    missing = [hex(cp) for cp in range(0x110000)
               if unicodedata.category(chr(cp)) in INVISIBLE_CATEGORIES
               and chr(cp) not in " \t\n\r\x0b\x0c" and visible(chr(cp)) == chr(cp)]
    assert missing == []


@pytest.mark.parametrize(("raw", "shown"), [
    (OSC_TITLE, "\\x1b]0;pwned-title\\x1b\\"),
    ("a\u202eb\u2066c\u200bd\ufeffe\u061cf", "a\\u202eb\\u2066c\\u200bd\\ufeffe\\u061cf"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("bad\udcffbyte", "bad\\udcffbyte"),
    ("  two\n\tlines  ", "two lines"),
    ("café ✓ 日本", "café ✓ 日本"),
])
def test_visible(raw, shown):
    assert visible(raw) == shown


def test_safe_text_is_never_markup():
    text = safe_text(f"{LINK_MARKUP} [bold red]x[/bold red]{ESC}[2J")
    assert text.plain == f"{LINK_MARKUP} [bold red]x[/bold red]\\x1b[2J"
    assert text.spans == []


# --- a real mitmdump -----------------------------------------------------------------------------

LIVE_PATH = f"/clientmetrics?m=[red]B[/red]&t={OSC_TITLE}&c={CLEAR}"  # no space: one token


def _raw_post(proxy_port: int, server_port: int, path: str, body: bytes,
              content_type: str) -> bytes:
    """A request line no HTTP client would send: the escape sequences go raw."""
    head = (f"POST http://127.0.0.1:{server_port}{path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server_port}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=30) as sock:
        sock.sendall(head + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.e2e
@pytest.mark.parametrize("audit_process", ["true", "false"])
def test_live_flow_line_and_summary_show_the_path_inert(tmp_path, http_server, audit_process):
    port = http_server.server_address[1]
    body = json.dumps({"metrics": [_event(EVENT_TERMINAL, **{KEY_OSC: "jane.roe@example.org"})]})
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         options={"phonehome_report_dir": str(tmp_path / "reports"),
                                  "phonehome_formats": "json", "phonehome_details": "true",
                                  "phonehome_audit_process": audit_process},
                         env={"COLUMNS": "400"}) as proxy:
        reply = _raw_post(proxy.port, port, LIVE_PATH, body.encode(), CONTENT_TYPE)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert [r["path"] for r in http_server.received] == [LIVE_PATH]  # it went through raw
    output = proxy.output()
    assert _invisible(output) == []
    flow_lines = [line for line in output.splitlines() if line.startswith("POST ")]
    assert len(flow_lines) == 1, output
    # the path is cut at 60 characters, before escaping, so no escape is split
    assert "/clientmetrics?m=[red]B[/red]&t=\\x1b]0;pwned-title\\x1b\\&c=\\x1b[ " \
        in flow_lines[0], flow_lines[0]
    summary = output[output.index("phonehome: 1 flows"):]
    assert SHOWN_CONTENT_TYPE in summary
    assert SHOWN_KEY_OSC in summary
