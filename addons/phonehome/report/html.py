"""The self-contained HTML report: one file, no network, readable with JavaScript off.

Jinja2 (autoescape on) renders everything server-side; the inline script only filters
and searches, and the CSP allows exactly that script and stylesheet (by hash). Every
value goes through `html_text`, so control, bidi and zero-width characters show.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from ..analysis.digest import digest_matcher
from ..model import CATEGORIES, PARTIES, TRIGGERS
from .document import ROWS_SHOWN, Document, as_document
from .html_parts import claim_examples, finding_sections
from .html_tree import html_text, payload_tree
from .jinja_env import TEMPLATES, template_environment
from .view import format_time, max_severity

__all__ = ["format_html", "html_environment", "timeline_model", "TRIGGER_COLORS"]

MAX_DECODED_CHARS = 100_000
"""A flow's pretty-printed payload is cut here (the JSON report has it whole) ..."""
MAX_MARKER_LINES = 200
"""Marker lines drawn on the timeline; the markers table and audit.json list them all."""
DECODED_BUDGET = 2_500_000
"""... and all the payloads of a page share this many characters."""
TREE_BUDGET = 3_000_000
"""Characters of payload-tree markup a page holds; a flow's share is cut to the way to
its findings (the fields a finding points at always show)."""

TRIGGER_COLORS: Mapping[str, str] = {
    "setup": "#6a3d9a",
    "app_start": "#8e6bbf",
    "sign_in": "#1f78b4",
    "meeting_create": "#33a02c",
    "meeting_join": "#2ca25f",
    "in_meeting": "#66c2a4",
    "screen_share": "#ff7f00",
    "collaboration": "#fdbf6f",
    "meeting_leave": "#b15928",
    "periodic": "#a6761d",
    "error": "#e31a1c",
    "shutdown": "#555555",
    "unknown": "#999999",
}
PHASE_COLORS: Mapping[str, str] = {
    "setup": "#efe7f7",
    "sign_in": "#e3eef8",
    "idle": "#f2f2f2",
    "meeting": "#e4f4ea",
    "screen_share": "#fff0dd",
    "mute": "#fde3e3",
    "opt_out": "#fff6c8",
}


# --- timeline as SVG geometry (pure) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Geometry:
    width: int = 1000
    left: int = 120
    right: int = 20
    top: int = 44
    lane: int = 22
    bottom: int = 34


