"""`phonehome audit`'s per-flow work, inline or on worker processes. With workers the
main process only frames the capture and stores what comes back; each worker parses,
observes, audits and encodes its flows, so reading and storing never wait on the
audit. Results come back in capture order: the report equals a serial one's.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, NamedTuple

from ..capture.files import Frame
from ..capture.mitm_reader import flow_from_frame
from ..capture.observe import observe_saved_flow
from ..model import Observation
from .pipeline import Audited, Auditor, AuditSettings

__all__ = ["Job", "Done", "audit_job", "audited", "AuditPool", "InlinePool", "WorkerPool"]


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
    _auditor = Auditor(settings)
    gc.freeze()  # the compiled rules and detectors live on: collections pass them over


def _audit_chunk(chunk: list[Job]) -> list[Done]:
    assert _auditor is not None
    return [audit_job(_auditor, job) for job in chunk]


class WorkerPool(AuditPool):
    """`workers` processes; at most `ahead` chunks of `chunk` jobs in flight, so the
    capture is read only a little ahead of the audit (memory stays flat)."""

    def __init__(self, settings: AuditSettings, workers: int, chunk: int = 32,
                 ahead: int = 0) -> None:
        context = multiprocessing.get_context("spawn")
        self._pool: Any = context.Pool(workers, initializer=_start_worker,
                                       initargs=(settings,))
        self.chunk = chunk
        self.ahead = ahead or 3 * workers

    def run(self, jobs: Iterable[Job]) -> Iterator[list[tuple[Job, Done]]]:
        jobs = iter(jobs)
        pending: deque[tuple[list[Job], Any]] = deque()
        while True:
            while len(pending) < self.ahead:
                chunk = list(islice(jobs, self.chunk))
                if not chunk:
                    break
                pending.append((chunk, self._pool.apply_async(_audit_chunk, (chunk,))))
            if not pending:
                return
            chunk, result = pending.popleft()
            yield list(zip(chunk, result.get(), strict=True))

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
