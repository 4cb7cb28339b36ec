"""The Markdown report, for pasting into tickets: a Jinja2 template over the report dict.

Every value goes through `md_escape` (the environment's `finalize`), so a hostile
URL, key or event name cannot open a link, an image, an HTML tag or a table cell
of its own, and invisible characters show. `code` spans only plain text.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from .document import ROWS_SHOWN, Document, as_document
from .jinja_env import template_environment
from .safe_text import visible
from .view import max_severity

__all__ = ["digest_spread", "format_markdown", "markdown_environment", "md_escape"]

DESTINATIONS_SHOWN = 6
"""Destinations shown per digest item; audit.json has them all."""


class _Raw(str):
    """Text that is already Markdown and must not be escaped again."""


_SPECIAL = re.compile(
    r"[\\`*\[\]|~#$@]"  # inline syntax, table cells, math, mentions and e-mail autolinks
    r"|(?<!\w)_|_(?!\w)"  # emphasis (GFM ignores "_" inside words)
    r"|:(?=/)"  # scheme://, the start of an autolink
    r"|\.(?=[^\W\d_])"  # a dot before a letter: a domain name, which linkifiers pick up
)
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_CODE_PLAIN = re.compile(r"[^`|<>&\\]+")


def md_escape(value: Any) -> str:
    """One-line, inert Markdown text for a table cell or a paragraph."""
    if isinstance(value, _Raw):
        return value
    text = visible(value).translate(_HTML)
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def _code(value: Any) -> _Raw:
    """A code span for plain text; anything else is escaped like all text."""
    text = visible(value)
    if not text:
        return _Raw("")
    return _Raw(f"`{text}`") if _CODE_PLAIN.fullmatch(text) else _Raw(md_escape(text))


def _codes(values: Any, limit: int = 6) -> _Raw:
    items = list(values or ())
    shown = ", ".join(_code(v) for v in items[:limit])
    if len(items) > limit:
        shown += f" +{len(items) - limit}"
    return _Raw(shown)


def _ids(values: Any, limit: int = 10, total: int | None = None) -> _Raw:
    items = [str(v) for v in values or ()]
    total = len(items) if total is None else total
    shown = ", ".join(md_escape(v) for v in items[:limit])
    if total > min(limit, len(items)):
        shown += f" (+{total - min(limit, len(items))} more)"
    return _Raw(shown)


def _counts(values: Mapping[str, int] | None, limit: int = 4) -> _Raw:
    """`sign_in` 6, `setup` 1 …: a name-to-count mapping, most first as given."""
    items = list((values or {}).items())
    shown = ", ".join(f"{_code(name)} {int(n)}" for name, n in items[:limit])
    if len(items) > limit:
        shown += f" +{len(items) - limit}"
    return _Raw(shown)


def digest_spread(digest: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Who received the digest's items: organisations (most items first), the third
    parties among them, and how many hosts have no known organisation."""
    organizations: Counter[str] = Counter()
    third: dict[str, None] = {}
    unnamed: set[str] = set()
    for entry in digest:
        for destination in entry.get("destinations") or ():
            name = destination.get("organization")
            if not name:
                unnamed.add(str(destination.get("host")))
                continue
            organizations[str(name)] += 1
            if destination.get("party") == "third":
                third[str(name)] = None
    return {"organizations": [name for name, _ in organizations.most_common()],
            "third": sorted(third), "unnamed": len(unnamed)}


@functools.cache
def markdown_environment() -> jinja2.Environment:
    """Built once: the loader, filters and escaping finalizer."""
    return template_environment(autoescape=False, finalize=md_escape,
                                keep_trailing_newline=True, code=_code, codes=_codes,
                                ids=_ids, counts=_counts, raw=_Raw)


def format_markdown(report: Mapping[str, Any] | Document) -> str:
    """The report as GitHub-flavoured Markdown of bounded size. Pure."""
    document = as_document(report)
    sections = document.report
    template = markdown_environment().get_template("audit.md.j2")
    text = template.render(
        report=sections,
        digest=document.digest,
        spread=digest_spread(document.digest),
        destinations_shown=DESTINATIONS_SHOWN,
        claims=list(sections.get("claims") or ()),
        summary=sections.get("summary") or {},
        inputs=sections.get("inputs") or {},
        groups=document.groups,
        finding_count=document.finding_count,
        endpoints=document.tally.endpoints,
        flows=document.flows,
        flows_left=document.flows_left,
        flow_count=document.flow_count,
        errors=document.tally.errors,
        error_count=document.tally.error_count,
        by_id={f["id"]: f for f in document.flows},
        max_severity=max_severity,
        rows_shown=ROWS_SHOWN,
    )
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
