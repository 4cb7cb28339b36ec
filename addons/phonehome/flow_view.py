"""One flow's audit for a person inside mitmproxy: a one-line note and a readable view.

Pure functions over a flow record (the report's `flows[]` item, redacted as the reports
are): `flow_note` gives the comment and whether to mark the flow; `view_lines` lays out
the payload with each field's categories and findings inline, YAML-like.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .model import Classification, Payload, most_severe, severity_rank
from .report.safe_text import visible
from .terms import format_location

__all__ = ["Annotations", "FlowNote", "HIGH_MARK", "Line", "annotate", "flow_note",
           "view_lines", "view_text"]

HIGH_MARK = ":red_circle:"
"""How a flow with a high finding is marked (`~marked` finds them)."""

_NOTE_LIMIT = 200
_VALUE_LIMIT = 120
_MAX_LINES = 5000

Line = list[tuple[str, str]]
"""(style, text) pieces of one line; the styles are mitmproxy's content-view styles."""


class FlowNote(NamedTuple):
    """What the addon writes on a flow once it is audited."""

    id: str
    comment: str
    high: bool
    meta: dict[str, Any]
    """For `flow.metadata["phonehome"]`, where `~meta` filters read it."""
    message: bool = False
    """The audit of one of the flow's WebSocket messages, not of its request."""


def _shown(value: Any, limit: int = _VALUE_LIMIT) -> str:
    """The one escaping of untrusted text here: JSON, so that a newline in a key or
    value cannot fake a line of the view, then `visible`, for what JSON leaves raw
    (C1 controls, bidi overrides, zero-width characters)."""
    if not isinstance(value, str):
        return visible(json.dumps(value, ensure_ascii=False)[:limit], lines=True)
    if len(value) > limit:
        value = value[:limit - 1] + "…"
    return visible(json.dumps(value, ensure_ascii=False), lines=True)


def _plain(value: Any, limit: int = _VALUE_LIMIT) -> str:
    """`_shown` without the quotes, for names and places."""
    return _shown(str(value), limit)[1:-1]


def _party(record: Mapping[str, Any]) -> str:
    org = record.get("organization")
    party = f"{record.get('party') or 'unknown'} party"
    return f"{_plain(org)} ({party})" if org else party


