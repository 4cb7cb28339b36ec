"""`phonehome audit`'s per-flow work, inline or on worker processes. With workers the
main process only frames the capture and stores what comes back; each worker parses,
observes, audits and encodes its flows, so reading and storing never wait on the
audit. Results come back in capture order: the report equals a serial one's.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import NamedTuple

from ..capture.files import Frame
from ..capture.mitm_reader import flow_from_frame
from ..capture.observe import observe_saved_flow
from ..model import Observation
from .pipeline import Audited, Auditor, AuditSettings

__all__ = ["Job", "Done", "audit_job", "audited", "AuditPool", "InlinePool", "WorkerPool",
           "WorkerDied"]


class WorkerDied(RuntimeError):
    """A worker process was killed (out of memory, a signal to it alone)."""


class Job(NamedTuple):
    """One flow to audit: a frame to read, or observations read already."""

    source: str
    position: int
    """Bytes of the capture read once this flow is."""
    frame: Frame | None = None
    observations: tuple[Observation, ...] = ()
    problem: str | None = None


class Done(NamedTuple):
    """A job's audited flows (for `AuditSession.submit`), and what went wrong."""

    records: tuple[Audited, ...] = ()
    problem: str | None = None
    broken: bool = False
    """The capture breaks at this flow: nothing after it is read."""
    in_order: bool = False
    """A flow of an older format: the main process reads it, in order (`read_flow`)."""


def audit_job(auditor: Auditor, job: Job) -> Done:
    if job.frame is None:
        return Done(audited(auditor, job.observations), job.problem)
    try:
        flow = flow_from_frame(job.frame.data)
    except LookupError:
        return Done(in_order=True)
    except Exception as e:  # noqa: BLE001 - the file breaks here, as the serial reader says
        return Done(problem=job.frame.broken(str(e)), broken=True)
    observations, problem = observe_saved_flow(flow, job.source)
    return Done(audited(auditor, observations), problem)


def audited(auditor: Auditor, observations: Iterable[Observation]) -> tuple[Audited, ...]:
    return tuple(Audited(auditor.audit_encoded(o), tuple(o.markers)) for o in observations)


class AuditPool:
    """Runs jobs and yields them with their results, in order, a chunk at a time."""

    def run(self, jobs: Iterable[Job]) -> Iterator[list[tuple[Job, Done]]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> AuditPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlinePool(AuditPool):
    """Every job in this process, with this process's Auditor."""

    def __init__(self, auditor: Auditor, chunk: int = 64) -> None:
        self.auditor = auditor
        self.chunk = chunk

    def run(self, jobs: Iterable[Job]) -> Iterator[list[tuple[Job, Done]]]:
        jobs = iter(jobs)
        while chunk := list(islice(jobs, self.chunk)):
            yield [(job, audit_job(self.auditor, job)) for job in chunk]


_auditor: Auditor | None = None


def _start_worker(settings: AuditSettings) -> None:
    global _auditor  # one Auditor per worker process, built once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to act on
    _auditor = Auditor(settings)
    gc.freeze()  # the compiled rules and detectors live on: collections pass them over


def _audit_chunk(chunk: list[Job]) -> list[Done]:
    assert _auditor is not None
    return [audit_job(_auditor, job) for job in chunk]


class WorkerPool(AuditPool):
    """`workers` processes; at most `ahead` chunks of `chunk` jobs in flight, so the
    capture is read only a little ahead of the audit (memory stays flat).

    A process pool executor, not `multiprocessing.Pool`: a worker killed by a signal
    sent to the whole group could die holding the Pool's queue lock, and
    `Pool.terminate()` then waits on that lock forever. The executor's workers share
    no lock with the main process, and `close` kills them outright."""

    def __init__(self, settings: AuditSettings, workers: int, chunk: int = 32,
                 ahead: int = 0) -> None:
        self._executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(settings,))
        self.chunk = chunk
        self.ahead = ahead or 3 * workers

    def run(self, jobs: Iterable[Job]) -> Iterator[list[tuple[Job, Done]]]:
        jobs = iter(jobs)
        pending: deque[tuple[list[Job], Future[list[Done]]]] = deque()
        while True:
            while len(pending) < self.ahead:
                chunk = list(islice(jobs, self.chunk))
                if not chunk:
                    break
                pending.append((chunk, self._executor.submit(_audit_chunk, chunk)))
            if not pending:
                return
            chunk, result = pending.popleft()
            try:
                done = result.result()
            except BrokenProcessPool as e:
                raise WorkerDied(f"an audit worker process stopped ({e})") from e
            yield list(zip(chunk, done, strict=True))

    def close(self) -> None:
        """Stop at once: queued chunks are dropped and the workers killed.

        A worker killed halfway through sending a result would leave the executor's
        manager thread waiting for the rest, and the interpreter joins that thread on
        exit: closing the results' pipe ends the wait, and the thread is joined here,
        so its clean-up is over before the interpreter's own begins."""
        executor = self._executor
        processes = list((getattr(executor, "_processes", None) or {}).values())
        results = getattr(executor, "_result_queue", None)
        manager = getattr(executor, "_executor_manager_thread", None)
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=10)
        writer = getattr(results, "_writer", None)
        if writer is not None:
            writer.close()
        if manager is not None:
            manager.join(timeout=10)