def timeline_model(
    report: Mapping[str, Any] | Document, geometry: _Geometry | None = None
) -> dict[str, Any]:
    """Coordinates for the timeline: lanes per trigger, a dot per flow shown in full,
    a density strip per lane for the others, phase bands, marker lines."""
    document = as_document(report)
    flows = document.flows
    markers = list(document.report.get("markers") or ())
    phases = [p for p in document.report.get("phases") or () if p.get("start") is not None]
    rows = document.timeline.triggers
    times = [float(f["timestamp"]) for f in flows]
    times += [float(row[edge]) for row in rows for edge in ("first", "last")]
    times += [float(m["timestamp"]) for m in markers]
    times += [float(p["start"]) for p in phases] + [
        float(p["end"]) for p in phases if p.get("end") is not None
    ]
    present = {f["trigger"] for f in flows} | {str(row["trigger"]) for row in rows}
    lanes = [t for t in TRIGGERS if t in present] + sorted(present - set(TRIGGERS))
    g = geometry or _Geometry()
    plot_height = max(1, len(lanes)) * g.lane
    height = g.top + plot_height + g.bottom
    if not times:
        return {"empty": True, "width": g.width, "height": height, "lanes": []}
    t0, t1 = min(times), max(times)
    span = t1 - t0 or 1.0
    usable = g.width - g.left - g.right

    def x(t: float) -> float:
        return round(g.left + (float(t) - t0) / span * usable, 1)

    lane_y = {name: g.top + i * g.lane + g.lane / 2 for i, name in enumerate(lanes)}
    dots = []
    for flow in flows:
        findings = flow.get("findings") or ()
        worst = max_severity(findings)
        dots.append(
            {
                "id": flow["id"],
                "x": x(flow["timestamp"]),
                "y": lane_y[flow["trigger"]],
                "r": round(3 + min(5.0, math.log2(1 + int(flow.get("bytes_out") or 0)) / 3), 1),
                "color": TRIGGER_COLORS.get(flow["trigger"], "#999999"),
                "flagged": worst in ("medium", "high"),
                "severity": worst or "",
                "flow": flow,
                "label": (
                    f"{flow['id']} {format_time(flow['timestamp'])} {flow['method']} "
                    f"{flow['host']} · {flow['purpose']}/{flow['trigger']}"
                    f" · {len(findings)} finding{'s' * (len(findings) != 1)}"
                ),
            }
        )
    strips = []
    if document.flows_left:  # the flows not drawn one by one: how many per bin and lane
        start, end = document.timeline.start, document.timeline.end
        if start is not None and end is not None:
            width = (end - start) / len(rows[0]["strip"]) if rows else 0.0
            for row in rows:
                peak = max(row["strip"]) or 1
                for i, count in enumerate(row["strip"]):
                    if count:
                        left = x(start + i * width)
                        strips.append({
                            "x": left,
                            "width": max(1.0, round(x(start + (i + 1) * width) - left, 1)),
                            "y": lane_y[str(row["trigger"])] - g.lane / 2 + 3,
                            "height": g.lane - 6,
                            "color": TRIGGER_COLORS.get(str(row["trigger"]), "#999999"),
                            "opacity": round(0.15 + 0.6 * count / peak, 2),
                            "label": f"{row['trigger']}: {count} flows"})
    bands = []
    for i, phase in enumerate(phases):
        start = x(phase["start"])
        end = x(phase["end"]) if phase.get("end") is not None else g.width - g.right
        bands.append(
            {
                "name": phase["name"],
                "x": start,
                "width": max(1.0, round(end - start, 1)),
                "color": PHASE_COLORS.get(phase["name"], "#eeeeee"),
                "label_y": 12 + (i % 2) * 12,
            }
        )
    lines = [
        {
            "x": x(m["timestamp"]),
            "label": m["label"],
            "source": m.get("source", ""),
            "time": format_time(m["timestamp"]),
            "label_y": g.top - 4 - (i % 2) * 10,
        }
        for i, m in enumerate(_drawn_markers(markers))
    ]
    ticks = []
    for i in range(6):
        t = t0 + span * i / 5
        offset = t - t0
        ticks.append(
            {
                "x": x(t),
                "label": f"+{int(offset // 60)}:{int(offset % 60):02d}",
                "anchor": "start" if i == 0 else "end" if i == 5 else "middle",
            }
        )
    return {
        "empty": False,
        "width": g.width,
        "height": height,
        "left": g.left,
        "right": g.width - g.right,
        "top": g.top,
        "bottom": g.top + plot_height,
        "lanes": [
            {"name": n, "y": lane_y[n], "color": TRIGGER_COLORS.get(n, "#999999")} for n in lanes
        ],
        "dots": dots,
        "strips": strips,
        "bands": bands,
        "markers": lines,
        "ticks": ticks,
        "start": format_time(t0, with_date=True),
        "end": format_time(t1, with_date=True),
        "span_s": round(t1 - t0, 1),
    }


