"""Vendor claims as data, and the checks that test them against a report.

A claims file (rules/claims/<vendor>.yaml, format in rules/claims/README.md)
quotes what a vendor says and names one check from the closed set below.
`load_claims` validates the whole file at load time and reports every error
as `path:line: message`; `ClaimsEvaluation` checks them over the session's flows
in one pass and gives one `claims[]` entry per claim: verdict, one-line reason
and the flow ids that are the evidence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
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
    "ClaimsEvaluation",
    "SessionFacts",
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
#
# Each check reads the session one flow at a time (`add`), then gives its verdict
# (`verdict`) from what it kept: counts, the first flows in evidence, and for the
# whole-session facts (persistent ids, markers, after_opt_out) what the analysis found.


@dataclass(frozen=True, slots=True)
class _Verdict:
    verdict: str
    reason: str
    evidence: tuple[int, ...] = ()
    """Positions of the flows in evidence, in session order."""
    evidence_count: int | None = None
    """How many flows are in evidence (`evidence` may hold only the first ones)."""


@dataclass(frozen=True)
class SessionFacts:
    """What the checks need beyond the flows themselves."""

    inputs: Mapping[str, Any]
    markers: Sequence[Mapping[str, Any]]
    after_opt_out: Sequence[str] | None
    linked: Sequence[tuple[Mapping[str, Any], Sequence[int]]] = ()
    """Each persistent id and the positions of the flows it links."""


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


def _unexamined_note(broken: int) -> str:
    return f"; {_plural(broken, 'flow')} not fully examined (audit errors)" if broken else ""


class _Hits:
    """Flows in evidence: the first EVIDENCE_LIMIT positions and how many there are."""

    __slots__ = ("first", "count")

    def __init__(self) -> None:
        self.first: list[int] = []
        self.count = 0

    def add(self, position: int) -> None:
        self.count += 1
        if len(self.first) < EVIDENCE_LIMIT:
            self.first.append(position)


class _Check:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.purposes = tuple(params.get("purposes") or ())
        self.scope = _purpose_words(self.purposes)
        self.flows = 0
        self.broken = 0

    def add(self, position: int, flow: Any) -> None:
        if flow.purpose in self.purposes:
            self.examine(position, flow)
            self.flows += 1
            self.broken += bool(flow.audit_error)

    def examine(self, position: int, flow: Any) -> None:
        """Look at one in-scope flow; raise before keeping anything if it is unusable."""

    def verdict(self, facts: SessionFacts, purpose_of: Any) -> _Verdict:
        raise NotImplementedError


class _FindingsCheck(_Check):
    def __init__(self, params: Mapping[str, Any], what: str) -> None:
        super().__init__(params)
        self.what = what
        self.categories = set(params["categories"])
        self.types = set(params["finding_types"]) if params["finding_types"] else None
        self.excluded = set(params["exclude_types"] or ())
        self.floor = severity_rank(params["min_severity"])
        self.hits = _Hits()
        self.kinds: Counter[str] = Counter()

    def examine(self, position: int, flow: Any) -> None:
        matched = [
            finding.type
            for finding in flow.findings
            if finding.category in self.categories
            and (self.types is None or finding.type in self.types)
            and finding.type not in self.excluded
            and severity_rank(finding.severity) >= self.floor
        ]
        if matched:
            self.hits.add(position)
            self.kinds.update(matched)

    def verdict(self, facts: SessionFacts, purpose_of: Any) -> _Verdict:
        scope = self.scope
        if not self.flows:
            return _Verdict("untested", f"no {scope} flows were captured")
        if self.broken == self.flows:
            return _Verdict("untested",
                            f"all {_plural(self.flows, scope + ' flow')} failed to audit")
        hits = self.hits
        if hits.count:
            return _Verdict(
                "contradicted",
                f"{_plural(hits.count, scope + ' flow')} "
                f"{_verb(hits.count, 'carries', 'carry')} {self.what} findings "
                f"({_top(self.kinds)})",
                tuple(hits.first), hits.count,
            )
        return _Verdict(
            "holds",
            f"no {self.what} findings in {_plural(self.flows, scope + ' flow')}"
            f"{_unexamined_note(self.broken)}",
        )


class _AnonymizedCheck(_Check):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.encodings = set(params["encodings"]) if params["encodings"] else None
        self.identity = bytearray()
        """1 at the position of each in-scope flow that carries the user's identity."""
        self.identity_flows = 0
        self.used: Counter[str] = Counter()

    def examine(self, position: int, flow: Any) -> None:
        used = [
            finding.encoding or "plain"
            for finding in flow.findings
            if finding.type == "identity_match"
            and (self.encodings is None or _encoding_family(finding.encoding) in self.encodings)
        ]
        if used:
            if len(self.identity) <= position:
                self.identity.extend(bytes(position + 1 - len(self.identity)))
            self.identity[position] = 1
            self.identity_flows += 1
            self.used.update(used)

    def verdict(self, facts: SessionFacts, purpose_of: Any) -> _Verdict:
        params, scope = self.params, self.scope
        if not self.flows:
            return _Verdict("untested", f"no {scope} flows were captured")
        evidence = bytearray(self.identity)
        linking: list[Mapping[str, Any]] = []
        if params["persistent_ids"]:
            for entry, positions in facts.linked:
                inside = [i for i in positions if purpose_of(i) in self.purposes]
                flow_count = int(entry.get("flow_count") or len(entry.get("flows") or ()))
                captures = int(entry.get("capture_count") or 0)
                if inside and (flow_count >= params["min_flows"] or captures >= 2):
                    linking.append(entry)
                    for i in inside:
                        if len(evidence) <= i:
                            evidence.extend(bytes(i + 1 - len(evidence)))
                        evidence[i] = 1
        parts: list[str] = []
        if self.identity_flows:
            parts.append(
                f"your identity appears in {_plural(self.identity_flows, scope + ' flow')} "
                f"(encodings: {_top(self.used)})"
            )
        if linking:
            keys = Counter(str(entry.get("key") or "?") for entry in linking)
            widest = max(int(e.get("flow_count") or len(e.get("flows") or ())) for e in linking)
            parts.append(
                f"{_plural(len(linking), 'persistent id')} ({_top(keys)}) link up to "
                f"{widest} flows"
            )
        if parts:
            count = evidence.count(1)
            first: list[int] = []
            start = 0
            while len(first) < EVIDENCE_LIMIT and (at := evidence.find(1, start)) >= 0:
                first.append(at)
                start = at + 1
            return _Verdict("contradicted", "; ".join(parts), tuple(first), count)
        if params["require_identity"] and not facts.inputs.get("identity"):
            return _Verdict(
                "untested",
                "no identity file was given, so your own values could not be looked for "
                f"(no persistent id links {scope} flows)",
            )
        return _Verdict(
            "holds",
            f"no identity match and no persistent id in {_plural(self.flows, scope + ' flow')}"
            f"{_unexamined_note(self.broken)}",
        )


