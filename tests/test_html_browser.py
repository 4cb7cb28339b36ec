"""The HTML report in a real headless Chromium: screenshot and DOM, with and without JS.

Skipped only when Chromium is missing and CI is unset; in CI a missing
Chromium fails the test (`.ci/run` installs Debian's `chromium`).
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from builders import FIXTURES
from phonehome.report.html import format_html

TIMEOUT_S = 120


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (CI is set, so this is an error)")
    pytest.skip("chromium is not installed")


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


def load(name: str = "report_webex_session1.json") -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _flags(tmp_path: Path) -> list[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def _page(tmp_path: Path, html: str) -> Path:
    page = tmp_path / "audit.html"
    page.write_text(html, encoding="utf-8")
    return page


def browse(chromium: str, tmp_path: Path, html: str, *extra: str) -> subprocess.CompletedProcess:
    command = [chromium, *_flags(tmp_path), *extra, _page(tmp_path, html).as_uri()]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path, check=False
    )


class _DevTools:
    """Just enough of the DevTools protocol over --remote-debugging-pipe (fds 3 and 4).

    `--dump-dom` needs page JavaScript, so with scripts disabled the DOM is read
    through the inspector (DOM.getOuterHTML), which does not run any script.
    """

    def __init__(self, chromium: str, flags: list[str]) -> None:
        self._to_chrome_r, self._to_chrome_w = map(self._high, os.pipe())
        self._from_chrome_r, self._from_chrome_w = map(self._high, os.pipe())
        script = f'exec "$@" 3<&{self._to_chrome_r} 4>&{self._from_chrome_w}'
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, "bash", chromium, *flags, "--remote-debugging-pipe",
             "about:blank"],
            pass_fds=(self._to_chrome_r, self._from_chrome_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(self._to_chrome_r)
        os.close(self._from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.deadline = time.monotonic() + TIMEOUT_S

    @staticmethod
    def _high(fd: int) -> int:
        """Move a pipe end above 9, so bash's `3<&N 4>&M` cannot clobber it."""
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            assert left > 0, "DevTools timed out"
            ready, _, _ = select.select([self._from_chrome_r], [], [], left)
            assert ready, "DevTools timed out"
            chunk = os.read(self._from_chrome_r, 1 << 16)
            assert chunk, "Chromium closed the DevTools pipe"
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return reply.get("result", {})

    def open_page(self, url: str, *before_load: str) -> str:
        """Attach to the browser's page, run `before_load` scripts in every new document,
        load `url` and wait for it: the page's session id."""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = self.call("Target.attachToTarget", targetId=page["targetId"],
                            flatten=True)["sessionId"]
        self.call("Page.enable", session)
        for source in before_load:
            self.call("Page.addScriptToEvaluateOnNewDocument", session, source=source)
        self.call("Page.navigate", session, url=url)
        self.wait_event("Page.loadEventFired")
        return session

    def wait_event(self, method: str) -> None:
        while self._read_message().get("method") != method:
            pass

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (AssertionError, OSError):
            pass
        finally:
            os.close(self._to_chrome_w)
            os.close(self._from_chrome_r)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def dom_via_devtools(chromium: str, tmp_path: Path, html: str, *extra: str) -> str:
    url = _page(tmp_path, html).as_uri()
    tools = _DevTools(chromium, [*_flags(tmp_path), *extra])
    try:
        session = tools.open_page(url)
        root = tools.call("DOM.getDocument", session, depth=-1)["root"]
        return tools.call("DOM.getOuterHTML", session, nodeId=root["nodeId"])["outerHTML"]
    finally:
        tools.close()


