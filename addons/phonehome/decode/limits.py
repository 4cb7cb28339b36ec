"""Decode limits and the per-call bookkeeping every decoder writes to."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Leaf

__all__ = ["DecodeLimits", "Context", "LeafLimit", "size_words", "RECURSION_CAP"]

# Python recursion stays far below the interpreter's limit whatever max_depth says:
# the walker and the protobuf parser recurse once per nesting level.
RECURSION_CAP = 400
_MAX_NOTES = 50


@dataclass(frozen=True)
class DecodeLimits:
    """Hard bounds on the work done for one request."""

    max_decompressed_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_leaves: int = 20_000
    max_nested: int = 3
    """Layers of JSON / base64-JSON decoded inside string fields."""
    max_text_leaf: int = 64 * 1024
    """Longest string kept in a leaf; longer ones are cut (and noted)."""


class LeafLimit(Exception):
    """Raised by the walker when max_leaves is reached; unwinds the walk."""


def size_words(n: int) -> str:
    """16777216 -> "16 MiB"; sizes that are not whole KiB/MiB stay in bytes."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


class Context:
    """Mutable state of one decode() call: leaves, limits hit and notes.

    One instance per call and never shared, so decode() stays re-entrant.
    """

    __slots__ = ("limits", "leaves", "truncated", "notes", "max_depth", "opaque")

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.leaves: list[Leaf] = []
        self.truncated: list[str] = []
        self.notes: list[str] = []
        self.max_depth = max(0, min(limits.max_depth, RECURSION_CAP))
        self.opaque: str | None = None

    def unreadable(self, reason: str) -> None:
        """The body, or part of it, cannot be read: the payload is opaque (first reason)."""
        if self.opaque is None:
            self.opaque = reason

    def truncate(self, message: str) -> None:
        """Record a limit that was hit (once per distinct message)."""
        if message not in self.truncated and len(self.truncated) < _MAX_NOTES:
            self.truncated.append(message)

    def note(self, message: str) -> None:
        """Record a recoverable problem (once per distinct message)."""
        if message not in self.notes and len(self.notes) < _MAX_NOTES:
            self.notes.append(message)

    def depth_hit(self) -> None:
        self.truncate(f"nesting deeper than {self.limits.max_depth}")

    def size_hit(self, what: str = "decompressed size") -> None:
        self.truncate(f"{what} over {size_words(self.limits.max_decompressed_bytes)}")
