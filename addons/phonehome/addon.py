"""The mitmproxy addons: the only module that knows mitmproxy's hook names.

`PhonehomeAudit` feeds flows to an audit sink and writes the reports when mitmdump stops;
`PhonehomeEnforce` redacts or blocks telemetry on the audit's result. Options are parsed
in `configure()` alone, and no hook ever raises into mitmproxy.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import weakref
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from mitmproxy import command, ctx, exceptions, hooks, http

from .addon_config import (
    OPTION_NAMES,
    AddonConfig,
    OptionView,
    add_options,
    hold_unconvertible,
    parse_config,
    show_config_errors_on_one_line,
)
from .audit.pipeline import Auditor, AuditResult
from .audit.session import report_from_store, sensor_selection
from .audit.sink import AuditSink, InlineSink, WorkerSink
from .capture.observe import observe_request, observe_websocket_message
from .contentview import register as register_view
from .contentview import unregister as unregister_view
from .enforce import (
    EnforcePolicy,
    apply_enforcement,
    apply_message_enforcement,
    block_flow,
    plan_enforcement,
)
from .flow_view import HIGH_MARK, Annotations, FlowNote, annotate, flow_note
from .model import Observation
from .report.terminal import LiveView, format_summary
from .report.write import write_report

__all__ = ["PhonehomeAudit", "PhonehomeEnforce", "make_addons"]

log = logging.getLogger(__name__)

# What only the terminal shows, or the flows' notes, needs no new audit sink.
_TOGGLES = {"phonehome_quiet", "phonehome_details", "phonehome_mark_flows"}
_REBUILD_OPTIONS = OPTION_NAMES - _TOGGLES

# Flows whose audit the worker has yet to send back (the oldest are let go first).
_MAX_AWAITED = 4096


def make_addons() -> list[Any]:
    """The entry script's `addons`. Enforce comes first: it acts on a flow before the
    audit stores the flow's record, so the record says what was done."""
    audit = PhonehomeAudit()
    return [PhonehomeEnforce(audit), audit]


def _console(file: Any = None) -> Any:
    from rich.console import Console

    return Console(file=file or sys.stdout, soft_wrap=True, highlight=False)


def _unmarked(observation: Observation) -> Observation:
    observation.markers = []  # the sink had them from mark() already
    return observation