class DumpReader(HTMLParser):
    """What the tests need from Chromium's serialised DOM."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.verdicts: dict[str, str] = {}
        self.finding_rows: list[dict[str, str | None]] = []
        self.filters_hidden: bool | None = None
        self.body_attrs: dict[str, str | None] = {}
        self.scripts = 0
        self.filter_count = ""
        self._in_count = False
        self.evidence: list[str] = []
        self._in_evidence = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body_attrs = a
        if tag == "script":
            self.scripts += 1
        if tag == "article" and a.get("data-claim"):
            self.verdicts[a["data-claim"] or ""] = a.get("data-verdict") or ""
        if tag == "tr" and "finding" in classes:
            self.finding_rows.append(a)
        if tag == "div" and a.get("id") == "filters":
            self.filters_hidden = "hidden" in a
        if tag == "span" and a.get("id") == "filter-count":
            self._in_count = True
        if tag == "td" and "evidence" in classes:
            self._in_evidence = True
            self.evidence.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_count = False
        if tag == "td":
            self._in_evidence = False

    def handle_data(self, data: str) -> None:
        if self._in_count:
            self.filter_count += data
        if self._in_evidence:
            self.evidence[-1] += data


def read_dom(result: subprocess.CompletedProcess | str) -> DumpReader:
    if isinstance(result, str):
        text = result
    else:
        assert result.returncode == 0, result.stderr[-2000:]
        text = result.stdout
    assert "<html" in text
    reader = DumpReader()
    reader.feed(text)
    reader.close()
    return reader


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, width, height, idat = 8, 0, 0, b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    return width, height, zlib.decompress(idat)


def flagged(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for flow in report["flows"] for f in flow["findings"]
            if f["severity"] in ("medium", "high")]


def test_screenshot_is_a_real_rendering(chromium: str, tmp_path: Path) -> None:
    result = browse(chromium, tmp_path, format_html(load()), "--window-size=1280,2000",
                    "--screenshot=shot.png")
    shot = tmp_path / "shot.png"
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1280, 2000)
    assert shot.stat().st_size > 20_000
    assert len(set(pixels)) > 64  # text, badges, colours: far from a blank page
    rows = [pixels[i : i + 64] for i in range(0, min(len(pixels), 400_000), 64)]
    assert len(set(rows)) > 500


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_dom_shows_claims_and_flagged_findings(
    chromium: str, tmp_path: Path, javascript: bool
) -> None:
    report = load()
    html = format_html(report)
    if javascript:
        dom = read_dom(browse(chromium, tmp_path, html, "--dump-dom"))
    else:
        dom = read_dom(
            dom_via_devtools(chromium, tmp_path, html, "--blink-settings=scriptEnabled=false")
        )
    assert dom.verdicts == {c["id"]: c["verdict"] for c in report["claims"]}
    # one row per finding group, which counts its findings
    high = sum(int(row.get("data-count") or 0) for row in dom.finding_rows
               if row.get("data-severity") == "high")
    assert high == sum(
        f["severity"] == "high" for flow in report["flows"] for f in flow["findings"])
    assert sum(int(row.get("data-count") or 0) for row in dom.finding_rows) == sum(
        len(f["findings"]) for f in report["flows"])
    for finding in flagged(report):
        assert finding["evidence"] in dom.evidence
    if javascript:
        assert dom.filters_hidden is False  # the script ran under the page's CSP
        assert dom.filter_count == f"{len(report['flows'])} of {len(report['flows'])} flows shown"
    else:
        assert dom.filters_hidden is True
        assert dom.filter_count == ""


def test_hostile_payload_does_not_run(chromium: str, tmp_path: Path) -> None:
    report = copy.deepcopy(load())
    attack = "document.body.setAttribute('data-pwned','1')"
    flow = report["flows"][3]
    flow["url"] = f"https://metrics-a.wbx2.com/x?<script>{attack}</script>"
    flow["host"] = f"\"><img src=x onerror=\"{attack}\">"
    flow["decoded"] = {"v": f"</pre><svg onload=\"{attack}\"></svg><script>{attack}</script>"}
    flow["findings"][0]["evidence"] = f"<img src=x onerror=\"{attack}\">"
    dom = read_dom(browse(chromium, tmp_path, format_html(report), "--dump-dom"))
    assert "data-pwned" not in dom.body_attrs
    assert dom.scripts == 1
    assert f"<img src=x onerror=\"{attack}\">" in dom.evidence
