"""`phonehome audit --jobs N`: the per-flow stages on N worker processes.

The main process reads captures, keeps the markers and time scale, and writes
the store in capture order; workers each load their own Auditor once and
audit observations sent in chunks. Results come back in order, so a parallel
audit's report equals a serial one's.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from typing import Any

from ..model import Observation
from .pipeline import Auditor, AuditSettings

__all__ = ["audit_in_parallel"]

_auditor: Auditor | None = None


def _start_worker(settings: AuditSettings) -> None:
    global _auditor  # one Auditor per worker process, built once
    _auditor = Auditor(settings)


def _audit(observation: Observation) -> dict[str, Any]:
    assert _auditor is not None
    return _auditor.audit(observation)


def audit_in_parallel(
    settings: AuditSettings, observations: Iterable[Observation], jobs: int,
    batch: int = 256,
) -> Iterator[dict[str, Any]]:
    """Flow records for `observations`, in order, audited on `jobs` processes.

    `observations` is consumed in the caller's thread (it may write markers to
    the store); one batch is audited while the next is read.
    """
    context = multiprocessing.get_context("spawn")
    chunksize = max(1, batch // (4 * jobs))
    with context.Pool(jobs, initializer=_start_worker, initargs=(settings,)) as pool:
        in_flight = None
        for chunk in _batches(observations, batch):
            started = pool.map_async(_audit, chunk, chunksize)
            if in_flight is not None:
                yield from in_flight.get()
            in_flight = started
        if in_flight is not None:
            yield from in_flight.get()


def _batches(observations: Iterable[Observation], size: int) -> Iterator[list[Observation]]:
    chunk: list[Observation] = []
    for observation in observations:
        chunk.append(observation)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