def _drawn_markers(markers: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The markers drawn as lines: all of a short list; of a long one (an app that
    reports every mute), the auditor's first, then the others, MAX_MARKER_LINES in all."""
    if len(markers) <= MAX_MARKER_LINES:
        return list(markers)
    ranked = sorted(range(len(markers)), key=lambda i: (markers[i].get("source") != "auditor", i))
    return [markers[i] for i in sorted(ranked[:MAX_MARKER_LINES])]


# --- environment -----------------------------------------------------------------------


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _pretty(value: Any, limit: int = MAX_DECODED_CHARS) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > limit:
        text = text[:limit] + f"\n… cut at {limit} characters (audit.json has it whole)"
    return text


def _words(values: Any) -> str:
    return " ".join(str(v).replace(" ", "_") for v in values or ())


@dataclass(frozen=True, slots=True)
class _Assets:
    css: str
    js: str
    csp: str


@functools.cache
def html_environment() -> tuple[jinja2.Environment, _Assets]:
    """Built once: the autoescaping environment and the inline assets with their hashes."""
    env = template_environment(autoescape=True, finalize=html_text, pretty=_pretty,
                               words=_words, dumps=json.dumps)
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    js = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    if "</" in js or "</" in css:
        raise ValueError("inline assets must not contain '</'")
    csp = "; ".join(
        (
            "default-src 'none'",
            f"style-src '{_csp_hash(css)}'",
            f"script-src '{_csp_hash(js)}'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    return env, _Assets(css=css, js=js, csp=csp)


def _filter_options(document: Document) -> dict[str, Sequence[str]]:
    tally = document.tally
    seen_triggers, seen_categories, seen_parties = (
        tally.seen_triggers, tally.seen_categories, tally.seen_parties)
    return {
        "trigger": [t for t in TRIGGERS if t in seen_triggers]
        + sorted(seen_triggers - set(TRIGGERS)),
        "category": [c for c in CATEGORIES if c in seen_categories]
        + sorted(seen_categories - set(CATEGORIES))
        + ["none"],
        "party": [p for p in PARTIES if p in seen_parties] + sorted(seen_parties - set(PARTIES)),
    }


def format_html(report: Mapping[str, Any] | Document) -> str:
    """The report as one self-contained HTML page of bounded size. Pure."""
    env, assets = html_environment()
    document = as_document(report)
    sections = document.report
    verdicts: dict[str, int] = {}
    for claim in sections.get("claims") or ():
        verdicts[claim["verdict"]] = verdicts.get(claim["verdict"], 0) + 1
    shown = {str(f["id"]) for f in document.flows}
    by_id = {str(f["id"]): f for f in document.flows}
    digest = list(document.digest)
    digest_by_id = {str(e["id"]): e for e in digest}
    tree_budget = max(6000, min(150_000, TREE_BUDGET // max(1, len(document.flows))))
    return env.get_template("audit.html.j2").render(
        report=sections,
        inputs=sections.get("inputs") or {},
        summary=sections.get("summary") or {},
        claims=list(sections.get("claims") or ()),
        verdicts=verdicts,
        flows=document.flows,
        flow_count=document.flow_count,
        flows_left=document.flows_left,
        shown=shown,
        by_id=by_id,
        groups=document.groups,
        sections=finding_sections(document.groups[:ROWS_SHOWN]),
        digest=digest[:ROWS_SHOWN],
        digest_count=len(digest),
        digest_by_id=digest_by_id,
        examples={str(c["id"]): claim_examples(c, by_id, digest_matcher(
            [digest_by_id[d] for d in c.get("digest") or () if d in digest_by_id],
            document.flows)) for c in sections.get("claims") or ()},
        tree=lambda flow: payload_tree(flow.get("decoded"), flow.get("findings") or (),
                                       flow.get("events") or (), tree_budget),
        finding_count=document.finding_count,
        endpoints=document.tally.endpoints,
        timeline=timeline_model(document),
        options=_filter_options(document),
        trigger_colors=TRIGGER_COLORS,
        errors=document.tally.errors,
        error_count=document.tally.error_count,
        max_severity=max_severity,
        decoded_limit=max(4000, min(MAX_DECODED_CHARS,
                                    DECODED_BUDGET // max(1, len(document.flows)))),
        rows_shown=ROWS_SHOWN,
        assets=assets,
    )
