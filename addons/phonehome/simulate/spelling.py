"""Event names as another build of the app might spell them.

Other builds send `client.exit.app` as `ClientExitApp` or `client_exit_app`; `respeller`
makes such sessions, to measure what the audit does with names no glob was written for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

__all__ = ["STYLES", "respell", "respeller"]

STYLES = ("snake", "camel", "pascal", "kebab", "desktop")
"""snake `client_exit_app`, camel `clientExitApp`, pascal `ClientExitApp`,
kebab `client-exit-app`, desktop `desktop.exit.app` (another product prefix)."""

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def respell(name: str, style: str) -> str:
    """`name` in `style` (one of STYLES); the words stay the same."""
    words = [w.lower() for w in _WORDS.findall(name)]
    if not words:
        return name
    if style == "snake":
        return "_".join(words)
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "kebab":
        return "-".join(words)
    if style == "desktop":
        rest = words[1:] if words[0] in ("client", "js", "webex") else words
        return ".".join(["desktop", *rest])
    raise ValueError(f"unknown spelling style {style!r}: use one of {', '.join(STYLES)}")


def respeller(seed: int, fraction: float) -> Callable[[str], str]:
    """Respells about `fraction` of the event names, each always the same way.

    The choice hangs on the seed and the name only, so one session spells
    each event consistently, as a real build would.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")

    def spell(name: str) -> str:
        digest = hashlib.sha256(f"phonehome-respell:{seed}:{name}".encode()).digest()
        if digest[0] / 256 >= fraction:
            return name
        return respell(name, STYLES[digest[1] % len(STYLES)])

    return spell
