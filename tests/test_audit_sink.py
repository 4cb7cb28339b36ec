"""The audit sinks without a proxy: inline, the worker, and the worker's fallback."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from mitmproxy.test import taddons, tflow, tutils

from builders import muted_event_flow
from conftest import wait_for_stored_flows
from phonehome.addon import PhonehomeAudit
from phonehome.audit.pipeline import Auditor, AuditSettings
from phonehome.audit.session import report_from_store
from phonehome.audit.sink import InlineSink, WorkerSink


def _stored(store: Path) -> tuple[list[str], list[str]]:
    report = report_from_store(store).to_dict()
    return ([f["id"] for f in report["flows"]],
            [m["label"] for m in report["markers"] if m["source"] == "auditor"])


def _worker_sink(store: Path, *, fresh: bool = True) -> WorkerSink:
    return WorkerSink(AuditSettings(), store, time_scale=1.0, fresh=fresh, sensor="test",
                      spool_dir=store.parent, quiet=True)


def test_the_inline_sink_stores_audited_and_unaudited_flows(tmp_path):
    settings = AuditSettings()
    sink = InlineSink(settings, tmp_path / "audit.sqlite", Auditor(settings), time_scale=1.0,
                      fresh=True, sensor="test", spool_dir=tmp_path)
    assert not sink.fresh
    sink.submit(muted_event_flow("a"))
    audited = muted_event_flow("b", 101.0)
    sink.submit(audited, Auditor(settings).audit(audited))
    sink.mark("opt_out", 102.0)
    sink.tick()
    assert sink.finish()
    assert _stored(tmp_path / "audit.sqlite") == (["a", "b"], ["opt_out"])


def test_a_worker_sink_starts_its_child_on_first_use_only(tmp_path):
    sink = _worker_sink(tmp_path / "audit.sqlite")
    assert sink.fresh and sink.worker is None
    assert not sink.finish()  # nothing was ever opened
    assert not (tmp_path / "audit.sqlite").exists()
    sink = _worker_sink(tmp_path / "audit.sqlite")
    sink.mark("meeting_join", 99.0)
    assert sink.worker is not None and not sink.fresh
    sink.submit(muted_event_flow("a"))
    assert sink.finish()
    assert _stored(tmp_path / "audit.sqlite") == (["a"], ["meeting_join"])


def test_a_dead_worker_hands_over_to_this_process_without_losing_anything(tmp_path):
    store = tmp_path / "audit.sqlite"
    sink = _worker_sink(store)
    sink.mark("meeting_join", 99.0)
    sink.submit(muted_event_flow("a"))
    assert wait_for_stored_flows(store, 1) == 1
    assert sink.worker is not None
    sink.worker._process.kill()
    sink.worker._process.join(10)
    sink.tick()  # notices, and audits here from now on
    assert sink.worker is None and sink.session is not None
    sink.mark("opt_out", 101.0)
    sink.submit(muted_event_flow("b", 102.0))
    assert sink.finish()
    assert _stored(store) == (["a", "b"], ["meeting_join", "opt_out"])


def test_a_later_worker_sink_keeps_what_the_store_holds(tmp_path):
    store = tmp_path / "audit.sqlite"
    first = _worker_sink(store)
    first.submit(muted_event_flow("a"))
    assert first.finish()
    second = _worker_sink(store, fresh=False)
    second.submit(muted_event_flow("b", 101.0))
    assert second.finish()
    assert _stored(store)[0] == ["a", "b"]


@contextlib.contextmanager
def _addon(tmp_path: Path):
    addon = PhonehomeAudit()
    with taddons.context(addon) as tctx:
        try:
            tctx.configure(addon, phonehome_report_dir=str(tmp_path), phonehome_quiet=True,
                           phonehome_formats="json")
            yield addon, tctx
        finally:
            if not tctx.master.event_loop.is_closed():
                tctx.master.event_loop.close()


def _post(path: bytes):
    request = tutils.treq(method=b"POST", host="metrics-a.wbx2.com", path=path, content=b"{}",
                          scheme=b"https", port=443, authority=b"metrics-a.wbx2.com")
    return tflow.tflow(req=request, resp=True)


def test_reconfiguring_twice_before_the_next_flow_keeps_the_flows_stored(tmp_path):
    with _addon(tmp_path) as (addon, tctx):
        for path in (b"/a", b"/b"):
            flow = _post(path)
            addon.request(flow)
            addon.response(flow)
        assert wait_for_stored_flows(tmp_path / "audit.sqlite", 2) == 2
        tctx.configure(addon, phonehome_max_depth=40)  # a new worker, same store
        tctx.configure(addon, phonehome_max_depth=41)  # and another, before it started
        flow = _post(b"/c")
        addon.request(flow)
        addon.response(flow)
        addon.done()
    report = json.loads((tmp_path / "audit.json").read_text())
    assert sorted(f["url"].rsplit("/", 1)[1] for f in report["flows"]) == ["a", "b", "c"]
