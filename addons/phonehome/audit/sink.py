"""Where the live addon's flows go: audited in the proxy process, or in a child process.

Both sinks take the same four calls, so the addon's hooks do not care which one runs.
The worker sink keeps a dead child from losing flows: it audits in this process from
then on, into the same store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..flow_view import FlowNote, flow_note
from ..model import Observation
from .pipeline import Auditor, AuditSettings
from .session import AuditSession
from .store import StoreTarget
from .worker import AuditWorker

__all__ = ["AuditSink", "InlineSink", "WorkerSink"]

log = logging.getLogger(__name__)

_LIVE_INPUTS = {"captures": ["live"]}


class AuditSink(Protocol):
    store_path: StoreTarget

    @property
    def fresh(self) -> bool:
        """True until the sink has opened its store (and emptied it, being the first)."""

    def submit(self, observation: Observation, record: dict[str, Any] | None = None) -> None:
        """Store one flow: `record` when it was audited already, else its audit."""

    def mark(self, label: str, timestamp: float) -> None:
        """Record an auditor's marker."""

    def tick(self) -> None:
        """Called every 0.1 s: commit what is due (the worker sink starts its child)."""

    def finish(self) -> bool:
        """Store what is pending and close; False when no store was ever opened."""


class InlineSink:
    """Audits and stores in the proxy process: enforce mode needs each flow's result
    before the flow is forwarded, and `~meta` filters need it in the flow's metadata."""

    fresh = False

    def __init__(self, settings: AuditSettings, store_path: StoreTarget, auditor: Auditor, *,
                 time_scale: float, fresh: bool, sensor: str, spool_dir: Path,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store_path = store_path
        self.session = AuditSession(settings, store_path, auditor=auditor, time_scale=time_scale,
                                    inputs=_LIVE_INPUTS, fresh_store=fresh, sensor=sensor,
                                    spool_dir=spool_dir, must_connect=False,
                                    on_record=on_record)

    def retune(self, auditor: Auditor, time_scale: float) -> None:
        """New rules or time scale for the same store: the time origin is kept."""
        self.session.auditor = auditor
        self.session.time_scale = time_scale

    def submit(self, observation: Observation, record: dict[str, Any] | None = None) -> None:
        self.session.submit(observation, record)

    def mark(self, label: str, timestamp: float) -> None:
        self.session.mark(label, timestamp)

    def tick(self) -> None:
        self.session.tick()

    def finish(self) -> bool:
        self.session.close()
        return True


class WorkerSink:
    """Audits in a child process, started on first use, so the proxy's event loop only
    captures. Should the child die, audits in this process from then on."""

    def __init__(self, settings: AuditSettings, store_path: StoreTarget, *, time_scale: float,
                 fresh: bool, sensor: str, spool_dir: Path, quiet: bool,
                 total_interval: float = 0.0,
                 on_note: Callable[[FlowNote], None] | None = None) -> None:
        self.store_path = store_path
        self._on_note = on_note
        self._settings = settings
        self._time_scale = time_scale
        self._fresh = fresh
        self._sensor = sensor
        self._spool_dir = spool_dir
        self._quiet = quiet
        self._total_interval = total_interval
        self.worker: AuditWorker | None = None
        self.session: AuditSession | None = None
        """The fallback once the worker has died."""

    @property
    def fresh(self) -> bool:
        return self._fresh and self.worker is None and self.session is None

    def _live_worker(self) -> AuditWorker | None:
        """The running child; None once this process audits instead."""
        if self.session is not None:
            return None
        if self.worker is None:
            self.worker = AuditWorker(self._settings, self.store_path, inputs=_LIVE_INPUTS,
                                      time_scale=self._time_scale, quiet=self._quiet,
                                      total_interval=self._total_interval,
                                      fresh=self._fresh, sensor=self._sensor,
                                      spool_dir=self._spool_dir,
                                      notes=self._on_note is not None).start()
        if self.worker.alive:
            return self.worker
        self._fall_back()
        return None

    def _fall_back(self) -> None:
        worker, self.worker = self.worker, None
        code = worker.exitcode if worker is not None else None
        log.error(f"phonehome: the audit worker stopped (exit code {code}); "
                  "auditing inline from here on")
        if worker is not None:
            try:
                worker.finish(timeout=5)
                self._pass_notes(worker)  # those it sent before it stopped
            except Exception:  # noqa: BLE001 - it is gone either way
                pass
        on_note = self._on_note
        self.session = AuditSession(
            self._settings, self.store_path, time_scale=self._time_scale, inputs=_LIVE_INPUTS,
            fresh_store=False, sensor=self._sensor, spool_dir=self._spool_dir,
            must_connect=False,
            on_record=None if on_note is None else (lambda record: on_note(flow_note(record))))

    def submit(self, observation: Observation, record: dict[str, Any] | None = None) -> None:
        worker = self._live_worker()
        if worker is not None:
            try:
                worker.submit(observation, record)
                return
            except Exception as e:  # noqa: BLE001 - never lose the flow
                log.error(f"phonehome: cannot hand flow {observation.id} to the audit: {e}")
                self._fall_back()
        assert self.session is not None
        self.session.submit(observation, record)

    def mark(self, label: str, timestamp: float) -> None:
        worker = self._live_worker()
        if worker is not None:
            worker.mark(label, timestamp)
        elif self.session is not None:
            self.session.mark(label, timestamp)

    def tick(self) -> None:
        worker = self._live_worker()
        if worker is not None:
            self._pass_notes(worker)  # the worker commits on its own
        elif self.session is not None:
            self.session.tick()

    def _pass_notes(self, worker: AuditWorker) -> None:
        if self._on_note is not None:
            for note in worker.notes():
                self._on_note(note)

    def finish(self) -> bool:
        if self.session is not None:
            self.session.close()
            return True
        if self.worker is None:
            return False
        self.worker.finish()
        self._pass_notes(self.worker)
        return True