class _ThirdPartyCheck(_Check):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.parties = set(params["parties"])
        self.hits = _Hits()
        self.orgs: Counter[str] = Counter()
        self.unknown = 0

    def examine(self, position: int, flow: Any) -> None:
        if flow.party in self.parties:
            org = str(flow.organization or flow.host)
            self.hits.add(position)
            self.orgs[org] += 1
        self.unknown += flow.party == "unknown"

    def verdict(self, facts: SessionFacts, purpose_of: Any) -> _Verdict:
        scope, hits = self.scope, self.hits
        if not self.flows:
            return _Verdict("untested", f"no {scope} flows were captured")
        if hits.count:
            return _Verdict(
                "contradicted",
                f"{_plural(hits.count, scope + ' flow')} {_verb(hits.count, 'goes', 'go')} to "
                f"{'/'.join(self.params['parties'])} "
                f"parties ({_top(self.orgs)})",
                tuple(hits.first), hits.count,
            )
        if self.unknown:
            note = f"; {_plural(self.unknown, 'flow')} to hosts of unknown party"
            return _Verdict("holds", f"no {scope} flow goes to a known third party{note}")
        return _Verdict("holds",
                        f"all {_plural(self.flows, scope + ' flow')} go to first parties")


def _norm_label(label: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(label).strip().lower())


