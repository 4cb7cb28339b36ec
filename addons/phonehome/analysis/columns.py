"""Per-flow values held by position in a few bytes each, so that what the analysis keeps
of every flow between its passes over the store does not grow with the flows' objects:
ids spilled to a temporary file, repeated values as indexes into a table of distinct ones.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar, overload

__all__ = ["FlowIds", "IdList", "Interned", "Lookup"]

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
            if index < 0:
                raise IndexError("flow id index out of range")
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


class Lookup(Sequence[Any]):
    """`read(key)` for each of `keys`, made when read: per-flow values kept as small keys
    (positions, indexes into a table) and built only when a report writes them."""

    def __init__(self, keys: Sequence[Any], read: Callable[[Any], Any]) -> None:
        self.keys = keys
        self._read = read

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._read(key) for key in self.keys[index]]
        return self._read(self.keys[index])

    def __iter__(self) -> Iterator[Any]:
        return map(self._read, self.keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class IdList(Lookup):
    """The ids of some flows, named by position."""

    def __init__(self, positions: Sequence[int], ids: Sequence[str]) -> None:
        super().__init__(positions, ids.__getitem__)


class Interned(Lookup, Generic[T]):
    """Values by position, each stored once: a 4-byte index per position."""

    def __init__(self) -> None:
        self.values: list[T] = []
        self._index: dict[T, int] = {}
        self.indexes = array("I")
        super().__init__(self.indexes, self.values.__getitem__)

    def index_of(self, value: T) -> int:
        """`value`'s index in `values`, added when new."""
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self.values)
            self.values.append(value)
        return index

    def append(self, value: T) -> None:
        self.indexes.append(self.index_of(value))

    def holds(self, value: T) -> bool:
        return value in self._index