def _finding_counts(findings: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """(type, highest severity, count), most severe first."""
    by_type: dict[str, list[str]] = {}
    for f in findings:
        by_type.setdefault(str(f["type"]), []).append(str(f["severity"]))
    rows = [(t, most_severe(s) or "info", len(s)) for t, s in by_type.items()]
    return sorted(rows, key=lambda r: (-severity_rank(r[1]), -r[2], r[0]))


def flow_note(record: Mapping[str, Any]) -> FlowNote:
    """The flow's comment, e.g. `phonehome: telemetry → Amplitude (third party) · app_start
    · high: identity_match×2, email`, and whether it carries a high finding."""
    findings = record.get("findings") or ()
    parts = [f"phonehome: {record.get('purpose') or 'unknown'} → {_party(record)}",
             str(record.get("trigger") or "unknown")]
    counts = _finding_counts(findings)
    if counts:
        worst = counts[0][1]
        parts.append(f"{worst}: " + ", ".join(
            t if n == 1 else f"{t}×{n}" for t, _, n in counts))
    else:
        parts.append("no findings")
    if record.get("audit_error"):
        parts.append(f"audit error in {record['audit_error'].get('stage')}")
    comment = " · ".join(parts)
    if len(comment) > _NOTE_LIMIT:
        comment = comment[:_NOTE_LIMIT - 1] + "…"
    high = any(f.get("severity") == "high" for f in findings)
    meta = {"trigger": record.get("trigger"), "purpose": record.get("purpose"),
            "party": record.get("party"), "rule_ids": list(record.get("rule_ids") or ()),
            "findings": sorted({str(f["type"]) for f in findings})}
    return FlowNote(str(record.get("id")), comment, high, meta,
                    message=record.get("kind") == "websocket")


class Annotations(NamedTuple):
    """What the rules say about places in the body, by location."""

    categories: Mapping[str, tuple[str, ...]]
    """The data categories the matched rules' `fields` give a leaf."""
    events: Mapping[str, tuple[str, ...]]
    """Where each event of a batch sits: its name, trigger and categories."""


def annotate(rules: Any, classification: Classification, payload: Payload | None) -> Annotations:
    """The matched rules' view of the body: each event's place, each field's categories.

    Only exact field paths (and key or header names) count, read from each event of the
    rule that matched: what the rule engine adds to the flow's categories, per field."""
    from .rules.compile import name_test
    from .rules.evaluate import prefix_depths

    events: dict[str, list[str]] = {}
    for event in classification.events:
        if event.prefix:
            events.setdefault(format_location("body", event.prefix), []).append(
                f"event {_shown(event.name, 60)} · {event.trigger or 'unknown'} · "
                f"{', '.join(event.categories) or 'no categories'}")
    found: dict[str, set[str]] = {}
    by_id = {rule.id: rule for rule in rules.rules if rule.id in classification.rule_ids}
    for event in classification.events if payload is not None else ():
        rule = by_id.get(event.rule_id)
        prefix = tuple(event.prefix)
        for spec in rule.fields if rule is not None else ():
            ref = spec.ref
            for leaf in payload.leaves:
                if ref.kind == "path":
                    steps = ref.path.steps if ref.path is not None else None
                    if (steps is None or leaf.source != "body"
                            or leaf.path[:len(prefix)] != prefix):
                        continue
                    rel = leaf.path[len(prefix):]
                    hit = len(rel) in prefix_depths(steps, rel)
                elif ref.name is None:
                    continue
                elif ref.kind == "key":
                    hit = (leaf.source in ("body", "query") and bool(leaf.key)
                           and leaf.path[:len(prefix)] == prefix
                           and bool(name_test(ref)(leaf.key)))
                else:
                    hit = leaf.source == ref.kind and bool(name_test(ref)(leaf.key))
                if hit:
                    found.setdefault(leaf.location, set()).update(spec.categories)
    return Annotations({loc: tuple(sorted(cats)) for loc, cats in found.items()},
                       {loc: tuple(labels) for loc, labels in events.items()})


def _finding_text(f: Mapping[str, Any], evidence: bool) -> str:
    encoding = f.get("encoding")
    how = f" ({encoding})" if encoding and encoding != "plain" else ""
    shown = f" · {_shown(f.get('evidence') or '', 60)}" if evidence else ""
    return f"⚑ {f['type']}{how} · {f['category']} · {f['severity']}{shown}"


def _style(finding: Mapping[str, Any]) -> str:
    return "error" if finding["severity"] == "high" else "highlight"


class _Layout:
    """Lines of the view, bounded; remembers which findings sat beside a field."""

    def __init__(self, findings: list[Mapping[str, Any]], annotations: Annotations) -> None:
        self.lines: list[Line] = []
        self.findings: dict[str, list[Mapping[str, Any]]] = {}
        for f in findings:
            self.findings.setdefault(str(f["location"]), []).append(f)
        self.notes = annotations
        self.shown: set[str] = set()

    def add(self, *pieces: tuple[str, str]) -> None:
        if len(self.lines) < _MAX_LINES:
            self.lines.append(list(pieces))

    def node(self, pad: str, head: Line, location: str, leaf: bool) -> None:
        """One node with its notes: the first beside it, the rest on lines below.
        A leaf also carries the findings of places decoded inside it."""
        notes: list[tuple[str, str]] = [("text", f"# {label}")
                                        for label in self.notes.events.get(location, ())]
        cats = self.notes.categories.get(location)
        if cats:
            notes.append(("text", f"# [{', '.join(cats)}]"))
        for loc in self.findings:
            inside = leaf and loc.startswith(location) and loc[len(location):][:1] in (".", "[")
            if loc == location or inside:
                self.shown.add(loc)
                at = f" at {_plain(loc)}" if inside else ""
                notes.extend((_style(f), f"# {_finding_text(f, bool(inside))}{at}")
                             for f in self.findings[loc])
        first = [("text", "  "), notes[0]] if notes else []
        self.add(*head, *first)
        for style, text in notes[1:]:
            self.add(("text", f"{pad}  "), (style, text))

    def tree(self, node: Any, path: tuple[Any, ...], key: str, indent: int) -> None:
        if len(self.lines) >= _MAX_LINES:  # nothing more would be shown
            return
        pad = "  " * indent
        location = format_location("body", path)
        if isinstance(node, dict) and node:
            self.node(pad, [("Token_Name_Tag", f"{pad}{key}")], location, False)
            for k, v in node.items():
                self.tree(v, (*path, k), f"{_shown(str(k))}:", indent + 1)
        elif isinstance(node, list) and node:
            self.node(pad, [("Token_Name_Tag", f"{pad}{key}")], location, False)
            for i, v in enumerate(node):
                self.tree(v, (*path, i), "-", indent + 1)
        else:
            self.node(pad, [("Token_Name_Tag", f"{pad}{key} "),
                            ("Token_Literal_String", _shown(node))], location, True)


def view_lines(record: Mapping[str, Any], annotations: Annotations | None = None) -> list[Line]:
    """The audit of one flow (or WebSocket message), YAML-like: what it is, its events,
    its findings, then the decoded payload with each field's categories and findings."""
    findings = list(record.get("findings") or ())
    layout = _Layout(findings, annotations or Annotations({}, {}))
    add = layout.add
    redacted = "" if any("value" in f for f in findings) else " (values redacted)"
    add(("header", f"# phonehome audit{redacted}"))
    for name, value in (
            ("purpose", record.get("purpose")), ("party", _party(record)),
            ("host", _plain(record.get("host") or "")),
            ("trigger", f"{record.get('trigger')} (from {record.get('trigger_source')})"),
            ("categories", ", ".join(record.get("categories") or ()) or "none"),
            ("rules", ", ".join(record.get("rule_ids") or ()) or "none")):
        add(("header", f"{name}: "), ("text", str(value)))
    counts = _finding_counts(findings)
    add(("header", "findings: "), ("text", ", ".join(
        f"{t}×{n} ({s})" for t, s, n in counts) or "none"))
    if record.get("audit_error"):
        error = record["audit_error"]
        add(("error", f"audit_error: {error.get('stage')}: {_shown(error.get('reason'))}"))
    events = record.get("events") or ()
    if events:
        add(("header", "events:"))
        for event in events:
            add(("text", f"  - {_shown(event.get('name'))}  "),
                ("text", f"# {event.get('trigger') or 'unknown'}"
                         f" · {', '.join(event.get('categories') or ()) or 'no categories'}"
                         f" · rule {event.get('rule_id')}"))
    decoded = record.get("decoded")
    payload = record.get("payload") or {}
    add(("header", f"payload: # {payload.get('kind', 'none')}, "
                   f"{payload.get('size', 0)} bytes"))
    if isinstance(decoded, dict):
        for key, node in decoded.items():
            layout.tree(node, (key,), f"{_shown(str(key))}:", 1)
    elif isinstance(decoded, list):
        for index, node in enumerate(decoded):
            layout.tree(node, (index,), "-", 1)
    elif decoded is not None:
        layout.node("  ", [("Token_Literal_String", f"  {_shown(decoded, 2000)}")], "$", True)
    elif payload.get("kind") not in (None, "empty"):
        add(("text", "  # not shown: binary, or larger than the record keeps"))
    rest = [loc for loc in layout.findings if loc not in layout.shown]
    if rest:
        add(("header", "elsewhere:"))
        for loc in rest:
            for f in layout.findings[loc]:
                add(("text", f"  {_plain(loc)}  "), (_style(f), f"# {_finding_text(f, True)}"))
    if len(layout.lines) >= _MAX_LINES:
        layout.lines.append([("warn", f"# cut at {_MAX_LINES} lines")])
    return layout.lines


def view_text(lines: Iterable[Line]) -> str:
    return "\n".join("".join(text for _, text in line) for line in lines)
