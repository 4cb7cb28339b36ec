"""Vendor claims as data, and the checks that test them against a report.

A claims file (rules/claims/<vendor>.yaml, format in rules/claims/README.md)
quotes what a vendor says and names one check from the closed set below.
`load_claims` validates the whole file at load time and reports every error
as `path:line: message`; `evaluate_claims` is a pure function of the report
dict and gives one `claims[]` entry per claim: verdict, one-line reason and
the flow ids that are the evidence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ..model import CATEGORIES, FINDING_TYPES, PARTIES, PURPOSES, SEVERITIES, severity_rank

__all__ = [
    "CHECKS",
    "CLAIMS_SCHEMA",
    "EVIDENCE_LIMIT",
    "VERDICTS",
    "Claim",
    "ClaimSet",
    "ClaimSource",
    "ClaimsError",
    "evaluate_claim",
    "evaluate_claims",
    "load_claims",
]

CLAIMS_SCHEMA = "phonehome.claims/1"
VERDICTS = ("holds", "contradicted", "untested")
EVIDENCE_LIMIT = 25
"""At most this many flow ids per verdict; `evidence_count` has the full number."""

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


class ClaimsError(ValueError):
    """A claims file that cannot be used. `errors` holds every `path:line: msg`."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0] if self.errors else "invalid claims file"
        more = len(self.errors) - 1
        super().__init__(first + (f" (and {more} more error{'s' * (more > 1)})" if more else ""))


# --- parameters of each check (closed set) --------------------------------------------


@dataclass(frozen=True, slots=True)
class _Param:
    kind: str  # "purposes" | "categories" | "parties" | "finding_types" | "severity" | ...
    default: Any


