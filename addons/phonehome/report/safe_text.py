"""Captured text made safe to show: controls, bidi overrides and invisibles become visible.

`visible()` is the core of every output's one escaping function: terminal
(`safe_text`, a rich `Text`, so markup is never parsed), Markdown (`md_escape`),
HTML (the environment's finalize) and CSV (`_cell`). The JSON report keeps values as sent.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text

__all__ = ["INVISIBLE", "safe_text", "visible"]

INVISIBLE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f\xad"  # C0, DEL, C1, soft hyphen
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f"  # zero-width space, joiners, LRM, RLM
    "\u2028-\u202e"  # line and paragraph separators, bidi embeddings and overrides
    "\u2060-\u2064\u2066-\u206f"  # word joiner, invisible operators, bidi isolates
    "\ud800-\udfff"  # lone surrogates (undecodable bytes)
    "\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"  # language tags (invisible ASCII look-alikes)
    "]"
)
"""Unicode Cc, Cf, Zl, Zp and Cs: characters that control a terminal or show as nothing."""

_SPACE_RUN = re.compile(r"[ \t\n\r\x0b\x0c]+")
_KEEP_LINES = frozenset("\n\t")


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(value: Any, *, lines: bool = False) -> str:
    """`value` as text with every invisible or control character written as `\\x1b`, `\\u202e`.

    One line by default: runs of ASCII whitespace become one space, the ends are
    stripped. With `lines`, newlines and tabs stay (a pretty-printed payload).
    """
    text = "" if value is None else str(value)
    if not lines:
        text = _SPACE_RUN.sub(" ", text).strip()
    return INVISIBLE.sub(
        lambda m: m.group(0) if lines and m.group(0) in _KEEP_LINES else _escape(m.group(0)),
        text,
    )


def safe_text(value: Any, style: str = "", *, limit: int | None = None) -> Text:
    """Captured text for the terminal: visible characters only, never read as markup.

    `limit` cuts the text before escaping, so a cut never splits an escape.
    """
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return Text(visible(text), style=style)
