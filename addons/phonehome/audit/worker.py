"""The audit in a child process, so the proxy's event loop only captures.

The child runs the same `AuditSession` (audit, store, live line) on the other core,
at a lower priority. Enforce mode cannot use it: it must decide before a request leaves.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..model import Observation
from .pipeline import AuditSettings
from .store import StoreTarget

__all__ = ["AuditWorker", "GROUP_SIGNALS", "WorkerError"]

_STOP = "stop"
_OBSERVATION = "observation"
_MARK = "mark"


GROUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, name))
"""Signals a terminal or a service manager sends to the whole process group."""


class WorkerError(RuntimeError):
    """The worker process failed or did not finish in time."""


WORKER_NICENESS = 10
"""How much lower the audit's CPU priority is than the proxy's. The traffic
comes first: on a busy machine the audit takes the CPU the proxy leaves, and
catches up when the traffic calms (measured in bench/RESULTS.md)."""


def _yield_to_the_proxy() -> None:
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform: run at the same priority
        pass


def _worker_main(settings: AuditSettings, store_path: StoreTarget, inputs: Mapping[str, Any],
                 time_scale: float, quiet: bool, fresh: bool, inbox: Any,
                 sensor: str | None = None, spool_dir: Path | None = None,
                 total_interval: float = 0.0, outbox: Any = None) -> None:
    # The proxy decides when we stop: Ctrl-C, SIGTERM and SIGHUP reach the whole
    # process group, and the proxy then asks us to finish the store.
    for signum in GROUP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # inherited already; made explicit
    _yield_to_the_proxy()
    from ..flow_view import flow_note
    from ..report.terminal import LiveView
    from .session import AuditSession

    if outbox is not None:
        outbox.cancel_join_thread()  # notes unread at the end must not hold up the exit

    live = None
    if not quiet:
        from rich.console import Console

        live = LiveView(Console(file=sys.stdout, soft_wrap=True, highlight=False),
                        total_interval)
    parent = os.getppid()
    session = AuditSession(settings, store_path, inputs=inputs, time_scale=time_scale,
                           fresh_store=fresh, sensor=sensor, spool_dir=spool_dir,
                           must_connect=False)  # the proxy checked it; it may be away now
    try:
        while True:
            try:
                item = inbox.get(timeout=0.1)
            except queue.Empty:
                session.tick()
                if live is not None:
                    live.tick()
                if os.getppid() != parent:  # the proxy died: keep what we have
                    return
                continue
            kind = item[0]
            if kind == _STOP:
                return
            if kind == _MARK:
                session.mark(item[1], item[2])
            elif kind == _OBSERVATION:
                record = session.submit(item[1], item[2])
                if outbox is not None:
                    outbox.put(flow_note(record))
                if live is not None:
                    live.show(record)
    finally:
        session.close()


class AuditWorker:
    """`submit()` observations and `mark()` moments; `finish()` waits for the store.
    With `notes`, each audited flow's `FlowNote` comes back through `notes()`."""

    def __init__(self, settings: AuditSettings, store_path: StoreTarget, *,
                 inputs: Mapping[str, Any] | None = None, time_scale: float = 1.0,
                 quiet: bool = False, fresh: bool = True, sensor: str | None = None,
                 spool_dir: Path | None = None, total_interval: float = 0.0,
                 notes: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self._inbox = context.Queue()
        self._outbox = context.Queue() if notes else None
        self.store_path = store_path
        self._process = context.Process(
            target=_worker_main,
            args=(settings, store_path, dict(inputs or {}), time_scale, quiet, fresh,
                  self._inbox, sensor, spool_dir, total_interval, self._outbox),
            name="phonehome-audit", daemon=True,
        )

    def start(self) -> AuditWorker:
        """Start the child: it ignores the group signals from birth (the proxy stops
        it), and does not re-run the parent's main script (mitmdump's) as spawn would."""
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        in_main_thread = threading.current_thread() is threading.main_thread()
        # (a handler set outside Python reads as None and could not be put back)
        previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in GROUP_SIGNALS
                    if in_main_thread and signal.getsignal(signum) is not None}
        try:
            self._process.start()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            sys.modules["__main__"] = main
        return self

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def submit(self, observation: Observation, record: dict[str, Any] | None = None) -> None:
        """`record` when the flow was audited already, else the worker audits it."""
        self._inbox.put((_OBSERVATION, observation, record))

    def mark(self, label: str, timestamp: float) -> None:
        self._inbox.put((_MARK, label, timestamp))

    def notes(self, limit: int = 10_000) -> list[Any]:
        """The flow notes the child has sent so far (at most `limit`), without waiting."""
        found: list[Any] = []
        while self._outbox is not None and len(found) < limit:
            try:
                found.append(self._outbox.get_nowait())
            except (queue.Empty, OSError, ValueError):  # empty, or closed at the end
                break
        return found

    def finish(self, timeout: float = 300.0) -> None:
        """Audit what is queued, close the store, and stop."""
        if self._process.is_alive():
            self._inbox.put((_STOP,))
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
            raise WorkerError(f"the audit worker did not finish within {timeout:.0f}s")
        self._inbox.close()
        self._inbox.join_thread()
        if self._process.exitcode not in (0, None):
            raise WorkerError(f"the audit worker exited with code {self._process.exitcode}")
