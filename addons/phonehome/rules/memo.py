"""Bounded memo tables for the engine's per-flow work.

A memo never changes a result, only how soon it is known (see `MemoPool`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

__all__ = ["MemoPool", "DEFAULT_LIMIT", "lookup_all"]

DEFAULT_LIMIT = 100_000
"""Entries over all tables of a pool before they are all emptied."""

V = TypeVar("V")


class MemoPool:
    """Memo tables that share one entry budget and are emptied together.

    A limit of 0 remembers nothing: every look-up works its answer out again
    (the reference the memoized results are tested against).

    Telemetry repeats itself: the same hosts, URLs, leaf paths and event names
    come back flow after flow. The engine remembers what it worked out for each
    (which rules a URL passes, which references a leaf path reaches, which cases an
    event name selects) in plain dicts that all belong to one `MemoPool`. The pool
    counts entries and, past its limit, empties every table at once: memory stays
    bounded, and a forgotten entry is simply worked out again. A memo never
    changes a result, only how soon it is known.
    """

    __slots__ = ("limit", "size", "_tables")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 0:
            raise ValueError("a memo pool's limit cannot be negative")
        self.limit = limit
        self.size = 0
        self._tables: list[dict[Any, Any]] = []

    def table(self) -> dict[Any, Any]:
        """A new empty table counted by this pool."""
        table: dict[Any, Any] = {}
        self._tables.append(table)
        return table

    def added(self, count: int = 1) -> None:
        """Note `count` new entries; empty every table once over the limit."""
        self.size += count
        if self.size > self.limit:
            self.clear()

    def clear(self) -> None:
        for table in self._tables:
            table.clear()
        self.size = 0

    def remember(self, table: dict[Any, V], key: Hashable, value: V) -> V:
        """Store one entry and return the value."""
        table[key] = value
        self.added()
        return value


def lookup_all(pool: MemoPool, table: dict[Any, V], keys: Sequence[Hashable],
               compute: Callable[[list[int]], Sequence[V]]) -> list[V]:
    """The memoized value of every key; the missing ones computed in one batch.

    `compute` gets the positions of the missing keys in ascending order (so it
    can share work between neighbours) and returns one value for each; values
    are never None.
    """
    get = table.get
    values: list[Any] = [get(key) for key in keys]
    if None in values:
        missing = [i for i, value in enumerate(values) if value is None]
        fresh = compute(missing)
        for i, value in zip(missing, fresh, strict=True):
            values[i] = value
            table[keys[i]] = value
        pool.added(len(missing))
    return values
