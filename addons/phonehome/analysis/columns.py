"""Per-flow values held by position in a few bytes each, so that what the analysis keeps
of every flow between its passes over the store does not grow with the flows' objects:
ids packed into one buffer, repeated values as indexes into a table of distinct ones.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

__all__ = ["FlowIds", "IdList", "Interned"]

T = TypeVar("T", bound=Hashable)


class FlowIds(Sequence[str]):
    """Strings by position, packed as UTF-8 in one buffer (about their length each)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")

    def append(self, value: str) -> None:
        self._data += value.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._data))

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
        return self._data[start:end].decode("utf-8", "surrogatepass")


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
