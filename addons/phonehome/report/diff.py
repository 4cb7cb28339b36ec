"""What changed between two audits: endpoints, events, categories, findings, identifiers.

Pure. The identifiers seen in both reports (same fingerprint) test for install-,
device- or account-scoped ids: after a reinstall or with a second account, an id
that is still there links the two sessions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..model import severity_rank
from .safe_text import safe_text
from .view import endpoint_key, format_size

__all__ = ["DIFF_SCHEMA", "diff_reports", "format_diff_markdown", "format_diff_table"]

DIFF_SCHEMA = "phonehome.diff/1"
MAX_LOCATIONS = 5


def _side(report: Mapping[str, Any]) -> dict[str, Any]:
    flows = report.get("flows") or ()
    inputs = report.get("inputs") or {}
    return {
        "generated_at": report.get("generated_at", ""),
        "captures": list(inputs.get("captures") or ()),
        "flows": len(flows),
        "bytes_out": sum(int(f.get("bytes_out") or 0) for f in flows),
        "findings": sum(len(f.get("findings") or ()) for f in flows),
    }


Row = Callable[[Any, int, str], dict[str, Any]]
"""(key, count, "old" or "new") → one row of a diff section."""


def _section(old: Counter[Any], new: Counter[Any], row: Row) -> dict[str, Any]:
    """Rows for the keys only `new` has and only `old` had, and how many both have."""
    return {
        "new": [row(k, new[k], "new") for k in sorted(k for k in new if k not in old)],
        "gone": [row(k, old[k], "old") for k in sorted(k for k in old if k not in new)],
        "kept": sum(1 for k in new if k in old),
    }


def _endpoints(report: Mapping[str, Any]) -> Counter[str]:
    return Counter(endpoint_key(f) for f in report.get("flows") or ())


def _events(report: Mapping[str, Any]) -> Counter[str]:
    return Counter(
        e["name"] for f in report.get("flows") or () for e in f.get("events") or () if e.get("name")
    )


def _categories(report: Mapping[str, Any]) -> Counter[str]:
    return Counter(c for f in report.get("flows") or () for c in f.get("categories") or ())


def _findings(report: Mapping[str, Any]) -> tuple[Counter[tuple[str, str]], dict[Any, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    worst: dict[tuple[str, str], str] = {}
    for flow in report.get("flows") or ():
        for finding in flow.get("findings") or ():
            key = (finding["type"], finding["location"])
            counts[key] += 1
            severity = finding.get("severity", "info")
            if key not in worst or severity_rank(severity) > severity_rank(worst[key]):
                worst[key] = severity
    return counts, worst


def _identifiers(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """fingerprint → keys, locations, flow ids, captures (flows' identifiers + persistent_ids)."""
    seen: dict[str, dict[str, Any]] = {}

    def slot(fingerprint: str) -> dict[str, Any]:
        return seen.setdefault(
            fingerprint, {"keys": set(), "locations": set(), "flows": set(), "captures": set()}
        )

    for flow in report.get("flows") or ():
        for ident in flow.get("identifiers") or ():
            fingerprint = ident.get("fingerprint")
            if not fingerprint:
                continue
            entry = slot(str(fingerprint))
            entry["keys"].add(str(ident.get("key", "")))
            entry["locations"].add(str(ident.get("location", "")))
            entry["flows"].add(flow["id"])
            if flow.get("source"):
                entry["captures"].add(str(flow["source"]))
    for persistent in report.get("persistent_ids") or ():
        fingerprint = persistent.get("fingerprint")
        if not fingerprint:
            continue
        entry = slot(str(fingerprint))
        if persistent.get("key"):
            entry["keys"].add(str(persistent["key"]))
        entry["flows"].update(str(i) for i in persistent.get("flows") or ())
        entry["captures"].update(str(c) for c in persistent.get("captures") or ())
        entry.setdefault("flow_count", 0)
        entry["flow_count"] = max(entry["flow_count"], int(persistent.get("flow_count") or 0))
    return seen


def _flow_count(entry: Mapping[str, Any]) -> int:
    return max(len(entry["flows"]), int(entry.get("flow_count") or 0))


def _claims(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    before = {c["id"]: c.get("verdict") for c in old.get("claims") or ()}
    after = {c["id"]: c.get("verdict") for c in new.get("claims") or ()}
    rows = []
    for claim_id in list(dict.fromkeys([*before, *after])):
        if before.get(claim_id) != after.get(claim_id):
            rows.append({"id": claim_id, "old": before.get(claim_id), "new": after.get(claim_id)})
    return rows


def diff_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The changes from `old` to `new`. Pure; both are `phonehome.report/1` dicts."""
    endpoints = _section(_endpoints(old), _endpoints(new),
                         lambda k, n, _side: {"endpoint": k, "flows": n})
    events = _section(_events(old), _events(new), lambda k, n, _side: {"event": k, "count": n})
    categories = _section(_categories(old), _categories(new),
                          lambda k, n, _side: {"category": k, "flows": n})
    (old_f, old_worst), (new_f, new_worst) = _findings(old), _findings(new)
    worst = {"old": old_worst, "new": new_worst}
    findings = _section(old_f, new_f, lambda k, n, side: {
        "type": k[0], "location": k[1], "count": n, "severity": worst[side][k]})
    old_ids, new_ids = _identifiers(old), _identifiers(new)
    shared = []
    for fingerprint in sorted(set(old_ids) & set(new_ids)):
        a, b = old_ids[fingerprint], new_ids[fingerprint]
        locations = sorted((a["locations"] | b["locations"]) - {""})
        shared.append(
            {
                "fingerprint": fingerprint,
                "keys": sorted((a["keys"] | b["keys"]) - {""}),
                "locations": locations[:MAX_LOCATIONS],
                "location_count": len(locations),
                "old_flows": _flow_count(a),
                "new_flows": _flow_count(b),
                "old_captures": sorted(a["captures"]),
                "new_captures": sorted(b["captures"]),
            }
        )
    shared.sort(key=lambda s: (-(s["old_flows"] + s["new_flows"]), s["keys"], s["fingerprint"]))
    return {
        "schema": DIFF_SCHEMA,
        "old": _side(old),
        "new": _side(new),
        "claims": _claims(old, new),
        "endpoints": endpoints,
        "events": events,
        "categories": categories,
        "findings": findings,
        "identifiers": {
            "shared": shared,
            "old_only": len(set(old_ids) - set(new_ids)),
            "new_only": len(set(new_ids) - set(old_ids)),
        },
    }


# --- terminal ----------------------------------------------------------------------------


def _change_table(title: str, columns: Iterable[str], rows: Iterable[tuple[Any, ...]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("", width=1)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _signed(part: Mapping[str, Any], name: str, extra: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for sign, style, key in (("+", "green", "new"), ("-", "red", "gone")):
        for item in part[key]:
            rows.append((Text(sign, style=style), safe_text(item[name]), safe_text(item[extra])))
    return rows


def format_diff_table(diff: Mapping[str, Any]) -> RenderableType:
    """A rich renderable: what is new (+) and gone (-), and the ids seen in both."""
    old, new = diff["old"], diff["new"]
    header = Text()
    header.append("phonehome diff", style="bold")
    for label, side in (("old", old), ("new", new)):
        header.append(f"\n{label}: ")
        header.append_text(safe_text(", ".join(side["captures"]) or "(live)"))
        header.append(
            f" · {side['flows']} flows · {format_size(side['bytes_out'])} · "
            f"{side['findings']} findings"
        )
    parts: list[RenderableType] = [header]
    if diff["claims"]:
        table = Table(title="Claims whose verdict changed", title_justify="left", show_edge=False)
        for column in ("claim", "old", "new"):
            table.add_column(column)
        for row in diff["claims"]:
            table.add_row(safe_text(row["id"]), safe_text(row["old"] or "—"),
                          safe_text(row["new"] or "—"))
        parts.append(table)
    for title, key, name, extra, label in (
        ("Endpoints", "endpoints", "endpoint", "flows", "flows"),
        ("Events", "events", "event", "count", "count"),
        ("Categories", "categories", "category", "flows", "flows"),
    ):
        part = diff[key]
        rows = _signed(part, name, extra)
        title_text = (
            f"{title}: {len(part['new'])} new, {len(part['gone'])} gone, {part['kept']} kept"
        )
        parts.append(_change_table(title_text, (name, label), rows) if rows else Text(title_text))
    part = diff["findings"]
    rows: list[tuple[Any, ...]] = []
    for sign, style, key in (("+", "green", "new"), ("-", "red", "gone")):
        for item in part[key]:
            rows.append(
                (Text(sign, style=style), safe_text(item["type"]), safe_text(item["location"]),
                 safe_text(item["severity"]), Text(str(item["count"])))
            )
    title_text = (
        f"Findings (type, location): {len(part['new'])} new, {len(part['gone'])} gone, "
        f"{part['kept']} kept"
    )
    parts.append(
        _change_table(title_text, ("type", "location", "severity", "count"), rows)
        if rows
        else Text(title_text)
    )
    shared = diff["identifiers"]["shared"]
    title_text = f"Identifiers in both audits: {len(shared)}"
    if shared:
        table = Table(title=title_text, title_justify="left", show_edge=False)
        for column in ("key", "fingerprint", "old flows", "new flows", "locations"):
            table.add_column(column, overflow="fold")
        for item in shared:
            locations = Text("\n").join(safe_text(location) for location in item["locations"])
            table.add_row(
                safe_text(", ".join(item["keys"]) or "?", style="bold red"),
                safe_text(item["fingerprint"]),
                Text(str(item["old_flows"])),
                Text(str(item["new_flows"])),
                locations,
            )
        parts.append(table)
    else:
        parts.append(Text(title_text + " (no id links the two sessions)", style="green"))
    return Group(*parts)


def format_diff_markdown(diff: Mapping[str, Any]) -> str:
    """The diff as Markdown, through the same escaping environment as the report."""
    from .markdown import markdown_environment

    template = markdown_environment().get_template("diff.md.j2")
    return template.render(diff=diff).strip() + "\n"
