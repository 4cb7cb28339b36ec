"""The CLI's exit codes, in one place."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    """A check ran and did not pass (e.g. a rule's embedded test)."""
    USAGE = 2
    """Bad input or usage: a missing file, a broken rule pack, a bad option."""
    FAIL_ON = 3
    """`--fail-on SEVERITY` was met."""
