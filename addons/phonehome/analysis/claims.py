"""Vendor claims checked against a report: one verdict per claim, with its evidence.

`evaluate_claims` is a pure function of the report dict; claims_file.py loads and
validates the claims files, and `run_claim_tests` runs their inline `tests:`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..model import severity_rank
from ..terms import encoding_family as _encoding_family
from .claims_file import (
    CHECKS,
    CLAIMS_SCHEMA,
    VERDICTS,
    Claim,
    ClaimsError,
    ClaimSet,
    ClaimSource,
    ClaimTest,
    load_claims,
)

__all__ = [
    "CHECKS",
    "CLAIMS_SCHEMA",
    "EVIDENCE_LIMIT",
    "VERDICTS",
    "Claim",
    "ClaimSet",
    "ClaimSource",
    "ClaimTest",
    "ClaimsError",
    "evaluate_claim",
    "evaluate_claims",
    "load_claims",
    "run_claim_tests",
]

EVIDENCE_LIMIT = 25
"""At most this many flow ids per verdict; `evidence_count` has the full number."""


# --- evaluation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Verdict:
    verdict: str
    reason: str
    evidence: tuple[str, ...] = ()


def _flows_for(report: Mapping[str, Any], purposes: Sequence[str]) -> list[Mapping[str, Any]]:
    return [f for f in report.get("flows") or () if f.get("purpose") in purposes]


def _purpose_words(purposes: Sequence[str]) -> str:
    return "/".join(purposes)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _verb(n: int, singular: str, plural: str) -> str:
    return singular if n == 1 else plural


def _top(counter: Counter[str], limit: int = 3) -> str:
    parts = [f"{name} ×{n}" for name, n in counter.most_common(limit)]
    if len(counter) > limit:
        parts.append("…")
    return ", ".join(parts)


def _unexamined_note(flows: Sequence[Mapping[str, Any]]) -> str:
    broken = sum(1 for f in flows if f.get("audit_error"))
    return f"; {_plural(broken, 'flow')} not fully examined (audit errors)" if broken else ""


def _check_findings(report: Mapping[str, Any], params: Mapping[str, Any], what: str) -> _Verdict:
    purposes = params["purposes"]
    flows = _flows_for(report, purposes)
    scope = _purpose_words(purposes)
    if not flows:
        return _Verdict("untested", f"no {scope} flows were captured")
    if all(f.get("audit_error") for f in flows):
        return _Verdict("untested", f"all {_plural(len(flows), scope + ' flow')} failed to audit")
    categories = set(params["categories"])
    types = set(params["finding_types"]) if params["finding_types"] else None
    excluded = set(params["exclude_types"] or ())
    floor = severity_rank(params["min_severity"])
    hits: list[str] = []
    kinds: Counter[str] = Counter()
    for flow in flows:
        matched = [
            finding
            for finding in flow.get("findings") or ()
            if finding.get("category") in categories
            and (types is None or finding.get("type") in types)
            and finding.get("type") not in excluded
            and severity_rank(finding.get("severity", "info")) >= floor
        ]
        if matched:
            hits.append(flow["id"])
            kinds.update(finding["type"] for finding in matched)
    if hits:
        return _Verdict(
            "contradicted",
            f"{_plural(len(hits), scope + ' flow')} {_verb(len(hits), 'carries', 'carry')} "
            f"{what} findings ({_top(kinds)})",
            tuple(hits),
        )
    return _Verdict(
        "holds",
        f"no {what} findings in {_plural(len(flows), scope + ' flow')}{_unexamined_note(flows)}",
    )


def _check_no_personal_data(report: Mapping[str, Any], params: Mapping[str, Any]) -> _Verdict:
    return _check_findings(report, params, "personal-data")


def _check_no_meeting_content(report: Mapping[str, Any], params: Mapping[str, Any]) -> _Verdict:
    return _check_findings(report, params, "meeting-content")


def _check_anonymized(report: Mapping[str, Any], params: Mapping[str, Any]) -> _Verdict:
    purposes = params["purposes"]
    flows = _flows_for(report, purposes)
    scope = _purpose_words(purposes)
    if not flows:
        return _Verdict("untested", f"no {scope} flows were captured")
    in_scope = {f["id"] for f in flows}
    encodings = set(params["encodings"]) if params["encodings"] else None
    identity_flows: list[str] = []
    used: Counter[str] = Counter()
    for flow in flows:
        matches = [
            finding
            for finding in flow.get("findings") or ()
            if finding.get("type") == "identity_match"
            and (encodings is None or _encoding_family(finding.get("encoding")) in encodings)
        ]
        if matches:
            identity_flows.append(flow["id"])
            used.update(finding.get("encoding") or "plain" for finding in matches)
    linking: list[Mapping[str, Any]] = []
    if params["persistent_ids"]:
        for entry in report.get("persistent_ids") or ():
            ids = [i for i in entry.get("flows") or () if i in in_scope]
            flow_count = int(entry.get("flow_count") or len(entry.get("flows") or ()))
            captures = int(entry.get("capture_count") or 0)
            if ids and (flow_count >= params["min_flows"] or captures >= 2):
                linking.append(entry)
    parts: list[str] = []
    evidence: list[str] = list(identity_flows)
    if identity_flows:
        parts.append(
            f"your identity appears in {_plural(len(identity_flows), scope + ' flow')} "
            f"(encodings: {_top(used)})"
        )
    if linking:
        keys = Counter(str(entry.get("key") or "?") for entry in linking)
        widest = max(int(e.get("flow_count") or len(e.get("flows") or ())) for e in linking)
        parts.append(
            f"{_plural(len(linking), 'persistent id')} ({_top(keys)}) link up to "
            f"{widest} flows"
        )
        for entry in linking:
            evidence.extend(i for i in entry.get("flows") or () if i in in_scope)
    if parts:
        return _Verdict("contradicted", "; ".join(parts), tuple(dict.fromkeys(evidence)))
    inputs = report.get("inputs") or {}
    if params["require_identity"] and not inputs.get("identity"):
        return _Verdict(
            "untested",
            "no identity file was given, so your own values could not be looked for "
            f"(no persistent id links {scope} flows)",
        )
    return _Verdict(
        "holds",
        f"no identity match and no persistent id in {_plural(len(flows), scope + ' flow')}"
        f"{_unexamined_note(flows)}",
    )


def _check_no_third_party_sharing(
    report: Mapping[str, Any], params: Mapping[str, Any]
) -> _Verdict:
    purposes = params["purposes"]
    flows = _flows_for(report, purposes)
    scope = _purpose_words(purposes)
    if not flows:
        return _Verdict("untested", f"no {scope} flows were captured")
    parties = set(params["parties"])
    hits = [f for f in flows if f.get("party") in parties]
    if hits:
        orgs = Counter(str(f.get("organization") or f.get("host")) for f in hits)
        return _Verdict(
            "contradicted",
            f"{_plural(len(hits), scope + ' flow')} {_verb(len(hits), 'goes', 'go')} to "
            f"{'/'.join(params['parties'])} "
            f"parties ({_top(orgs)})",
            tuple(f["id"] for f in hits),
        )
    unknown = sum(1 for f in flows if f.get("party") == "unknown")
    note = f"; {_plural(unknown, 'flow')} to hosts of unknown party" if unknown else ""
    if unknown:
        return _Verdict("holds", f"no {scope} flow goes to a known third party{note}")
    return _Verdict("holds", f"all {_plural(len(flows), scope + ' flow')} go to first parties")


def _norm_label(label: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(label).strip().lower())


def _check_opt_out_honored(report: Mapping[str, Any], params: Mapping[str, Any]) -> _Verdict:
    labels = {_norm_label(label) for label in params["marker_labels"]}
    opt_outs = sorted(
        float(m["timestamp"])
        for m in report.get("markers") or ()
        if _norm_label(m.get("label", "")) in labels
    )
    if not opt_outs:
        return _Verdict(
            "untested",
            f"no opt-out marker ({', '.join(sorted(labels))}) was set during the capture",
        )
    start = opt_outs[0]
    all_flows = report.get("flows") or ()
    if "after_opt_out" in report:
        after_ids = set(report.get("after_opt_out") or ())
    else:
        after_ids = {f["id"] for f in all_flows if float(f.get("timestamp", 0)) >= start}
    purposes = params["purposes"]
    scope = _purpose_words(purposes)
    hits = [f["id"] for f in all_flows if f["id"] in after_ids and f.get("purpose") in purposes]
    if hits:
        return _Verdict(
            "contradicted",
            f"{_plural(len(hits), scope + ' flow')} {_verb(len(hits), 'was', 'were')} sent "
            "after the opt-out marker",
            tuple(hits),
        )
    later = sum(1 for f in all_flows if float(f.get("timestamp", 0)) >= start)
    if not later:
        return _Verdict("untested", "nothing was captured after the opt-out marker")
    return _Verdict(
        "holds", f"no {scope} flow among the {_plural(later, 'flow')} captured after opt-out"
    )


_CHECK_FUNCTIONS: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], _Verdict]] = (
    MappingProxyType(
        {
            "no_personal_data": _check_no_personal_data,
            "no_meeting_content": _check_no_meeting_content,
            "anonymized": _check_anonymized,
            "no_third_party_sharing": _check_no_third_party_sharing,
            "opt_out_honored": _check_opt_out_honored,
        }
    )
)


def evaluate_claim(report: Mapping[str, Any], claim: Claim, vendor: str = "") -> dict[str, Any]:
    """One `claims[]` entry for the report."""
    result = _CHECK_FUNCTIONS[claim.check](report, claim.params)
    order = {f.get("id"): i for i, f in enumerate(report.get("flows") or ())}
    evidence = sorted(dict.fromkeys(result.evidence), key=lambda i: order.get(i, len(order)))
    entry: dict[str, Any] = {
        "id": claim.id,
        "statement": claim.statement,
        "verdict": result.verdict,
        "reason": result.reason,
        "evidence": evidence[:EVIDENCE_LIMIT],
        "evidence_count": len(evidence),
        "check": claim.check,
        "vendor": vendor,
        "source": claim.source.as_dict(),
    }
    if claim.quote:
        entry["quote"] = claim.quote
    return entry


def evaluate_claims(report: Mapping[str, Any], claims: ClaimSet) -> list[dict[str, Any]]:
    """Every claim of the set, in file order."""
    return [evaluate_claim(report, claim, claims.vendor) for claim in claims.claims]


def run_claim_tests(claims: ClaimSet) -> list[tuple[Claim, list[str]]]:
    """Each claim with the failures of its inline tests (one line each; none: passed)."""
    results = []
    for claim in claims.claims:
        failures = []
        for test in claim.tests:
            entry = evaluate_claim(test.report, claim, claims.vendor)
            label = f"{claim.id} [{test.name}, line {test.line}]"
            if entry["verdict"] != test.verdict:
                failures.append(f"{label}: {entry['verdict']} ({entry['reason']}), "
                                f"expected {test.verdict}")
            elif test.evidence is not None and entry["evidence"] != list(test.evidence):
                failures.append(f"{label}: evidence {entry['evidence']}, "
                                f"expected {list(test.evidence)}")
        results.append((claim, failures))
    return results
