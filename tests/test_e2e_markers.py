"""Markers on a running mitmdump: `phonehome mark` from a second process, then the
report's phases; the same capture audited offline rebuilds the same phases."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e


def _mark(socket: Path, label: str) -> None:
    result = subprocess.run([sys.executable, "-m", "phonehome", "mark", label,
                             "--socket", str(socket)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def _telemetry(client: httpx.Client, port: int, name: str) -> None:
    body = {"metrics": [{"eventPayload": {"event": {"name": name}}}]}
    client.post(f"http://127.0.0.1:{port}/metrics/api/v1/clientmetrics",
                json=body).raise_for_status()


def _phases(report: dict) -> list[str]:
    return [phase["name"] for phase in report["phases"]]


def test_markers_from_a_second_terminal_shape_the_phases(tmp_path, http_server):
    socket = Path(tempfile.mkdtemp(dir="/tmp")) / "m.sock"  # AF_UNIX paths are short
    reports, capture = tmp_path / "reports", tmp_path / "capture.mitm"
    port = http_server.server_address[1]
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         extra_args=["-w", str(capture)],
                         options={"phonehome_report_dir": str(reports),
                                  "phonehome_marker_socket": str(socket),
                                  "phonehome_quiet": "true", "phonehome_formats": "json"}
                         ) as proxy:
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
            _telemetry(client, port, "client.startup.end")
            _mark(socket, "meeting_join")
            _telemetry(client, port, "client.some.unlisted.event")
            _mark(socket, "screen_share_start")
            _telemetry(client, port, "client.other.unlisted.event")
            _mark(socket, "screen_share_stop")
            _mark(socket, "meeting_leave")
            _telemetry(client, port, "client.after.meeting")
            _mark(socket, "opt_out")
            _telemetry(client, port, "client.after.opt.out")
    live = json.loads((reports / "audit.json").read_text())
    auditor = [m["label"] for m in live["markers"] if m["source"] == "auditor"]
    assert auditor == ["meeting_join", "screen_share_start", "screen_share_stop",
                       "meeting_leave", "opt_out"]
    assert {"meeting", "screen_share", "opt_out"} <= set(_phases(live))
    flows = live["flows"]
    assert [f["phase"] for f in flows][1:3] == ["meeting", "screen_share"]
    assert flows[2]["trigger"] == "screen_share" and flows[2]["trigger_source"] == "marker"
    assert live["after_opt_out"] == [flows[-1]["id"]]

    result = subprocess.run([sys.executable, "-m", "phonehome", "audit", str(capture), "-o",
                             str(tmp_path / "offline"), "--format", "json", "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    offline = json.loads((tmp_path / "offline" / "audit.json").read_text())
    assert _phases(offline) == _phases(live)
    assert [m["label"] for m in offline["markers"] if m["source"] == "auditor"][:4] == auditor[:4]
    assert [f["phase"] for f in offline["flows"]] == [f["phase"] for f in flows]


def test_mark_with_no_addon_listening_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "phonehome", "mark", "meeting_join",
                             "--socket", str(tmp_path / "none.sock")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