class PhonehomeAudit:
    """Observe: every in-scope flow and client WebSocket message goes to the audit sink."""

    def __init__(self) -> None:
        self.config: AddonConfig | None = None
        self.auditor: Auditor | None = None
        """Set when flows are audited in this process, at request time."""
        self.sink: AuditSink | None = None
        # Request-time audits by (flow id, WebSocket message index or None), kept until
        # stored; an exception is kept too, so that a failed audit is not run twice.
        self._audited: dict[tuple[str, int | None], AuditResult | Exception | None] = {}
        self._unsaved_markers: list[dict[str, Any]] = []
        self._unconverted: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._console = _console()
        self._live: LiveView | None = None
        """The live view of flows audited in this process."""
        self._finished = False
        self._awaited: OrderedDict[str, weakref.ref[http.HTTPFlow]] = OrderedDict()
        """Flows whose note the worker has yet to send, held weakly: a flow mitmproxy
        has let go of (and its bodies) is not kept for a comment."""
        self._viewer: Auditor | None = None
        self._view: Any = None

    # --- options ---------------------------------------------------------

    def load(self, loader: Any) -> None:
        add_options(loader)
        self._unconverted = hold_unconvertible(loader.master.options)
        show_config_errors_on_one_line()
        try:
            self._view = register_view(self.inspect)
        except Exception as e:  # noqa: BLE001 - the audit runs without its view
            log.warning(f"phonehome: no content view: {e}")

    def configure(self, updated: set[str]) -> None:
        # Another addon's option change must not restart the audit.
        if self.config is not None and not updated & _REBUILD_OPTIONS:
            if updated & _TOGGLES:
                self.config = replace(self.config, quiet=bool(ctx.options.phonehome_quiet),
                                      details=bool(ctx.options.phonehome_details),
                                      mark_flows=bool(ctx.options.phonehome_mark_flows))
            return
        unconverted, self._unconverted = self._unconverted, {}
        config = parse_config(OptionView(ctx.options, unconverted))
        unknown = config.unknown_enforce_rules()
        if unknown:
            log.warning(f"phonehome: enforce file names unknown rule ids: {', '.join(unknown)}")
        self.auditor = (Auditor(config.settings, rules=config.rules, identity=config.identity)
                        if config.inline else None)
        if self._live is None or self._live.total.interval != config.total_interval:
            self._live = LiveView(self._console, config.total_interval)
        self._viewer = None
        self.sink = self._sink_for(config)
        self.config = config

    def _sink_for(self, config: AddonConfig) -> AuditSink:
        """The sink for `config`, after the old one has finished. A store starts afresh
        only if no earlier sink has written to it."""
        old = self.sink
        if (isinstance(old, InlineSink) and config.inline
                and old.store_path == config.store_path and self.auditor is not None):
            old.retune(self.auditor, config.time_scale)
            return old
        fresh = old is None or old.store_path != config.store_path or old.fresh
        if old is not None:
            old.finish()
        if self.auditor is not None:
            return InlineSink(config.settings, config.store_path, self.auditor,
                              time_scale=config.time_scale, fresh=fresh, sensor=config.sensor,
                              spool_dir=config.report_dir, on_record=self._show)
        return WorkerSink(config.settings, config.store_path, time_scale=config.time_scale,
                          fresh=fresh, sensor=config.sensor, spool_dir=config.report_dir,
                          quiet=config.quiet, total_interval=config.total_interval,
                          on_note=self._noted)

    def _show(self, record: dict[str, Any]) -> None:
        if self.config is not None and not self.config.quiet and self._live is not None:
            self._live.show(record)

    # --- lifecycle -------------------------------------------------------

    async def running(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tick()  # a worker starts now, before the traffic
        self._tasks.append(asyncio.create_task(self._tick_periodically()))
        if hasattr(signal, "SIGHUP"):  # a closed terminal stops mitmdump as SIGTERM does
            try:
                self._loop.add_signal_handler(signal.SIGHUP, ctx.master.shutdown)
            except (NotImplementedError, RuntimeError):
                pass
        if self.config is None:
            return
        try:
            from .analysis.timeline.channel import MarkerListener

            self._listener = MarkerListener(self.config.marker_socket, self._marker_from_thread)
            self._listener.start()
        except Exception as e:  # noqa: BLE001 - marking from a terminal is optional
            log.warning(f"phonehome: `phonehome mark` unavailable: {e}")
            self._listener = None

    async def _tick_periodically(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self._tick()

    def _tick(self) -> None:
        if self._live is not None and self.config is not None and not self.config.quiet:
            self._live.tick()
        if self.sink is not None:
            try:
                self.sink.tick()
            except Exception as e:  # noqa: BLE001
                log.error(f"phonehome: store commit failed: {e}")

    def _marker_from_thread(self, label: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.mark, label)

    @command.command("phonehome.mark")
    def mark(self, label: str) -> None:
        """Mark this moment, e.g. `phonehome.mark meeting_join` or `opt_out`."""
        from .analysis.timeline import check_label

        try:
            check_label(label)
        except ValueError as e:
            raise exceptions.CommandError(str(e)) from e
        if self.sink is None:
            return
        now = time.time()
        self.sink.mark(label, now)
        # Saved on the next flow's metadata too, so `-w` captures keep it.
        self._unsaved_markers.append({"label": label, "timestamp": now})
        log.info(f"phonehome: marked {label}")

    # --- flows -------------------------------------------------------------

    def _mine(self, flow: http.HTTPFlow) -> bool:
        scope = self.config.scope if self.config is not None else None
        return self.sink is not None and (scope is None or bool(scope(flow)))

    def audit_now(self, flow: http.HTTPFlow, message: int | None = None) -> AuditResult | None:
        """The audit of this flow's request (or of its WebSocket `message`), run once, in
        this process, and kept until the record is stored. None when the flow is not in
        scope or the worker audits it. Raises when the audit failed."""
        key = (flow.id, message)
        if key not in self._audited:
            self._audited[key] = self._audit(flow, message)
        audited = self._audited[key]
        if isinstance(audited, Exception):
            raise audited
        return audited

    def _audit(self, flow: http.HTTPFlow, message: int | None) -> AuditResult | Exception | None:
        if self.auditor is None or not self._mine(flow):
            return None
        try:
            observation = (observe_request(flow) if message is None
                           else observe_websocket_message(flow, message))
            if observation is None:
                return None
            return self.auditor.audit_result(_unmarked(observation))
        except Exception as e:  # noqa: BLE001 - the hooks report it
            return e

    def request(self, flow: http.HTTPFlow) -> None:
        if not self._mine(flow):
            return
        meta = flow.metadata.setdefault("phonehome", {})
        if self._unsaved_markers:
            meta.setdefault("markers", []).extend(self._unsaved_markers)
            self._unsaved_markers = []
        try:
            result = self.audit_now(flow)
        except Exception as e:  # noqa: BLE001 - never break the traffic
            log.error(f"phonehome: audit failed for {flow.request.pretty_url}: {e}")
            return
        if result is not None:
            self._note(flow, flow_note(result.record))

    def response(self, flow: http.HTTPFlow) -> None:
        self._store(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._store(flow)

    def _store(self, flow: http.HTTPFlow) -> None:
        audited = self._audited.pop((flow.id, None), None)
        if isinstance(audited, AuditResult):
            if flow.response is not None:
                audited.record["status"] = flow.response.status_code
                raw = flow.response.raw_content
                audited.record["response_size"] = len(raw) if raw is not None else None
            self._submit(audited.observation, audited.record)
        elif self.auditor is None and self.sink is not None and "phonehome" in flow.metadata:
            # the worker audits a flow seen in scope once its response is in
            try:
                observation = observe_request(flow)
            except Exception as e:  # noqa: BLE001
                log.error(f"phonehome: audit failed for {flow.request.pretty_url}: {e}")
                return
            self._await(observation.id, flow)
            self._submit(_unmarked(observation))

    def _submit(self, observation: Observation, record: dict[str, Any] | None = None) -> None:
        assert self.sink is not None
        try:
            self.sink.submit(observation, record)
        except Exception as e:  # noqa: BLE001 - never break the traffic
            log.error(f"phonehome: cannot store flow {observation.id}: {e}")

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            return
        index = len(flow.websocket.messages) - 1
        try:
            if self.auditor is not None:
                result = self.audit_now(flow, index)
                if result is not None:
                    self._note(flow, flow_note(result.record))
                    self._submit(result.observation, result.record)
            elif self._mine(flow):
                observation = observe_websocket_message(flow, index)
                if observation is not None:
                    self._await(observation.id, flow)
                    self._submit(_unmarked(observation))
        except Exception as e:  # noqa: BLE001
            log.error(f"phonehome: websocket audit failed: {e}")
        finally:
            self._audited.pop((flow.id, index), None)

    # --- what a person sees in mitmproxy ---------------------------------------

    def _await(self, record_id: str, flow: http.HTTPFlow) -> None:
        """Keep the flow until the worker's note for it comes back (`_note` decides
        what of it to show)."""
        self._awaited[record_id] = weakref.ref(flow)
        while len(self._awaited) > _MAX_AWAITED:
            self._awaited.popitem(last=False)

    def _noted(self, note: FlowNote) -> None:
        """A flow's audit, back from the worker: shown on the flow a moment later."""
        held = self._awaited.pop(note.id, None)
        flow = held() if held is not None else None
        if flow is None:
            return
        try:
            self._note(flow, note)
            ctx.master.addons.trigger(hooks.UpdateHook([flow]))  # mitmweb redraws it
        except Exception as e:  # noqa: BLE001
            log.error(f"phonehome: cannot note flow {note.id}: {e}")

    def _note(self, flow: http.HTTPFlow, note: FlowNote) -> None:
        """The audit's metadata on the flow; with `phonehome_mark_flows`, its comment
        (for the request, not its WebSocket messages) and a mark when a finding is high.
        A person's own comment or mark is left alone."""
        meta = flow.metadata.setdefault("phonehome", {})
        if not note.message:
            meta.update(note.meta)
        if self.config is None or not self.config.mark_flows:
            return
        if not note.message and (not flow.comment or flow.comment == meta.get("comment")):
            flow.comment = meta["comment"] = note.comment
        if note.high and not flow.marked:
            flow.marked = HIGH_MARK

    def inspect(self, flow: http.HTTPFlow,
                message: int | None = None) -> tuple[dict[str, Any], Annotations] | None:
        """The audit of `flow`'s request (or of its WebSocket `message`) for the content
        view, run now: a view runs only when a person looks, and in worker mode this
        process has no audit at hand. None when phonehome does not audit the flow."""
        config = self.config
        if config is None or self._finished or not isinstance(flow, http.HTTPFlow):
            return None
        if not self._mine(flow):
            return None
        observation = (observe_request(flow) if message is None
                       else observe_websocket_message(flow, message))
        if observation is None:
            return None
        auditor = self.auditor
        if auditor is None:
            if self._viewer is None:
                self._viewer = Auditor(config.settings, rules=config.rules,
                                       identity=config.identity)
            auditor = self._viewer
        result = auditor.audit_result(_unmarked(observation))
        return result.record, annotate(auditor.rules, result.classification, result.payload)

    def done(self) -> None:
        if self._view is not None:
            unregister_view(self._view)
            self._view = None
        if self._finished or self.sink is None or self.config is None:
            return
        self._finished = True
        for task in self._tasks:
            task.cancel()
        if self._listener is not None:
            self._listener.stop()
        console = _console(sys.stdout)
        config = self.config
        try:
            for key in list(self._audited):  # requests still waiting for a response
                audited = self._audited.pop(key)
                if isinstance(audited, AuditResult):
                    self.sink.submit(audited.observation, audited.record)
            if not self.sink.finish():
                return  # nothing was ever stored
            report = report_from_store(
                config.store_path, selection=sensor_selection(config.store_path, config.sensor))
            written = write_report(report, config.report_dir, config.formats)
        except Exception as e:  # noqa: BLE001 - report what we can, never crash mitmdump
            console.print(f"phonehome: could not write the report: {e}")
            return
        console.print(format_summary(report, details=config.details, written=written))


class PhonehomeEnforce:
    """Enforce mode: redact or block telemetry before it leaves, on the audit's result.

    Fails closed: a request whose audit stage failed is blocked, and a WebSocket message
    that cannot be audited is dropped. Its options are parsed with the audit's."""

    def __init__(self, audit: PhonehomeAudit) -> None:
        self.audit = audit

    def _policy(self) -> EnforcePolicy | None:
        config = self.audit.config
        return config.policy if config is not None and config.policy.enabled else None

    def _plan(self, policy: EnforcePolicy, result: AuditResult) -> Any:
        if result.record.get("audit_error") and not policy.dry_run:
            raise RuntimeError(f"audit failed in {result.record['audit_error']['stage']}")
        return plan_enforcement(policy, result.observation, result.payload,
                                result.classification, result.findings)

    def _recheck(self) -> dict[str, Any]:
        auditor = self.audit.auditor
        return {"recheck": auditor.detection.detect if auditor else None,
                "limits": auditor.settings.limits if auditor else None}

    def request(self, flow: http.HTTPFlow) -> None:
        policy = self._policy()
        if policy is None:
            return
        try:
            result = self.audit.audit_now(flow)
        except Exception:  # noqa: BLE001 - the audit logs it, as in observe mode
            return
        if result is None:
            return
        try:
            enforcement = apply_enforcement(flow, self._plan(policy, result), result.payload,
                                            result.findings, **self._recheck())
        except Exception as e:  # noqa: BLE001
            block_flow(flow, policy.block_status)
            enforcement = _fail_closed(f"fail-closed: {e}")
        result.record["enforcement"] = enforcement

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        policy = self._policy()
        if policy is None or flow.websocket is None:
            return
        index = len(flow.websocket.messages) - 1
        message = flow.websocket.messages[index]
        try:
            result = self.audit.audit_now(flow, index)
        except Exception:  # noqa: BLE001 - the audit logs it
            if not policy.dry_run:
                message.drop()
            return
        if result is None:
            return
        try:
            enforcement = apply_message_enforcement(
                message, result.observation, self._plan(policy, result), result.payload,
                result.findings, **self._recheck())
        except Exception as e:  # noqa: BLE001
            message.drop()
            enforcement = _fail_closed(f"fail-closed: {e}; message dropped")
        result.record["enforcement"] = enforcement


def _fail_closed(reason: str) -> dict[str, Any]:
    return {"action": "blocked", "dry_run": False, "changed": [], "reason": reason[:300]}
