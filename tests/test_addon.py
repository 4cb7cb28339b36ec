"""The addon with mitmproxy's test harness: options, scope, metadata, markers, reports."""

from __future__ import annotations

import json

import pytest
from mitmproxy import exceptions, websocket
from mitmproxy.test import tflow, tutils

from builders import addon_context
from conftest import wait_for_stored_flows
from phonehome.addon import PhonehomeAudit


def _post(path: bytes, body: bytes, host: str = "metrics-a.wbx2.com"):
    request = tutils.treq(method=b"POST", host=host, path=path, content=body, scheme=b"https",
                          port=443, authority=host.encode(),
                          headers=((b"content-type", b"application/json"),))
    return tflow.tflow(req=request, resp=True)


def _run(addon, tctx, flow):
    addon.request(flow)
    addon.response(flow)


@pytest.fixture
def audit(tmp_path):
    addon = PhonehomeAudit()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                       phonehome_formats="json", phonehome_audit_process=False)
        yield addon, tctx, tmp_path


def _report(addon, tmp_path):
    addon.done()
    return json.loads((tmp_path / "audit.json").read_text())


def test_flows_are_audited_and_reported(audit):
    addon, tctx, tmp_path = audit
    event = {"name": "client.share.initiated"}
    body = json.dumps({"metrics": [{"eventPayload": {"event": event}}]})
    flow = _post(b"/metrics/api/v1/clientmetrics", body.encode())
    _run(addon, tctx, flow)
    assert flow.metadata["phonehome"]["purpose"] == "telemetry"
    report = _report(addon, tmp_path)
    assert [f["id"] for f in report["flows"]] == [flow.id]
    assert report["flows"][0]["status"] == 200
    assert report["flows"][0]["trigger"] == "screen_share"


def test_scope_limits_what_is_audited(audit):
    addon, tctx, tmp_path = audit
    tctx.configure(addon, phonehome_scope="~d wbx2.com")
    inside = _post(b"/a", b"{}")
    outside = _post(b"/b", b"{}", host="example.org")
    for flow in (inside, outside):
        _run(addon, tctx, flow)
    assert "phonehome" not in outside.metadata
    assert [f["id"] for f in _report(addon, tmp_path)["flows"]] == [inside.id]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("phonehome_scope", "~d (", "phonehome_scope"),
    ("phonehome_formats", "pdf", "unknown report format"),
    ("phonehome_time_scale", "-1", "phonehome_time_scale"),
    ("phonehome_identity", "/nonexistent/identity.yaml", "identity.yaml"),
    ("phonehome_rules", ["/nonexistent/pack.yaml"], "pack.yaml"),
])
def test_bad_options_raise_options_error(audit, option, value, message):
    addon, tctx, _ = audit
    with pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(addon, **{option: value})


def test_marker_command_is_stored_and_saved_on_the_next_flow(audit):
    addon, tctx, tmp_path = audit
    addon.mark("opt_out")
    flow = _post(b"/x", b"{}")
    _run(addon, tctx, flow)
    saved = flow.metadata["phonehome"]["markers"]
    assert [m["label"] for m in saved] == ["opt_out"]
    report = _report(addon, tmp_path)
    assert [m["label"] for m in report["markers"] if m["source"] == "auditor"] == ["opt_out"]


def test_client_websocket_messages_are_observations(audit):
    addon, tctx, tmp_path = audit
    flow = tflow.twebsocketflow()
    flow.websocket.messages = []
    for index, (from_client, content) in enumerate([(True, b'{"a":1}'), (False, b"pong"),
                                                    (True, b'{"b":2}')]):
        flow.websocket.messages.append(websocket.WebSocketMessage(1, from_client, content, index))
        addon.websocket_message(flow)
    kinds = [(f["kind"], f["method"]) for f in _report(addon, tmp_path)["flows"]]
    assert kinds == [("websocket", "WS"), ("websocket", "WS")]


def test_a_failing_stage_marks_audit_error_and_never_raises(audit, monkeypatch):
    addon, tctx, tmp_path = audit

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(addon.auditor.detection, "detect", explode)
    flow = _post(b"/x", b'{"email":"a@example.com"}')
    _run(addon, tctx, flow)
    report = _report(addon, tmp_path)
    assert report["flows"][0]["audit_error"] == {"stage": "detect", "reason": "RuntimeError: boom"}
    assert report["summary"]["audit_errors"] == 1


def test_flow_without_response_is_still_reported(audit):
    addon, tctx, tmp_path = audit
    flow = _post(b"/x", b"{}")
    flow.response = None
    addon.request(flow)
    addon.error(flow)
    assert _report(addon, tmp_path)["flows"][0]["status"] is None


def test_worker_process_audits_the_same_as_inline(tmp_path):
    """Observe mode's default: the audit runs in a child process."""
    results = {}
    for mode in ("inline", "worker"):
        addon = PhonehomeAudit()
        out = tmp_path / mode
        with addon_context(addon) as tctx:
            tctx.configure(addon, phonehome_report_dir=str(out), phonehome_quiet=True,
                           phonehome_formats="json",
                           phonehome_audit_process=(mode == "worker"))
            addon.mark("meeting_join")
            for i in range(3):
                body = {"metrics": [{"eventPayload": {"event": {"name": "client.muted"},
                                                      "userEmail": f"u{i}@example.com"}}]}
                _run(addon, tctx, _post(b"/metrics/api/v1/clientmetrics",
                                        json.dumps(body).encode()))
            assert (getattr(addon.sink, "worker", None) is not None) == (mode == "worker")
            addon.done()
        report = json.loads((out / "audit.json").read_text())
        results[mode] = (
            [(f["trigger"], f["purpose"], sorted(x["type"] for x in f["findings"]))
             for f in report["flows"]],
            [m["label"] for m in report["markers"] if m["source"] == "auditor"],
        )
    assert results["worker"] == results["inline"]
    assert len(results["worker"][0]) == 3 and results["worker"][1] == ["meeting_join"]


def test_a_dead_worker_falls_back_to_inline_without_losing_later_flows(tmp_path):
    addon = PhonehomeAudit()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                       phonehome_formats="json")
        before = [_post(b"/before/%d" % i, b"{}") for i in range(2)]
        for flow in before:
            _run(addon, tctx, flow)
        assert wait_for_stored_flows(tmp_path / "audit.sqlite", 2) == 2  # the worker has them
        addon.sink.worker._process.kill()
        addon.sink.worker._process.join(10)
        after = [_post(b"/after/%d" % i, b"{}") for i in range(2)]
        for flow in after:
            _run(addon, tctx, flow)
        assert addon.sink.worker is None and addon.sink.session is not None
        addon.done()
    report = json.loads((tmp_path / "audit.json").read_text())
    # (tflow gives every flow the same timestamp, so only the set is checked)
    assert sorted(f["url"].rsplit("/", 1)[0].rsplit("/", 1)[-1] for f in report["flows"]) == \
        ["after", "after", "before", "before"]


def test_another_addons_option_does_not_restart_the_audit(tmp_path):
    addon = PhonehomeAudit()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                       phonehome_formats="json")
        _run(addon, tctx, _post(b"/a", b"{}"))
        worker = addon.sink.worker
        assert worker is not None
        tctx.configure(addon, ssl_insecure=True)
        assert addon.sink.worker is worker and worker.alive
        _run(addon, tctx, _post(b"/b", b"{}"))
        addon.done()
    assert len(json.loads((tmp_path / "audit.json").read_text())["flows"]) == 2
