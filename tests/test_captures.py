"""Reading capture files: .mitm and .har, whole, truncated, corrupt, or not captures."""

from __future__ import annotations

import json

import pytest
from mitmproxy import io
from mitmproxy.test import tflow, tutils

from phonehome.capture.files import CaptureError, check_capture, read_capture


def _write_mitm(path, count):
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for i in range(count):
            writer.add(tflow.tflow(req=tutils.treq(path=f"/p{i}".encode()), resp=True))
    return path


def _har_entry(i):
    return {
        "startedDateTime": "2026-11-29T08:00:00.000Z", "time": 10,
        "request": {"method": "POST", "url": f"https://metrics-a.wbx2.com/m/{i}",
                    "httpVersion": "HTTP/1.1", "headers": [{"name": "content-type",
                                                            "value": "application/json"}],
                    "postData": {"mimeType": "application/json", "text": f'{{"i":{i}}}'}},
        "response": {"status": 204, "httpVersion": "HTTP/1.1", "headers": [],
                     "content": {"size": 0, "text": ""}},
    }


def _write_har(path, count):
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": [
        _har_entry(i) for i in range(count)]}}))
    return path


def _read(path):
    problems = []
    flows = [flow for flow, _ in read_capture(path, problems.append)]
    return flows, [str(p) for p in problems]


def test_whole_mitm_file(tmp_path):
    flows, problems = _read(_write_mitm(tmp_path / "a.mitm", 5))
    assert [f.request.path for f in flows] == [f"/p{i}" for i in range(5)]
    assert problems == []


def test_whole_har_file(tmp_path):
    flows, problems = _read(_write_har(tmp_path / "a.har", 3))
    assert [f.request.url for f in flows] == [f"https://metrics-a.wbx2.com/m/{i}"
                                              for i in range(3)]
    assert flows[0].request.content == b'{"i":0}'
    assert problems == []


def test_truncated_mitm_file_gives_the_flows_before_the_break(tmp_path):
    path = _write_mitm(tmp_path / "a.mitm", 6)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3 + 100])  # mid-flow
    flows, problems = _read(path)
    assert 1 <= len(flows) < 6
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: broken after {len(flows)} flow(s), near byte")


def test_corrupt_middle_of_mitm_file(tmp_path):
    path = _write_mitm(tmp_path / "a.mitm", 4)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 40] = b"#" * 40
    path.write_bytes(bytes(data))
    flows, problems = _read(path)
    assert len(flows) < 4 and len(problems) == 1 and "broken after" in problems[0]


def test_truncated_har_file_salvages_complete_entries(tmp_path):
    path = _write_har(tmp_path / "a.har", 5)
    text = path.read_text()
    cut = text.index('"https://metrics-a.wbx2.com/m/3"')
    path.write_text(text[:cut])
    flows, problems = _read(path)
    assert len(flows) == 3
    assert "not valid HAR at line 1" in problems[0]
    assert "recovered 3 complete entries" in problems[0]


def test_har_with_a_bad_entry_keeps_the_others(tmp_path):
    path = tmp_path / "a.har"
    entries = [_har_entry(0), {"request": "nonsense"}, _har_entry(2)]
    path.write_text(json.dumps({"log": {"entries": entries}}))
    flows, problems = _read(path)
    assert len(flows) == 2
    assert problems and "entry 1 skipped" in problems[0]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "no such file"),
    (lambda p: (p.mkdir(), p)[1], "is a directory"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
    (lambda p: (p.write_bytes(b"GIF89a\x00\x01binary"), p)[1], "not a mitmproxy flow file or HAR"),
    (lambda p: (p.write_text("hello, I am a text file\n"), p)[1], "not a mitmproxy flow file"),
])
def test_not_a_capture(tmp_path, make, message):
    path = make(tmp_path / "input")
    with pytest.raises(CaptureError, match=message) as info:
        check_capture(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)
