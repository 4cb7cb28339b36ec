"""Redacted outputs hold no identity value in any form the tool knows, through the
CLI and a real mitmdump: every output file, the store's raw bytes included, is
searched for every form of every value in examples/identity.yaml."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
import yaml
from mitmproxy import io
from mitmproxy.test import tflow, tutils

from builders import ROOT, SAMPLE
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

IDENTITY = ROOT / "examples" / "identity.yaml"
KEY_FILE = ".phonehome-key"


def _values() -> list[tuple[str, str]]:
    data = yaml.safe_load(IDENTITY.read_text(encoding="utf-8"))
    return [(field, str(item)) for field, raw in data.items()
            for item in (raw if isinstance(raw, list) else [raw])]


VALUES = _values()
EMAIL = dict(VALUES)["email"]


def _forms(value: str) -> dict[str, str]:
    """Every encoding the brief names, of the value as typed and trimmed lower-cased."""
    out: dict[str, str] = {}
    for label, text in (("", value), ("lower ", value.strip().lower())):
        raw = text.encode("utf-8")
        out.update({
            f"{label}raw": text,
            f"{label}quote": quote(text, safe=""),
            f"{label}quote_plus": quote_plus(text, safe=""),
            f"{label}base64": base64.b64encode(raw).decode(),
            f"{label}base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            f"{label}md5": hashlib.md5(raw).hexdigest(),
            f"{label}sha1": hashlib.sha1(raw).hexdigest(),
            f"{label}sha256": hashlib.sha256(raw).hexdigest(),
            f"{label}old fingerprint": hashlib.sha256(raw).hexdigest()[:16],
        })
    return out


_HEXLIKE = ("md5", "sha1", "sha256", "fingerprint")


def leaks(folder: Path) -> list[str]:
    """"file: field as encoding" for every identity form found in any file of `folder`
    (byte-wise; hex digests in either case)."""
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != KEY_FILE):
        data = path.read_bytes()
        lowered = data.lower()
        for field, value in VALUES:
            for name, form in _forms(value).items():
                needle = form.encode("utf-8")
                hexlike = name.endswith(_HEXLIKE)
                if (lowered.count(needle.lower()) if hexlike else data.count(needle)):
                    found.append(f"{path.name}: {field} as {name}")
    return found


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _audit(capture: Path, out: Path, *extra: object) -> None:
    result = _phonehome("audit", capture, "--identity", IDENTITY, "-o", out, "-q", *extra)
    assert result.returncode == 0, result.stderr
    written = {p.name for p in out.iterdir()}
    every = {"audit.json", "audit.md", "audit.html", "audit-flows.csv", "audit-findings.csv",
             "audit.sqlite"}
    assert "--format" in map(str, extra) or every <= written


def _hostile_requests() -> list[tuple[str, str, list[tuple[str, str]], bytes]]:
    """(method, path with query, headers, body): identity values in URL paths, query
    strings, headers and cookies, plain and encoded."""
    v = dict(VALUES)
    email, raw_email = v["email"], v["email"].encode()
    sha256 = hashlib.sha256(raw_email).hexdigest()
    return [
        ("GET", f"/v1/users/{quote(email, safe='@')}/profile?uid={v['username']}"
                f"&h={sha256}&b={quote(base64.b64encode(raw_email).decode(), safe='')}",
         [("X-User-Email", email), ("X-Device", v["device_name"])], b""),
        ("GET", f"/v1/u/{email}/x/{v['ip']}?name={quote_plus(v['name'])}"
                f"&m={hashlib.md5(raw_email).hexdigest()}&s1={hashlib.sha1(raw_email).hexdigest()}"
                f"#meeting={quote(v['meeting_titles'], safe='')}",
         [("Cookie", f"uid={hashlib.md5(raw_email).hexdigest()}; "
                     f"host={base64.b64encode(v['hostname'].encode()).decode()}; "
                     f"mac={v['mac']}")], b""),
        ("POST", f"/metrics?meeting={v['meeting_ids']}&phone={quote_plus(v['phone'])}"
                 f"&mac={quote(v['mac'], safe='')}",
         [("Authorization", f"Bearer {base64.b64encode(raw_email).decode()}"),
          ("content-type", "application/json")],
         b'{"hostName": "%s", "title": "%s", "user": {"email": "%s"}}'
         % (v["hostname"].encode(), v["meeting_titles"].encode(), raw_email)),
    ]


def _hostile_capture(path: Path) -> Path:
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for method, target, headers, body in _hostile_requests():
            request = tutils.treq(method=method.encode(), host="telemetry.example.net",
                                  path=target.encode(), content=body,
                                  headers=tuple((k.encode(), h.encode()) for k, h in headers))
            writer.add(tflow.tflow(req=request, resp=True))
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _hostile_capture(tmp_path_factory.mktemp("capture") / "hostile.mitm")


@pytest.mark.parametrize("which", ["sample", "hostile"])
def test_redacted_outputs_hold_no_identity_form(tmp_path, hostile, which):
    capture = SAMPLE if which == "sample" else hostile
    _audit(capture, tmp_path / "out")
    assert leaks(tmp_path / "out") == []
    key = (tmp_path / "out" / KEY_FILE)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip()
    for path in (tmp_path / "out").iterdir():
        if path.name != KEY_FILE:
            data = path.read_bytes()
            assert secret.encode() not in data and bytes.fromhex(secret) not in data


@pytest.mark.parametrize("which", ["sample", "hostile"])
def test_reveal_shows_them(tmp_path, hostile, which):
    """The same search finds the values once --reveal is asked for: the check can fail."""
    capture = SAMPLE if which == "sample" else hostile
    _audit(capture, tmp_path / "out", "--reveal")
    found = leaks(tmp_path / "out")
    for output in ("audit.json", "audit.md", "audit.html", "audit-flows.csv", "audit.sqlite"):
        assert f"{output}: email as sha256" in found  # in the URL, as it was sent
    assert "audit.json: email as raw" in found


def test_the_hostile_capture_is_flagged_where_it_hides_values(tmp_path, hostile):
    import json

    _audit(hostile, tmp_path / "out", "--format", "json")
    report = json.loads((tmp_path / "out" / "audit.json").read_text())
    locations = {f["location"] for flow in report["flows"] for f in flow["findings"]}
    assert {"url", "query:h", "query:b", "header:X-User-Email", "cookie:uid",
            "cookie:host", "query:name"} <= locations
    urls = sorted(flow["url"] for flow in report["flows"])
    profile = [url for url in urls if "/profile?" in url]
    assert profile and profile[0].startswith(
        "http://telemetry.example.net:22/v1/users/m***@w***.org/profile?")
    assert "uid=m***&h=sha256%20of%20m***@w***.org" in profile[0]


def _identifiers(report_path: Path) -> set[str]:
    import json

    report = json.loads(report_path.read_text())
    return {i["fingerprint"] for flow in report["flows"] for i in flow["identifiers"]}


def test_fingerprints_link_within_one_install_only(tmp_path):
    """Two audits whose stores share a folder share the key: the same values give
    the same fingerprints, and `phonehome diff` names them. Another folder, another key."""
    store = tmp_path / "install" / "audit.sqlite"
    for name in ("a", "b"):
        _audit(SAMPLE, tmp_path / name, "--store", store, "--format", "json")
    _audit(SAMPLE, tmp_path / "c", "--format", "json")
    a, b, c = (_identifiers(tmp_path / n / "audit.json") for n in "abc")
    assert a and a == b and not a & c
    assert all(fp.startswith("hmac:") for fp in a)
    result = _phonehome("diff", tmp_path / "a" / "audit.json", tmp_path / "b" / "audit.json",
                        "-o", tmp_path / "diff.md")
    assert result.returncode == 0, result.stderr
    diff = (tmp_path / "diff.md").read_text()
    assert all(fp in diff for fp in a)


def test_an_unusable_key_file_exits_2_with_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / KEY_FILE).write_text("not a key\n")
    result = _phonehome("audit", SAMPLE, "-o", out, "-q")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and KEY_FILE in result.stderr


@pytest.mark.e2e
def test_live_reports_hold_no_identity_form(tmp_path, http_server):
    out = tmp_path / "live"
    port = http_server.server_address[1]
    with MitmdumpProcess(
        tmp_path / "conf", scripts=[ADDON_SCRIPT],
        options={"phonehome_report_dir": str(out), "phonehome_identity": str(IDENTITY)},
    ) as proxy:
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
            for method, target, headers, body in _hostile_requests():
                client.request(method, f"http://127.0.0.1:{port}{target.split('#')[0]}",
                               headers=headers, content=body).raise_for_status()
    assert proxy.process.returncode == 0, proxy.output()
    assert len(http_server.received) == 3
    # the traffic itself is untouched: the server saw the values
    assert http_server.received[0]["headers"]["X-User-Email"] == EMAIL
    assert (out / "audit.json").is_file(), proxy.output()[-3000:]
    assert leaks(out) == []
    assert EMAIL not in proxy.output() and quote(EMAIL, safe="@") not in proxy.output()
    assert stat.S_IMODE(os.stat(out / KEY_FILE).st_mode) == 0o600
