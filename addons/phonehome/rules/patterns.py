"""Name patterns: globs and regexes, compiled once with RE2 (linear time)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import re2

__all__ = [
    "compile_regex", "glob_to_regex", "globs_body", "compile_globs", "compile_set", "Matcher",
]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are reported by us, with the pack's line number

Matcher = Any
"""A compiled RE2 pattern (`re2._Regexp`), behind `_Utf8Safe`."""


def _utf8(text: Any) -> Any:
    """RE2 reads UTF-8; a byte the app sent that is not UTF-8 (kept by mitmproxy as a
    lone surrogate) becomes U+FFFD, so captured text can never make a match raise."""
    if type(text) is not str or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


class _Utf8Safe:
    """A compiled RE2 regex or set that takes any str."""

    __slots__ = ("_compiled",)

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def search(self, text: Any, *args: Any) -> Any:
        return self._compiled.search(_utf8(text), *args)

    def match(self, text: Any, *args: Any) -> Any:
        return self._compiled.match(_utf8(text), *args)

    def fullmatch(self, text: Any, *args: Any) -> Any:
        return self._compiled.fullmatch(_utf8(text), *args)

    def Match(self, text: Any) -> Any:  # noqa: N802 - re2.Set's name
        return self._compiled.Match(_utf8(text))

    def __getattr__(self, name: str) -> Any:
        if name == "_compiled":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._compiled, name)


def compile_regex(pattern: str | bytes) -> Matcher:
    """Compile with RE2. Raises ValueError with a readable reason.

    RE2 has no backtracking, so no pattern can take more than linear time;
    constructs that need backtracking (backreferences, lookaround) are refused.
    """
    try:
        return _Utf8Safe(re2.compile(pattern, _OPTIONS))
    except re2.error as e:
        reason = e.args[0] if e.args else str(e)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        shown = pattern.decode("utf-8", "replace") if isinstance(pattern, bytes) else pattern
        raise ValueError(
            f"regex {shown!r} is not supported by the linear-time RE2 engine: {reason} "
            "(backreferences and lookaround are not allowed)"
        ) from None


def glob_to_regex(glob: str) -> str:
    """`client.share.*` → an anchored regex body: `*` is any run, `?` one char."""
    out: list[str] = []
    for char in glob:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re2.escape(char))
    return "".join(out)


def globs_body(globs: Iterable[str]) -> str:
    """The unanchored, case-insensitive regex for a set of globs."""
    body = "|".join(f"(?:{glob_to_regex(g)})" for g in globs)
    return f"(?is)(?:{body})"


def compile_globs(globs: Iterable[str]) -> Matcher:
    """One case-insensitive full-match regex for a set of globs."""
    return compile_regex(f"^{globs_body(globs)}$")


def compile_set(bodies: list[str], *, anchored: bool) -> Any:
    """An RE2 set: one call tells which of many patterns match.

    `anchored` sets match the whole text (globs); others search (regexes).
    """
    regex_set = re2.Set.FullMatchSet(_OPTIONS) if anchored else re2.Set.SearchSet(_OPTIONS)
    for body in bodies:
        if regex_set.Add(body) < 0:  # pragma: no cover - every body compiled alone first
            raise ValueError(f"cannot add {body!r} to an RE2 set")
    regex_set.Compile()
    return _Utf8Safe(regex_set)
