"""The "phonehome" content view and the flow comment and mark, through mitmproxy's own
content-view API (11 and 12 differ: this file runs on both venvs) and its test harness."""

from __future__ import annotations

import json
import time

import pytest
from mitmproxy import contentviews, websocket
from mitmproxy.test import tflow, tutils

from builders import addon_context
from phonehome.addon import PhonehomeAudit
from phonehome.flow_view import HIGH_MARK

EMAIL = "jane.roe@example.org"
METRICS = b"/metrics/api/v1/clientmetrics"


def _post(body: dict, host: str = "metrics-a.wbx2.com"):
    request = tutils.treq(method=b"POST", host=host, path=METRICS, scheme=b"https", port=443,
                          authority=host.encode(), content=json.dumps(body).encode(),
                          headers=((b"content-type", b"application/json"),))
    return tflow.tflow(req=request, resp=True)


def _batch() -> dict:
    return {"metrics": [
        {"eventPayload": {"event": {"name": "client.share.initiated"}, "userEmail": EMAIL}},
        {"eventPayload": {"event": {"name": "client.muted"}, "os": "mac"}},
    ]}


def render(flow, message=None, view: str = "phonehome") -> tuple[str | None, str]:
    """(the view mitmproxy chose, its text) for the flow's request or a WebSocket message,
    through mitmproxy's own entry point."""
    message = flow.request if message is None else message
    if hasattr(contentviews, "prettify_message"):  # mitmproxy 12
        result = contentviews.prettify_message(message, flow, view)
        return result.view_name, result.text
    description, lines, error = contentviews.get_message_content_view(view, message, flow)
    assert error is None, error
    text = "\n".join("".join(text for _, text in line) for line in lines)
    return ("phonehome" if description == "phonehome audit" else description), text


@pytest.fixture(params=[False, True], ids=["inline", "worker"])
def audit(request, tmp_path):
    identity = tmp_path / "identity.yaml"
    identity.write_text(f"email: {EMAIL}\n")
    addon = PhonehomeAudit()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                       phonehome_formats="json", phonehome_identity=str(identity),
                       phonehome_audit_process=request.param)
        try:
            yield addon, tctx
        finally:
            addon.done()  # a worker child stops here


def _wait_for_note(addon, flow) -> None:
    """Tick the addon (the worker's notes come back on ticks) until the flow has its
    comment; bounded."""
    deadline = time.monotonic() + 60
    while not flow.comment and time.monotonic() < deadline:
        addon._tick()
        time.sleep(0.05)


def test_the_view_shows_the_audit_of_a_flow_with_findings(audit):
    addon, _ = audit
    flow = _post(_batch())
    name, text = render(flow)
    assert name == "phonehome"
    lines = text.splitlines()
    assert "purpose: telemetry" in lines
    assert "party: Cisco Webex (first party)" in lines
    assert any(line.startswith("trigger: screen_share") for line in lines)
    # each event of the batch sits at its place with its trigger and categories
    events = [line for line in lines if line.strip().startswith("-  # event")]
    assert events == ['    -  # event "client.share.initiated" · screen_share · usage_statistics',
                      '    -  # event "client.muted" · in_meeting · usage_statistics']
    # the flagged field carries its findings inline, redacted as the reports are
    field = lines.index(next(line for line in lines if '"userEmail":' in line))
    assert lines[field].endswith('"j***@e***.org"  # ⚑ email · personal_data · high')
    assert lines[field + 1].strip() == "# ⚑ identity_match · personal_data · high"
    # and a field the rule names has its category
    assert any('"name": "client.muted"  # [usage_statistics]' in line for line in lines)
    assert EMAIL not in text


def test_a_revealing_audit_shows_the_value_and_says_so(tmp_path):
    addon = PhonehomeAudit()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                       phonehome_formats="json", phonehome_reveal=True)
        _, text = render(_post(_batch()))
    assert f'"userEmail": "{EMAIL}"  # ⚑ email' in text
    assert "(values redacted)" not in text.splitlines()[0]


