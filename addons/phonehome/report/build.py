"""Report: flow records + markers → the `phonehome.report/1` dict.

This is where the whole-session stages run: the timeline (phases, context
triggers, cadence, mute), persistent identifiers and the claims verdicts.
Everything downstream (JSON, Markdown, HTML, CSV, terminal) formats this dict.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..detect import persistent_ids
from ..model import Marker, severity_rank
from ..paths import builtin_rules_dir
from ..timeline import apply_timeline
from .claims import evaluate_claims, load_claims
from .fleet import fleet_section

__all__ = ["build_report", "summarize", "default_claims_paths", "SCHEMA_ID"]

SCHEMA_ID = "phonehome.report/1"


def default_claims_paths() -> list[Path]:
    folder = builtin_rules_dir() / "claims"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def _mitmproxy_version() -> str:
    try:
        return importlib.metadata.version("mitmproxy")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def summarize(flows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by trigger, category, host, party, purpose, finding type, severity, …"""
    counters: dict[str, Counter[str]] = {
        name: Counter()
        for name in (
            "by_trigger",
            "by_category",
            "by_host",
            "by_party",
            "by_purpose",
            "by_finding_type",
            "by_severity",
            "by_content_type",
            "by_method",
            "by_enforcement",
        )
    }
    bytes_out = 0
    audit_errors = 0
    truncated = 0
    for flow in flows:
        bytes_out += int(flow.get("bytes_out") or 0)
        counters["by_trigger"][flow["trigger"]] += 1
        counters["by_category"].update(flow.get("categories") or ())
        counters["by_host"][flow["host"]] += 1
        counters["by_party"][flow["party"]] += 1
        counters["by_purpose"][flow["purpose"]] += 1
        content_type = (flow.get("content_type") or "").split(";")[0].strip() or "(none)"
        counters["by_content_type"][content_type] += 1
        counters["by_method"][flow["method"]] += 1
        for finding in flow.get("findings") or ():
            counters["by_finding_type"][finding["type"]] += 1
            counters["by_severity"][finding["severity"]] += 1
        if flow.get("audit_error"):
            audit_errors += 1
        payload = flow.get("payload") or {}
        if payload.get("truncated"):
            truncated += 1
        enforcement = flow.get("enforcement")
        if enforcement:
            counters["by_enforcement"][enforcement.get("action", "unknown")] += 1
    summary: dict[str, Any] = {
        "flows": len(flows),
        "bytes_out": bytes_out,
        "audit_errors": audit_errors,
        "truncated": truncated,
    }
    for name, counter in counters.items():
        summary[name] = dict(counter.most_common())
    return summary


def highest_severity(report: Mapping[str, Any]) -> str | None:
    """The most severe finding in a report, or None when there is none."""
    best: str | None = None
    for flow in report.get("flows", ()):
        for finding in flow.get("findings") or ():
            if best is None or severity_rank(finding["severity"]) > severity_rank(best):
                best = finding["severity"]
    for entry in report.get("persistent_ids", ()):
        severity = entry.get("severity", "medium")
        if best is None or severity_rank(severity) > severity_rank(best):
            best = severity
    return best


def build_report(
    records: Iterable[dict[str, Any]],
    markers: Sequence[Marker] = (),
    *,
    inputs: Mapping[str, Any] | None = None,
    claims_paths: Sequence[Path] | None = None,
) -> dict[str, Any]:
    """The full report dict. Records are mutated by the timeline stage."""
    flows = sorted(records, key=lambda r: (r["timestamp"], r["id"]))
    timeline = apply_timeline(flows, markers)
    persistent = persistent_ids(flows)
    report: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "phonehome", "version": __version__, "mitmproxy": _mitmproxy_version()},
        "inputs": dict(inputs or {}),
        "claims": [],
        "summary": summarize(flows),
        "flows": flows,
        "cadence": timeline.cadence,
        "phases": timeline.phases,
        "markers": timeline.markers,
        "after_opt_out": timeline.after_opt_out,
        "persistent_ids": persistent,
    }
    if any("sensor" in flow for flow in flows):  # from a shared store
        report["fleet"] = fleet_section(flows)
    if persistent:  # found across flows, not by a per-flow detector
        report["summary"]["by_finding_type"]["persistent_id"] = len(persistent)
    claims: list[dict[str, Any]] = []
    for path in default_claims_paths() if claims_paths is None else claims_paths:
        claims.extend(evaluate_claims(report, load_claims(path)))
    report["claims"] = claims
    return report
