"""A flow's decoded payload as a collapsible HTML tree, built in one pass of bounded size.

Containers are nested <details>; a field a finding points at carries the finding;
an item of a batch carries its event (name, trigger, categories). The tree shows
the record's `decoded` as stored, so it is redacted unless the report was revealed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import markupsafe

from ..model import PathPart, severity_rank
from ..terms import key_suffix, parse_location
from .safe_text import visible

__all__ = ["html_text", "payload_tree", "OPEN_DEPTH"]

OPEN_DEPTH = 2
"""Containers this shallow start open; deeper ones open only on the way to a finding."""


def html_text(value: Any) -> Any:
    """The HTML report's one escaping step before autoescape: invisibles show as `\\u202e`.

    Newlines and tabs stay: HTML shows them as spaces, and a <pre> keeps its lines.
    """
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return visible(value, lines=True)
    return value


def _esc(value: Any) -> str:
    return str(markupsafe.escape(html_text("" if value is None else str(value))))


def _scalar(value: Any) -> tuple[str, str]:
    """(css class, JSON text) of a leaf."""
    if isinstance(value, str):
        return "s", json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return "l", json.dumps(value)
    return "n", json.dumps(value, ensure_ascii=False, default=str)


class _Tree:
    def __init__(self, findings: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]],
                 budget: int) -> None:
        self.flagged: dict[tuple[PathPart, ...], list[Mapping[str, Any]]] = {}
        for finding in findings:
            path = parse_location(str(finding.get("location") or ""))
            if path is not None:
                self.flagged.setdefault(path, []).append(finding)
        self.events: dict[tuple[PathPart, ...], list[Mapping[str, Any]]] = {}
        for event in events:
            path = parse_location(str(event.get("location") or "$"))
            if path is not None:
                self.events.setdefault(path, []).append(event)
        self.toward: set[tuple[PathPart, ...]] = {p[:i] for p in self.flagged
                                                  for i in range(len(p))}
        self.budget = budget
        self.used = 0
        self.cut = 0
        self.out: list[str] = []

    def emit(self, text: str) -> None:
        self.used += len(text)
        self.out.append(text)

    def marks(self, path: tuple[PathPart, ...]) -> str:
        parts = []
        for finding in sorted(self.flagged.get(path, ()),
                              key=lambda f: -severity_rank(str(f.get("severity")))):
            reason = finding.get("reason") or ""
            parts.append(
                f' <span class="fnd" data-type="{_esc(finding.get("type"))}">'
                f'<span class="badge sev-{_esc(finding.get("severity"))}">'
                f'{_esc(finding.get("severity"))}</span> {_esc(finding.get("type"))}'
                f'{" · " + _esc(finding.get("encoding")) if finding.get("encoding") else ""}'
                f'{" · " + _esc(reason) if reason else ""}</span>')
        for event in self.events.get(path, ()):
            cats = ", ".join(str(c) for c in event.get("categories") or ())
            trigger = _esc(event.get("trigger") or "unknown")
            parts.append(
                f' <span class="evt" data-event-trigger="{trigger}">'
                f'event <b>{_esc(event.get("name"))}</b> · '
                f'{_esc(event.get("trigger") or "no trigger")}'
                f'{" · " + _esc(cats) if cats else ""}</span>')
        return "".join(parts)

    def node(self, key: str, value: Any, path: tuple[PathPart, ...], location: str) -> None:
        wanted = path in self.flagged or path in self.toward
        if self.used >= self.budget and not wanted:
            self.cut += 1
            return
        label = f'<span class="k">{_esc(key)}</span>' if key else ""
        flag = path in self.flagged
        attrs = f' class="flag" data-loc="{_esc(location)}"' if flag else ""
        if isinstance(value, (dict, list)) and value:
            is_dict = isinstance(value, dict)
            size = f'{{{len(value)}}}' if is_dict else f"[{len(value)}]"
            opened = " open" if len(path) < OPEN_DEPTH or path in self.toward else ""
            if path in self.events:
                attrs += ' data-event="1"' if attrs else ' class="ev"'
            self.emit(f'<li{attrs}><details{opened}><summary>{label} '
                      f'<span class="n">{size}</span>{self.marks(path)}</summary><ul>')
            items = value.items() if is_dict else enumerate(value)
            for k, v in items:
                child = location + (f"[{k}]" if not is_dict else key_suffix(str(k)))
                self.node(str(k), v, path + (k,), child)
            self.emit("</ul></details></li>")
            return
        if isinstance(value, (dict, list)):
            kind, text = "l", "{}" if isinstance(value, dict) else "[]"
        else:
            kind, text = _scalar(value)
        note = ""
        if path in self.toward:  # a JSON string the decoder opened: findings lie inside
            attrs = ' class="inner"'
            inner = sorted({str(f.get("location")) for p, found in self.flagged.items()
                            if p[:len(path)] == path for f in found})
            note = (f' <span class="fnd">{len(inner)} finding{"s" * (len(inner) != 1)} '
                    f'inside: {_esc(", ".join(inner[:5]))}</span>')
        self.emit(f'<li{attrs}>{label}{": " if label else ""}'
                  f'<code class="{kind}">{_esc(text)}</code>{self.marks(path)}{note}</li>')


def payload_tree(decoded: Any, findings: Iterable[Mapping[str, Any]] = (),
                 events: Iterable[Mapping[str, Any]] = (),
                 budget: int = 100_000) -> markupsafe.Markup:
    """`decoded` as nested lists; past `budget` characters only the way to findings is kept."""
    tree = _Tree(findings, events, budget)
    tree.emit('<ul class="tree">')
    if isinstance(decoded, (dict, list)) and decoded:
        tree.node("", decoded, (), "$")
    else:
        tree.node("body", decoded, (), "$")
    if tree.cut:
        tree.emit(f'<li class="cut">… {tree.cut} more item{"s" * (tree.cut != 1)} '
                  "not shown here (audit.json has the payload whole)</li>")
    tree.emit("</ul>")
    return markupsafe.Markup("".join(tree.out))