def _list_of(vocabulary: Sequence[str]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not value:
            return f"must be a non-empty list of: {', '.join(vocabulary)}"
        bad = [v for v in value if v not in vocabulary]
        if bad:
            return f"unknown value {bad[0]!r}; choose from {', '.join(vocabulary)}"
        return None

    return check


def _labels(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(
        isinstance(v, str) and v.strip() for v in value
    ):
        return "must be a non-empty list of marker labels"
    return None


def _severity(value: Any) -> str | None:
    return None if value in SEVERITIES else f"must be one of {', '.join(SEVERITIES)}"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "must be an integer ≥ 1"


def _strings(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return "must be a non-empty list of strings"
    return None


_VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "purposes": _list_of(PURPOSES),
    "categories": _list_of(CATEGORIES),
    "parties": _list_of(PARTIES),
    "finding_types": _list_of(FINDING_TYPES),
    "severity": _severity,
    "bool": _boolean,
    "count": _positive_int,
    "labels": _labels,
    "strings": _strings,
}

_TELEMETRY = ("telemetry",)

CHECKS: Mapping[str, Mapping[str, _Param]] = MappingProxyType(
    {
        "no_personal_data": {
            "purposes": _Param("purposes", _TELEMETRY),
            "categories": _Param("categories", ("personal_data",)),
            "finding_types": _Param("finding_types", None),
            "exclude_types": _Param("finding_types", None),
            "min_severity": _Param("severity", "info"),
        },
        "no_meeting_content": {
            "purposes": _Param("purposes", _TELEMETRY),
            "categories": _Param("categories", ("meeting_content",)),
            "finding_types": _Param("finding_types", None),
            "exclude_types": _Param("finding_types", None),
            "min_severity": _Param("severity", "info"),
        },
        "anonymized": {
            "purposes": _Param("purposes", _TELEMETRY),
            "encodings": _Param("strings", None),
            "persistent_ids": _Param("bool", True),
            "min_flows": _Param("count", 2),
            "require_identity": _Param("bool", True),
        },
        "no_third_party_sharing": {
            "purposes": _Param("purposes", _TELEMETRY),
            "parties": _Param("parties", ("third",)),
        },
        "opt_out_honored": {
            "purposes": _Param("purposes", _TELEMETRY),
            "marker_labels": _Param("labels", ("opt_out",)),
        },
    }
)
"""check name → parameter name → (kind, default). A claims file may set only these."""


# --- value objects ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimSource:
    title: str
    url: str | None = None
    section: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"title": self.title}
        for name in ("url", "section", "note"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    statement: str
    check: str
    params: Mapping[str, Any]
    """Every parameter of the check, defaults filled in (read-only)."""
    source: ClaimSource
    quote: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class ClaimSet:
    path: Path
    vendor: str
    claims: tuple[Claim, ...]

    def __len__(self) -> int:
        return len(self.claims)

    def __iter__(self) -> Iterator[Claim]:
        return iter(self.claims)


# --- loading -----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate keys instead of silently keeping the last."""

    def __init__(self, stream: str, where: str) -> None:
        super().__init__(stream)
        self.where = where
        self.problems: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                line = key_node.start_mark.line + 1
                self.problems.append(f"{self.where}:{line}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _key_lines(node: yaml.Node | None) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
    }


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


_TOP_KEYS = {"schema", "vendor", "description", "claims"}
_CLAIM_KEYS = {"id", "statement", "check", "params", "quote", "source"}
_SOURCE_KEYS = {"title", "url", "section", "note"}


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _encoding_family(encoding: str | None) -> str:
    """The first layer of an encoding: "sha256(lower)>base64" → "sha256"."""
    first = (encoding or "plain").split(">", 1)[0]
    return first.split("(", 1)[0] or "plain"


def load_claims(path: Path) -> ClaimSet:
    """Read and validate a claims file. Raises ClaimsError listing every problem."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ClaimsError([f"{where}:0: cannot read: {e}"]) from e
    loader = _Loader(text, where)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(e, "problem", None) or str(e)
        raise ClaimsError([f"{where}:{line}: invalid YAML: {problem}"]) from e
    finally:
        loader.dispose()

    errors = list(loader.problems)
    if not isinstance(data, dict):
        raise ClaimsError(errors + [f"{where}:1: a claims file is a mapping with `claims:`"])
    top_lines = _key_lines(root)
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        errors.append(f"{where}:{top_lines.get(str(key), 1)}: unknown key {key!r}")
    if data.get("schema") != CLAIMS_SCHEMA:
        errors.append(
            f"{where}:{top_lines.get('schema', 1)}: `schema` must be {CLAIMS_SCHEMA!r}"
        )
    vendor = data.get("vendor")
    if not _text(vendor):
        errors.append(f"{where}:{top_lines.get('vendor', 1)}: `vendor` must be a non-empty string")
    raw_claims = data.get("claims")
    claims_node = _child(root, "claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        errors.append(f"{where}:{top_lines.get('claims', 1)}: `claims` must be a non-empty list")
        raw_claims = []
    item_nodes = list(claims_node.value) if isinstance(claims_node, yaml.SequenceNode) else []

    claims: list[Claim] = []
    first_line: dict[str, int] = {}
    for index, raw in enumerate(raw_claims):
        node = item_nodes[index] if index < len(item_nodes) else None
        line = node.start_mark.line + 1 if node is not None else 0
        claim = _parse_claim(raw, node, line, where, errors)
        if claim is None:
            continue
        if claim.id in first_line:
            errors.append(
                f"{where}:{line}: duplicate claim id {claim.id!r} "
                f"(first at line {first_line[claim.id]})"
            )
        else:
            first_line[claim.id] = line
        claims.append(claim)
    if errors:
        raise ClaimsError(errors)
    return ClaimSet(path=path, vendor=str(vendor).strip(), claims=tuple(claims))


def _parse_claim(
    raw: Any, node: yaml.Node | None, line: int, where: str, errors: list[str]
) -> Claim | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}:{line}: each claim is a mapping")
        return None
    lines = _key_lines(node)

    def at(key: str) -> str:
        return f"{where}:{lines.get(key, line)}"

    before = len(errors)
    for key in sorted(set(raw) - _CLAIM_KEYS, key=str):
        errors.append(f"{at(str(key))}: unknown key {key!r} in claim")
    claim_id = raw.get("id")
    if not isinstance(claim_id, str) or not _ID_RE.match(claim_id):
        errors.append(f"{at('id')}: claim `id` must be a slug like 'webex-no-personal-data'")
    for key in ("statement",):
        if not _text(raw.get(key)):
            errors.append(f"{at(key)}: claim `{key}` must be a non-empty string")
    quote = raw.get("quote")
    if quote is not None and not _text(quote):
        errors.append(f"{at('quote')}: `quote` must be a non-empty string when given")
    source = _parse_source(
        raw.get("source"), _child(node, "source"), lines.get("source", line), where, errors
    )
    check = raw.get("check")
    params: dict[str, Any] = {}
    if check not in CHECKS:
        errors.append(f"{at('check')}: unknown check {check!r}; choose from {', '.join(CHECKS)}")
    else:
        params = _parse_params(check, raw.get("params"), _child(node, "params"), at, where, errors)
    if len(errors) > before or source is None:
        return None
    return Claim(
        id=claim_id,
        statement=" ".join(raw["statement"].split()),
        check=check,
        params=MappingProxyType(params),
        source=source,
        quote=" ".join(quote.split()) if quote else None,
        line=line,
    )


def _parse_source(
    raw: Any, node: yaml.Node | None, line: int, where: str, errors: list[str]
) -> ClaimSource | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}:{line}: claim `source` must be a mapping with at least `title`")
        return None
    lines = _key_lines(node)
    ok = True
    for key in sorted(set(raw) - _SOURCE_KEYS, key=str):
        errors.append(f"{where}:{lines.get(str(key), line)}: unknown key {key!r} in source")
        ok = False
    for key in sorted(_SOURCE_KEYS):
        value = raw.get(key)
        if (key == "title" or value is not None) and not _text(value):
            errors.append(
                f"{where}:{lines.get(key, line)}: source `{key}` must be a non-empty string"
            )
            ok = False
    if not ok:
        return None
    return ClaimSource(
        title=" ".join(raw["title"].split()),
        url=raw.get("url"),
        section=raw.get("section"),
        note=" ".join(raw["note"].split()) if raw.get("note") else None,
    )


def _parse_params(
    check: str,
    raw: Any,
    node: yaml.Node | None,
    at: Callable[[str], str],
    where: str,
    errors: list[str],
) -> dict[str, Any]:
    spec = CHECKS[check]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{at('params')}: `params` must be a mapping")
        return {}
    lines = _key_lines(node)
    params: dict[str, Any] = {}
    for key, value in raw.items():
        here = f"{where}:{lines.get(str(key), 0)}" if str(key) in lines else at("params")
        if key not in spec:
            allowed = ", ".join(spec) or "(none)"
            errors.append(f"{here}: check {check} has no parameter {key!r}; it takes {allowed}")
            continue
        problem = _VALIDATORS[spec[key].kind](value)
        if problem:
            errors.append(f"{here}: {check}.{key}: {problem}")
            continue
        params[key] = tuple(value) if isinstance(value, list) else value
    for key, param in spec.items():
        params.setdefault(key, param.default)
    return params


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
