"""Per-flow values held by position in a few bytes each, so that what the analysis keeps
of every flow between its passes over the store does not grow with the flows' objects:
ids spilled to a temporary file, repeated values as indexes into a table of distinct ones.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from collections.abc import Hashable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar, overload

__all__ = ["FlowIds", "IdList", "Interned", "Mapped"]

T = TypeVar("T", bound=Hashable)


class FlowIds(Sequence[str]):
    """Strings by position, spilled as UTF-8 to an unnamed temporary file: 8 bytes of
    memory each (where it ends). `close()` (or collection) drops the file."""

    _SPILL = 1 << 16

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._spilled = 0
        self._pending = bytearray()
        self._ends = array("Q")
        self._block_start = 0
        self._block = b""
        """The last part of the file read: ids are mostly read in order."""

    def append(self, value: str) -> None:
        self._pending += value.encode("utf-8", "surrogatepass")
        self._ends.append(self._spilled + len(self._pending))
        if len(self._pending) >= self._SPILL:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="phonehome-ids-")
                weakref.finalize(self, self._file.close)
            self._file.seek(0, os.SEEK_END)  # reads move the position
            self._file.write(self._pending)
            self._spilled += len(self._pending)
            self._pending.clear()

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._ends)
        end = self._ends[index]  # IndexError past the end
        start = self._ends[index - 1] if index else 0
        if start >= self._spilled:
            data = self._pending[start - self._spilled:end - self._spilled]
        else:
            if not self._block_start <= start < end <= self._block_start + len(self._block):
                assert self._file is not None
                self._file.seek(start)
                self._block_start, self._block = start, self._file.read(
                    max(end - start, self._SPILL))
            offset = start - self._block_start
            data = self._block[offset:offset + end - start]
        return data.decode("utf-8", "surrogatepass")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class IdList(Sequence[str]):
    """The ids of some flows, named by position: a report list built only when written."""

    def __init__(self, positions: Sequence[int], ids: Sequence[str]) -> None:
        self.positions = positions
        self._ids = ids

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._ids[p] for p in self.positions[index]]
        return self._ids[self.positions[index]]

    def __iter__(self) -> Iterator[str]:
        return (self._ids[p] for p in self.positions)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"IdList({list(self)!r})"


class Interned(Sequence[T], Generic[T]):
    """Values by position, each stored once: a 4-byte index per position."""

    def __init__(self) -> None:
        self.values: list[T] = []
        self._index: dict[T, int] = {}
        self.indexes = array("I")

    def index_of(self, value: T) -> int:
        """`value`'s index in `values`, added when new."""
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self.values)
            self.values.append(value)
        return index

    def append(self, value: T) -> None:
        self.indexes.append(self.index_of(value))

    def __len__(self) -> int:
        return len(self.indexes)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.values[i] for i in self.indexes[index]]
        return self.values[self.indexes[index]]


class Mapped(Sequence[Any]):
    """`function(item)` for each of `items`, made when read: a report section kept as
    its compact values (the markers as tuples, not as their dicts)."""

    def __init__(self, items: Sequence[Any], function: Any) -> None:
        self._items = items
        self._function = function

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._function(item) for item in self._items[index]]
        return self._function(self._items[index])

    def __iter__(self) -> Iterator[Any]:
        return map(self._function, self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Mapped({list(self)!r})"
