"""The mitmproxy addon: the only module that knows mitmproxy's hook names.

Options share the `phonehome_` prefix. `configure()` is the one place that
parses anything (filters, rule packs, the identity file); hooks only feed
flows to the audit session and never raise into mitmproxy.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mitmproxy import command, ctx, exceptions, flowfilter, http

from .capture import observe_request, observe_websocket_message
from .decode import DecodeLimits
from .enforce import (
    MODES,
    EnforceError,
    EnforcePolicy,
    apply_enforcement,
    apply_message_enforcement,
    plan_enforcement,
)
from .pipeline import Auditor, AuditSettings
from .report.terminal import format_flow_line, format_summary
from .report.write import parse_formats, write_report
from .session import AuditSession, report_from_store, sensor_selection
from .store import (
    StoreError,
    StoreTarget,
    default_sensor,
    fingerprint_key,
    is_postgres_url,
)
from .store_pg import check_shared_store
from .worker import AuditWorker

__all__ = ["PhonehomeAudit"]

log = logging.getLogger(__name__)

_PARSED_OPTIONS = {
    "phonehome_scope",
    "phonehome_rules",
    "phonehome_identity",
    "phonehome_reveal",
    "phonehome_report_dir",
    "phonehome_store",
    "phonehome_sensor",
    "phonehome_formats",
    "phonehome_max_body",
    "phonehome_max_depth",
    "phonehome_max_leaves",
    "phonehome_time_scale",
    "phonehome_marker_socket",
    "phonehome_enforce",
    "phonehome_enforce_dry_run",
    "phonehome_enforce_file",
    "phonehome_audit_process",
    "phonehome_app",
}


def _console(file: Any = None) -> Any:
    from rich.console import Console

    return Console(file=file or sys.stdout, soft_wrap=True, highlight=False)


class PhonehomeAudit:
    def __init__(self) -> None:
        self.session: AuditSession | None = None
        self.scope: flowfilter.TFilter | None = None
        self.formats: list[str] = ["json"]
        self.report_dir = Path("reports")
        self.policy = EnforcePolicy()
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_markers: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._console = _console()
        self._finished = False
        self._configured = False
        self.worker: AuditWorker | None = None
        self._worker_args: tuple[AuditSettings, StoreTarget, float] | None = None
        self.sensor = default_sensor()

    # --- options ---------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option("phonehome_scope", str, "",
                          "Audit only flows matching this mitmproxy filter (default: all).")
        loader.add_option("phonehome_rules", Sequence[str], [],
                          "Extra rule packs (YAML files or folders), added to the bundled ones.")
        loader.add_option("phonehome_identity", str, "",
                          "Identity file (YAML) with your own values to look for.")
        loader.add_option("phonehome_reveal", bool, False,
                          "Show raw values in reports instead of redacted evidence.")
        loader.add_option("phonehome_report_dir", str, "reports",
                          "Folder for the reports written when mitmdump stops.")
        loader.add_option("phonehome_store", str, "",
                          "Findings store: a SQLite file (default: <report_dir>/audit.sqlite) "
                          "or a postgresql:// URL shared by many proxies.")
        loader.add_option("phonehome_sensor", str, "",
                          "This proxy's name in a shared store (default: the host name).")
        loader.add_option("phonehome_formats", str, "json,md,html,csv",
                          "Report formats: json, md, html, csv, or all.")
        loader.add_option("phonehome_quiet", bool, False,
                          "No live one-line-per-flow view.")
        loader.add_option("phonehome_max_body", int, DecodeLimits().max_decompressed_bytes,
                          "Largest decompressed body to decode, in bytes.")
        loader.add_option("phonehome_max_depth", int, DecodeLimits().max_depth,
                          "Deepest nesting to decode.")
        loader.add_option("phonehome_max_leaves", int, DecodeLimits().max_leaves,
                          "Most values to decode per flow.")
        loader.add_option("phonehome_time_scale", str, "1",
                          "Stretch timestamps by this factor (for time-compressed simulations).")
        loader.add_option("phonehome_marker_socket", str, "",
                          "Socket for `phonehome mark`; default: "
                          "<report_dir>/.phonehome-markers.sock.")
        loader.add_option("phonehome_enforce", str, "observe",
                          "observe (change nothing), redact flagged values, or block telemetry.",
                          choices=MODES)
        loader.add_option("phonehome_enforce_dry_run", bool, False,
                          "Report what enforce mode would redact or block, and pass everything.")
        loader.add_option("phonehome_enforce_file", str, "",
                          "Enforce file (YAML): actions per rule id, category or finding type.")
        loader.add_option("phonehome_audit_process", bool, True,
                          "In observe mode, audit in a child process so proxying is not slowed "
                          "(enforce mode always audits inline).")
        loader.add_option("phonehome_app", str, "auto",
                          "The audited app (webex, teams, … a first-party pack id), whose vendor "
                          "is the first party and whose claims are checked; auto: the vendor "
                          "whose domains carry most of the telemetry.")

    def configure(self, updated: set[str]) -> None:
        # Reparse only for our own options: another addon's option change must not
        # restart the audit (in worker mode there is no inline session to test for).
        if self._configured and not updated & _PARSED_OPTIONS:
            return
        opts = ctx.options
        try:
            self.scope = flowfilter.parse(opts.phonehome_scope) if opts.phonehome_scope else None
        except ValueError as e:
            raise exceptions.OptionsError(f"phonehome_scope: {e}") from e
        try:
            self.formats = parse_formats(opts.phonehome_formats)
        except ValueError as e:
            raise exceptions.OptionsError(f"phonehome_formats: {e}") from e
        try:
            time_scale = float(opts.phonehome_time_scale)
            if not 0 < time_scale <= 1e6:
                raise ValueError("must be between 0 and 1e6")
        except ValueError as e:
            raise exceptions.OptionsError(f"phonehome_time_scale: {e}") from e
        self.report_dir = Path(opts.phonehome_report_dir)
        store_path: StoreTarget = (
            opts.phonehome_store if is_postgres_url(opts.phonehome_store)
            else Path(opts.phonehome_store or self.report_dir / "audit.sqlite"))
        key_folder = self.report_dir if is_postgres_url(store_path) else Path(store_path).parent
        try:
            key = fingerprint_key(key_folder)
        except OSError as e:
            raise exceptions.OptionsError(
                f"phonehome_store: {key_folder}: cannot keep the fingerprint key: {e}") from e
        settings = AuditSettings(
            fingerprint_key=key,
            rule_paths=tuple(Path(p) for p in opts.phonehome_rules),
            identity_path=Path(opts.phonehome_identity) if opts.phonehome_identity else None,
            reveal=opts.phonehome_reveal,
            limits=DecodeLimits(
                max_decompressed_bytes=opts.phonehome_max_body,
                max_depth=opts.phonehome_max_depth,
                max_leaves=opts.phonehome_max_leaves,
            ),
            app=opts.phonehome_app,
        )
        try:
            auditor = Auditor(settings)
        except Exception as e:  # rules, identity: the message names path:line
            raise exceptions.OptionsError(f"phonehome: {e}") from e
        try:
            self.policy = EnforcePolicy.from_options(
                opts.phonehome_enforce, opts.phonehome_enforce_dry_run,
                opts.phonehome_enforce_file or None)
        except EnforceError as e:
            raise exceptions.OptionsError(f"phonehome_enforce_file: {e}") from e
        unknown = self.policy.unknown_rules({rule.id for rule in auditor.rules.rules})
        if unknown:
            log.warning(f"phonehome: enforce file names unknown rule ids: {', '.join(unknown)}")
        self.sensor = opts.phonehome_sensor or default_sensor()
        if is_postgres_url(store_path):
            try:
                check_shared_store(store_path)
            except StoreError as e:
                raise exceptions.OptionsError(f"phonehome_store: {e}") from e
        if self.policy.enabled or not opts.phonehome_audit_process:
            self._use_inline(settings, auditor, store_path, time_scale)
        else:
            self._use_worker(settings, store_path, time_scale)
        self._configured = True

    def _use_inline(self, settings: AuditSettings, auditor: Auditor, store_path: StoreTarget,
                    time_scale: float) -> None:
        fresh = self._stop_worker(store_path)
        if self.session is not None and self.session.store_path == store_path:
            self.session.auditor = auditor
            self.session.time_scale = time_scale
            return
        if self.session is not None:
            self.session.finish()
        self.session = AuditSession(settings, store_path, auditor=auditor, time_scale=time_scale,
                                    inputs={"captures": ["live"]}, fresh_store=fresh,
                                    sensor=self.sensor, spool_dir=self.report_dir,
                                    must_connect=False)

    def _use_worker(self, settings: AuditSettings, store_path: StoreTarget,
                    time_scale: float) -> None:
        fresh = True
        if self.session is not None:
            self.session.close()
            fresh = self.session.store_path != store_path
            self.session = None
        fresh = self._stop_worker(store_path) and fresh
        self._worker_args = (settings, store_path, time_scale)
        self._worker_fresh = fresh

    def _stop_worker(self, store_path: StoreTarget) -> bool:
        """Stop a running worker; True when the next store should start fresh."""
        if self.worker is None:
            return True
        self.worker.finish()
        same = self.worker.store_path == store_path
        self.worker = None
        return not same

    def _sink_ready(self) -> bool:
        """Start the worker on first use (not at configure: tests and --help need none)."""
        if self.session is not None or self.worker is not None:
            return True
        if self._worker_args is None:
            return False
        settings, store_path, time_scale = self._worker_args
        self.worker = AuditWorker(settings, store_path, inputs={"captures": ["live"]},
                                  time_scale=time_scale, quiet=ctx.options.phonehome_quiet,
                                  fresh=self._worker_fresh, sensor=self.sensor,
                                  spool_dir=self.report_dir).start()
        self._worker_fresh = False
        return True

    @property
    def marker_socket(self) -> Path:
        custom = ctx.options.phonehome_marker_socket
        return Path(custom) if custom else self.report_dir / ".phonehome-markers.sock"

    # --- lifecycle -------------------------------------------------------

    async def running(self) -> None:
        self._loop = asyncio.get_running_loop()
        if hasattr(signal, "SIGHUP"):  # a closed terminal stops mitmdump as SIGTERM does
            try:
                self._loop.add_signal_handler(signal.SIGHUP, ctx.master.shutdown)
            except (NotImplementedError, RuntimeError):
                pass
        self._sink_ready()
        self._tasks.append(asyncio.create_task(self._flush_periodically()))
        try:
            from .timeline.channel import MarkerListener

            self._listener = MarkerListener(self.marker_socket, self._marker_from_thread)
            self._listener.start()
        except Exception as e:  # noqa: BLE001 - marking from a terminal is optional
            log.warning(f"phonehome: `phonehome mark` unavailable: {e}")
            self._listener = None

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self.session is not None:  # the worker commits on its own
                try:
                    self.session.tick()
                except Exception as e:  # noqa: BLE001
                    log.error(f"phonehome: store commit failed: {e}")

    def _marker_from_thread(self, label: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.mark, label)

    @command.command("phonehome.mark")
    def mark(self, label: str) -> None:
        """Mark this moment, e.g. `phonehome.mark meeting_join` or `opt_out`."""
        from .timeline import check_label

        try:
            check_label(label)
        except ValueError as e:
            raise exceptions.CommandError(str(e)) from e
        if not self._sink_ready():
            return
        now = time.time()
        if self.worker is not None:
            self.worker.mark(label, now)
        elif self.session is not None:
            self.session.mark(label, now)
        # Saved on the next flow's metadata too, so `-w` captures keep it.
        self._pending_markers.append({"label": label, "timestamp": now})
        log.info(f"phonehome: marked {label}")

    # --- flows -------------------------------------------------------------

    def _in_scope(self, flow: http.HTTPFlow) -> bool:
        return self.scope is None or bool(self.scope(flow))

    def request(self, flow: http.HTTPFlow) -> None:
        if not self._in_scope(flow) or not self._sink_ready():
            return
        meta = flow.metadata.setdefault("phonehome", {})
        if self._pending_markers:
            meta.setdefault("markers", []).extend(self._pending_markers)
            self._pending_markers = []
        if self.session is None:
            return  # the worker audits when the response is in
        try:
            result = self.session.audit_result(observe_request(flow))
        except Exception as e:  # noqa: BLE001 - never break the traffic
            log.error(f"phonehome: audit failed for {flow.request.pretty_url}: {e}")
            return
        record = result.record
        if self.policy.enabled:
            record["enforcement"] = self._enforce(flow, result)
        self._pending[flow.id] = record
        meta.update({
            "trigger": record["trigger"],
            "purpose": record["purpose"],
            "party": record["party"],
            "rule_ids": record["rule_ids"],
            "findings": sorted({f["type"] for f in record["findings"]}),
        })

    def _enforce(self, flow: http.HTTPFlow, result: Any) -> dict[str, Any]:
        """Redact or block per the policy. Fails closed: a failed audit blocks."""
        auditor = self.session.auditor if self.session else None
        try:
            if result.record.get("audit_error") and not self.policy.dry_run:
                raise RuntimeError(f"audit failed in {result.record['audit_error']['stage']}")
            plan = plan_enforcement(self.policy, result.observation,
                                    result.payload, result.classification, result.findings)
            return apply_enforcement(
                flow, plan, result.payload, result.findings,
                recheck=auditor.detector.detect if auditor else None,
                limits=auditor.settings.limits if auditor else None)
        except Exception as e:  # noqa: BLE001
            from .enforce import block_flow

            block_flow(flow, self.policy.block_status)
            return {"action": "blocked", "dry_run": False, "changed": [],
                    "reason": f"fail-closed: {e}"[:300]}

    def _complete(self, flow: http.HTTPFlow) -> None:
        if self.worker is not None:
            if "phonehome" in flow.metadata:  # in scope, seen at request time
                self._submit(observe_request(flow))
            return
        record = self._pending.pop(flow.id, None)
        if record is None or self.session is None:
            return
        if flow.response is not None:
            record["status"] = flow.response.status_code
            raw = flow.response.raw_content
            record["response_size"] = len(raw) if raw is not None else None
        try:
            self.session.commit(record)
            if not ctx.options.phonehome_quiet:
                self._console.print(format_flow_line(record))
        except Exception as e:  # noqa: BLE001
            log.error(f"phonehome: cannot store flow {flow.id}: {e}")

    def response(self, flow: http.HTTPFlow) -> None:
        self._complete(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._complete(flow)

    def _submit(self, observation: Any) -> None:
        observation.markers = []  # the worker got them from mark() already
        worker = self.worker
        try:
            if worker is not None and worker.alive:
                worker.submit(observation)
                return
        except Exception as e:  # noqa: BLE001 - never break the traffic
            log.error(f"phonehome: cannot hand flow {observation.id} to the audit: {e}")
        self._fall_back_inline()
        if self.session is not None:
            self.session.commit(self.session.audit(observation))

    def _fall_back_inline(self) -> None:
        """The audit worker died: keep auditing in this process, into the same store."""
        if self.session is not None or self._worker_args is None:
            return
        settings, store_path, time_scale = self._worker_args
        code = self.worker.exitcode if self.worker is not None else None
        log.error(f"phonehome: the audit worker stopped (exit code {code}); "
                  "auditing inline from here on")
        if self.worker is not None:
            try:
                self.worker.finish(timeout=5)
            except Exception:  # noqa: BLE001 - it is gone either way
                pass
        self.worker = None
        self.session = AuditSession(settings, store_path, time_scale=time_scale,
                                    inputs={"captures": ["live"]}, fresh_store=False,
                                    sensor=self.sensor, spool_dir=self.report_dir,
                                    must_connect=False)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None or not self._in_scope(flow) or not self._sink_ready():
            return
        index = len(flow.websocket.messages) - 1
        try:
            observation = observe_websocket_message(flow, index)
            if observation is None:
                return
            if self.worker is not None:
                self._submit(observation)
            elif self.session is not None:
                result = self.session.audit_result(observation)
                if self.policy.enabled:
                    result.record["enforcement"] = self._enforce_message(
                        flow.websocket.messages[index], result)
                self.session.commit(result.record)
        except Exception as e:  # noqa: BLE001
            log.error(f"phonehome: websocket audit failed: {e}")
            if self.policy.enabled and not self.policy.dry_run:
                flow.websocket.messages[index].drop()  # fail closed, as for requests

    def _enforce_message(self, message: Any, result: Any) -> dict[str, Any]:
        """Drop or rewrite a client-to-server message per the policy. Fails closed."""
        auditor = self.session.auditor if self.session else None
        try:
            if result.record.get("audit_error") and not self.policy.dry_run:
                raise RuntimeError(f"audit failed in {result.record['audit_error']['stage']}")
            plan = plan_enforcement(self.policy, result.observation,
                                    result.payload, result.classification, result.findings)
            return apply_message_enforcement(
                message, result.observation, plan, result.payload, result.findings,
                recheck=auditor.detector.detect if auditor else None,
                limits=auditor.settings.limits if auditor else None)
        except Exception as e:  # noqa: BLE001
            message.drop()
            return {"action": "blocked", "dry_run": False, "changed": [],
                    "reason": f"fail-closed: {e}; message dropped"[:300]}

    def done(self) -> None:
        if self._finished or (self.session is None and self.worker is None):
            return
        self._finished = True
        for task in self._tasks:
            task.cancel()
        if self._listener is not None:
            self._listener.stop()
        console = _console(sys.stdout)
        try:
            if self.worker is not None:
                self.worker.finish()
                report = report_from_store(
                    self.worker.store_path,
                    selection=sensor_selection(self.worker.store_path, self.sensor))
            else:
                assert self.session is not None
                for flow_id in list(self._pending):
                    self.session.commit(self._pending.pop(flow_id))
                report = self.session.finish()
            written = write_report(report, self.report_dir, self.formats)
        except Exception as e:  # noqa: BLE001 - report what we can, never crash mitmdump
            console.print(f"phonehome: could not write the report: {e}")
            return
        console.print(format_summary(report))
        console.print("phonehome: reports written to " + ", ".join(str(p) for p in written))
