"""Report: flow records + markers → the `phonehome.report/1` dict.

This is where the whole-session stages run: the timeline (phases, context
triggers, cadence, mute), persistent identifiers and the claims verdicts.
Everything downstream (JSON, Markdown, HTML, CSV, terminal) formats this dict.
"""

from __future__ import annotations

import copy
import datetime as _dt
import importlib.metadata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..analysis.app import apply_app, resolve_app
from ..analysis.claims import ClaimSet, evaluate_claims, load_claims
from ..analysis.fleet import fleet_section
from ..analysis.timeline import apply_timeline
from ..bundled import builtin_rules_dir
from ..detect import persistent_ids
from ..model import Marker, most_severe

__all__ = ["build_report", "summarize", "app_claims_paths", "SCHEMA_ID"]

SCHEMA_ID = "phonehome.report/1"


def app_claims_paths(app: str | None) -> list[Path]:
    """The audited app vendor's claims file (rules/claims/<pack>.yaml), if there is one."""
    if not app:
        return []
    path = builtin_rules_dir() / "claims" / f"{app}.yaml"
    return [path] if path.is_file() else []


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
    return most_severe([
        *(finding["severity"] for flow in report.get("flows", ())
          for finding in flow.get("findings") or ()),
        *(entry.get("severity", "medium") for entry in report.get("persistent_ids", ())),
    ])


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _per_session(stage: str, run: Callable[[list[dict[str, Any]]], Any],
                 flows: list[dict[str, Any]], empty: Any, errors: list[str]) -> Any:
    """`run(flows)`, where no one flow can make the stage fail.

    When it raises, each flow it also fails on alone (tried on a copy) is left
    out and gets an `audit_error` naming the stage, and it runs on the rest.
    If it still fails, the stage's part of the report is `empty` and the
    reason goes to `errors`. (A timeline that raised part-way may have set some
    flows' trigger or phase already; the rerun sets them again from the same data.)
    """
    try:
        return run(flows)
    except Exception:  # noqa: BLE001 - find the flows it fails on
        pass
    kept = []
    for flow in flows:
        try:
            run([copy.deepcopy(flow)])
        except Exception as e:  # noqa: BLE001 - this flow's data breaks the stage
            if not flow.get("audit_error"):
                flow["audit_error"] = {"stage": stage, "reason": _reason(e)}
        else:
            kept.append(flow)
    try:
        return run(kept)
    except Exception as e:  # noqa: BLE001 - it fails on flows only together
        errors.append(f"{stage}: {_reason(e)}")
        return empty


def _claims(report: dict[str, Any], claims: ClaimSet,
            flows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return evaluate_claims({**report, "flows": flows}, claims)


def build_report(
    records: Iterable[dict[str, Any]],
    markers: Sequence[Marker] = (),
    *,
    inputs: Mapping[str, Any] | None = None,
    claims_paths: Sequence[Path] | None = None,
    app: str | None = None,
) -> dict[str, Any]:
    """The full report dict. Records are mutated by the timeline stage and the app.

    `app` overrides the audited app the inputs name (a pack id or "auto"); the
    claims checked are that app vendor's unless `claims_paths` is given. The
    whole-session stages run over every flow, but no flow's data can stop one
    (see `_per_session`): the report is always built.
    """
    flows = sorted(records, key=lambda r: (_sort_time(r.get("timestamp")), str(r.get("id"))))
    inputs = dict(inputs or {})
    errors: list[str] = []
    requested, known_apps = app or inputs.get("app"), inputs.get("apps") or {}

    def audited_app(some: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = resolve_app(some, requested, known_apps)
        apply_app(some, chosen["name"])
        return chosen

    audited = _per_session("app", audited_app, flows, resolve_app([], requested, known_apps),
                           errors)
    timeline = _per_session("timeline", lambda fl: apply_timeline(fl, markers), flows,
                            apply_timeline([], ()), errors)
    persistent = _per_session("persistent_ids", persistent_ids, flows, [], errors)
    summary = _per_session("summary", summarize, flows, summarize([]), errors)
    report: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "phonehome", "version": __version__, "mitmproxy": _mitmproxy_version()},
        "inputs": inputs,
        "app": audited,
        "claims": [],
        "summary": summary,
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
    paths = app_claims_paths(audited["name"]) if claims_paths is None else claims_paths
    for path in paths:
        claim_set = load_claims(path)
        claims.extend(_per_session(
            "claims", lambda fl, cs=claim_set: _claims(report, cs, fl), flows, [], errors))
    report["claims"] = claims
    if errors:
        report["inputs"]["session_errors"] = errors
    # a flow left out of a stage above is counted as an audit error
    report["summary"]["audit_errors"] = sum(1 for f in flows if f.get("audit_error"))
    return report


def _sort_time(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
