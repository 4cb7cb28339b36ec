"""End to end: a real mitmdump with the addon shows each flow's audit in the "phonehome"
content view, comments the flows and marks those with high findings; `-w` keeps both
when the audit runs in the proxy process."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from mitmproxy import io

from builders import ROOT
from phonehome.flow_view import HIGH_MARK
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

EMAIL = "jane.roe@example.org"
PROBE = ROOT / "tests" / "fixtures" / "view_probe.py"


def _run(tmp_path, http_server, *, audit_process: bool) -> tuple[list, list]:
    identity = tmp_path / "identity.yaml"
    identity.write_text(f"email: {EMAIL}\n")
    capture, probe = tmp_path / "out.mitm", tmp_path / "probe.json"
    port = http_server.server_address[1]
    with MitmdumpProcess(
        tmp_path / "conf", scripts=[ADDON_SCRIPT, PROBE], extra_args=["-w", str(capture)],
        env={**os.environ, "PHONEHOME_VIEW_PROBE": str(probe)},
        options={"phonehome_report_dir": str(tmp_path / "reports"),
                 "phonehome_identity": str(identity), "phonehome_formats": "json",
                 "phonehome_audit_process": str(audit_process).lower()},
    ) as proxy:
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
            client.post(f"http://127.0.0.1:{port}/profile",
                        json={"user": {"email": EMAIL}}).raise_for_status()
            client.post(f"http://127.0.0.1:{port}/ping", json={"ok": 1}).raise_for_status()
    assert proxy.process.returncode == 0, proxy.output()[-3000:]
    with capture.open("rb") as fo:
        saved = list(io.FlowReader(fo).stream())
    return saved, json.loads(probe.read_text())


def _check_view(seen: list) -> None:
    profile, ping = seen
    lines = [line.strip() for line in profile["view"].splitlines()]
    assert lines[0] == "# phonehome audit (values redacted)"
    field = lines.index('"email": "j***@e***.org"  # [personal_data]')
    assert lines[field + 1:field + 3] == ["# ⚑ email · personal_data · high",
                                          "# ⚑ identity_match · personal_data · high"]
    assert EMAIL not in profile["view"]
    assert "findings: none" in ping["view"].splitlines()


def test_saved_flows_carry_the_comment_and_the_mark(tmp_path, http_server):
    saved, seen = _run(tmp_path, http_server, audit_process=False)
    profile, ping = saved
    assert profile.comment == ("phonehome: unknown → unknown party · unknown · "
                               "high: email, identity_match")
    assert profile.marked == HIGH_MARK
    assert ping.comment == "phonehome: unknown → unknown party · unknown · no findings"
    assert ping.marked == ""
    _check_view(seen)


def test_with_the_audit_worker_the_note_reaches_the_live_flows(tmp_path, http_server):
    # The worker audits after the response, when `-w` has written the flow: the note
    # reaches the flows mitmproxy holds (mitmweb's list), not the stream already written.
    saved, seen = _run(tmp_path, http_server, audit_process=True)
    assert [(f["comment"], f["marked"]) for f in seen] == [
        ("phonehome: unknown → unknown party · unknown · high: email, identity_match",
         HIGH_MARK),
        ("phonehome: unknown → unknown party · unknown · no findings", "")]
    assert [f.comment for f in saved] == ["", ""]
    _check_view(seen)