def test_the_flow_gets_a_comment_and_a_mark_for_a_high_finding(audit):
    addon, tctx = audit
    flagged, plain = _post(_batch()), _post({"metrics": [{"eventPayload": {
        "event": {"name": "client.muted"}, "os": "mac"}}]})
    for flow in (flagged, plain):
        addon.request(flow)
        addon.response(flow)
    for flow in (flagged, plain):
        _wait_for_note(addon, flow)
    assert flagged.comment == ("phonehome: telemetry → Cisco Webex (first party) · "
                               "screen_share · high: email, identity_match")
    assert flagged.marked == HIGH_MARK
    assert plain.comment == ("phonehome: telemetry → Cisco Webex (first party) · "
                             "in_meeting · no findings")
    assert plain.marked == ""
    assert flagged.metadata["phonehome"]["findings"] == ["email", "identity_match"]
    # a flow with findings opens on its audit; one without keeps mitmproxy's choice
    assert render(flagged, view="auto")[0] == "phonehome"
    assert render(plain, view="auto")[0] != "phonehome"


def test_a_persons_own_comment_and_mark_are_kept(audit):
    addon, _ = audit
    flow = _post(_batch())
    flow.comment, flow.marked = "mine", ":star:"
    addon.request(flow)
    addon.response(flow)
    addon.done()  # the worker has passed every note once it has finished
    assert (flow.comment, flow.marked) == ("mine", ":star:")
    assert flow.metadata["phonehome"]["findings"] == ["email", "identity_match"]


def test_marking_can_be_turned_off(audit):
    addon, tctx = audit
    tctx.options.update(phonehome_mark_flows=False)
    flow = _post(_batch())
    addon.request(flow)
    addon.response(flow)
    assert render(flow)[0] == "phonehome"  # the view is still there
    addon.done()
    assert (flow.comment, flow.marked) == ("", "")
    assert flow.metadata["phonehome"]["findings"] == ["email", "identity_match"]  # still noted


def test_a_websocket_message_is_shown_with_its_own_audit(audit):
    addon, _ = audit
    flow = tflow.twebsocketflow()
    flow.websocket.messages = [
        websocket.WebSocketMessage(1, True, json.dumps({"user": {"email": EMAIL}}).encode(),
                                   100.0),
        websocket.WebSocketMessage(1, False, b'{"ok":true}', 101.0),
    ]
    _, client = render(flow, flow.websocket.messages[0])
    lines = [line.strip() for line in client.splitlines()]
    field = lines.index('"email": "j***@e***.org"  # [personal_data]')
    assert lines[field + 1] == "# ⚑ email · personal_data · high"
    _, server = render(flow, flow.websocket.messages[1])
    assert server.startswith("# phonehome does not audit this flow")


def test_a_websocket_message_marks_the_flow_but_keeps_the_requests_comment(audit):
    addon, _ = audit
    flow = tflow.twebsocketflow()
    flow.comment = "phonehome: the request's own note"
    flow.metadata["phonehome"] = {"comment": flow.comment, "findings": []}
    flow.websocket.messages = [websocket.WebSocketMessage(
        1, True, json.dumps({"user": {"email": EMAIL}}).encode(), 100.0)]
    addon.websocket_message(flow)
    deadline = time.monotonic() + 60
    while not flow.marked and time.monotonic() < deadline:  # the worker's note, on a tick
        addon._tick()
        time.sleep(0.05)
    assert flow.marked == HIGH_MARK
    assert flow.comment == "phonehome: the request's own note"
    assert flow.metadata["phonehome"]["findings"] == []


def test_a_flow_out_of_scope_says_so(tmp_path):
    addon = PhonehomeAudit()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                       phonehome_formats="json", phonehome_scope="~d example.com")
        name, text = render(_post(_batch()))
    assert name == "phonehome"
    assert text.startswith("# phonehome does not audit this flow")


def test_hostile_keys_cannot_fake_lines_of_the_view(audit):
    addon, _ = audit
    flow = _post({"a\npurpose: service": "x\n# ⚑ forged", "b": [1, None, True]})
    _, text = render(flow)
    assert '"a\\npurpose: service": "x\\n# ⚑ forged"' in text
    lines = [line.strip() for line in text.splitlines()]
    assert "purpose: unknown" in lines
    assert "purpose: service" not in lines and "# ⚑ forged" not in lines


def test_controls_json_leaves_raw_are_shown_escaped(audit):
    """A C1 control (a terminal's CSI) or a bidi override in a key or value is written
    out, never passed to the terminal or the browser as is."""
    _, text = render(_post({"a\u202eb": "x\x9b[31my", "c": "\u200bz"}))
    assert not any(ch in text for ch in "\u202e\x9b\u200b")
    assert '"a\\u202eb": "x\\x9b[31my"' in text and '"\\u200bz"' in text