class _OptOutCheck(_Check):
    def __init__(self, params: Mapping[str, Any], facts: SessionFacts) -> None:
        super().__init__(params)
        labels = {_norm_label(label) for label in params["marker_labels"]}
        self.labels = labels
        opt_outs = sorted(float(m["timestamp"]) for m in facts.markers
                          if _norm_label(m.get("label", "")) in labels)
        self.start = opt_outs[0] if opt_outs else None
        self.after_ids = (set(facts.after_opt_out) if facts.after_opt_out is not None
                          else None)
        self.hits = _Hits()
        self.later = 0

    def add(self, position: int, flow: Any) -> None:
        # every flow counts here, not only those of the purposes
        if self.start is None:
            return
        later = flow.timestamp >= self.start
        after = flow.id in self.after_ids if self.after_ids is not None else later
        if after and flow.purpose in self.purposes:
            self.hits.add(position)
        self.later += later

    def verdict(self, facts: SessionFacts, purpose_of: Any) -> _Verdict:
        if self.start is None:
            return _Verdict(
                "untested",
                f"no opt-out marker ({', '.join(sorted(self.labels))}) was set during the "
                "capture",
            )
        hits = self.hits
        if hits.count:
            return _Verdict(
                "contradicted",
                f"{_plural(hits.count, self.scope + ' flow')} "
                f"{_verb(hits.count, 'was', 'were')} sent after the opt-out marker",
                tuple(hits.first), hits.count,
            )
        if not self.later:
            return _Verdict("untested", "nothing was captured after the opt-out marker")
        return _Verdict(
            "holds",
            f"no {self.scope} flow among the {_plural(self.later, 'flow')} captured after "
            "opt-out",
        )


def _check_for(claim: Claim, facts: SessionFacts) -> _Check:
    params = claim.params
    if claim.check == "no_personal_data":
        return _FindingsCheck(params, "personal-data")
    if claim.check == "no_meeting_content":
        return _FindingsCheck(params, "meeting-content")
    if claim.check == "anonymized":
        return _AnonymizedCheck(params)
    if claim.check == "no_third_party_sharing":
        return _ThirdPartyCheck(params)
    return _OptOutCheck(params, facts)


class ClaimsEvaluation:
    """Every claim of a set, checked over the session's flows in one pass.

    `add(position, flow)` per flow (attributes: id, timestamp, purpose, party,
    organization, host, audit_error, findings), then `entries(...)`.
    """

    def __init__(self, claims: ClaimSet, facts: SessionFacts) -> None:
        self.claims = claims
        self.facts = facts
        self.checks = [_check_for(claim, facts) for claim in claims.claims]

    def add(self, position: int, flow: Any) -> None:
        for check in self.checks:
            check.add(position, flow)

    def entries(self, facts: SessionFacts, purpose_of: Any, id_of: Any) -> list[dict[str, Any]]:
        """The report's `claims[]` entries, in file order. `purpose_of(position)` and
        `id_of(position)` describe the session's flows."""
        out = []
        for claim, check in zip(self.claims.claims, self.checks, strict=True):
            result = check.verdict(facts, purpose_of)
            evidence = list(dict.fromkeys(id_of(i) for i in result.evidence))
            count = result.evidence_count if result.evidence_count is not None else len(evidence)
            entry: dict[str, Any] = {
                "id": claim.id,
                "statement": claim.statement,
                "verdict": result.verdict,
                "reason": result.reason,
                "evidence": evidence[:EVIDENCE_LIMIT],
                "evidence_count": count,
                "check": claim.check,
                "vendor": self.claims.vendor,
                "source": claim.source.as_dict(),
            }
            if claim.quote:
                entry["quote"] = claim.quote
            out.append(entry)
        return out


class _Flow:
    """A report flow dict, read the way the checks read a typed flow."""

    __slots__ = ("id", "timestamp", "purpose", "party", "organization", "host", "audit_error",
                 "findings")

    def __init__(self, flow: Mapping[str, Any]) -> None:
        from .records import Finding

        self.id = flow.get("id")
        self.timestamp = float(flow.get("timestamp", 0))
        self.purpose = flow.get("purpose")
        self.party = flow.get("party")
        self.organization = flow.get("organization")
        self.host = flow.get("host")
        self.audit_error = flow.get("audit_error")
        self.findings = msgspec.convert(list(flow.get("findings") or ()), tuple[Finding, ...])


def evaluate_claims(report: Mapping[str, Any], claims: ClaimSet) -> list[dict[str, Any]]:
    """Every claim of the set over a built report dict (its flows, persistent ids,
    markers, after_opt_out), in file order."""
    flows = [_Flow(flow) for flow in report.get("flows") or ()]
    position = {flow.id: i for i, flow in enumerate(flows)}
    linked = [(entry, [position[i] for i in entry.get("flows") or () if i in position])
              for entry in report.get("persistent_ids") or ()]
    facts = SessionFacts(inputs=report.get("inputs") or {}, markers=report.get("markers") or (),
                         after_opt_out=report.get("after_opt_out")
                         if "after_opt_out" in report else None, linked=linked)
    evaluation = ClaimsEvaluation(claims, facts)
    for i, flow in enumerate(flows):
        evaluation.add(i, flow)
    return evaluation.entries(facts, lambda i: flows[i].purpose, lambda i: flows[i].id)
