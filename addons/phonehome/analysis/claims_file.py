"""Claims files (rules/claims/<vendor>.yaml): loaded, validated, and their inline tests.

A claim quotes what a vendor says and names one check from the closed set `CHECKS`.
`load_claims` reports every problem as `path:line:col: message`. A claim's `tests:`
give a small report and the verdict the check must reach on it (`phonehome claims test`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..model import CATEGORIES, FINDING_TYPES, PARTIES, PURPOSES, SEVERITIES
from ..yamldoc import Checker, DocumentError, LDict, LList, Pos, did_you_mean, load_document

__all__ = ["CHECKS", "CLAIMS_SCHEMA", "VERDICTS", "Claim", "ClaimSet", "ClaimSource", "ClaimTest",
           "ClaimsError", "load_claims"]

CLAIMS_SCHEMA = "phonehome.claims/1"
VERDICTS = ("holds", "contradicted", "untested")

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")

ClaimsError = DocumentError
"""A claims file that cannot be used; `.errors` holds every problem."""


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
class ClaimTest:
    """A small report and the verdict the claim's check must reach on it."""

    name: str
    report: Mapping[str, Any]
    verdict: str
    evidence: tuple[str, ...] | None
    """The flow ids that must be the evidence, in report order (None: not checked)."""
    line: int


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
    tests: tuple[ClaimTest, ...] = ()


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

_TOP_KEYS = ("schema", "vendor", "description", "claims")
_CLAIM_KEYS = ("id", "statement", "check", "params", "quote", "source", "tests")
_SOURCE_KEYS = ("title", "url", "section", "note")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _words(text: str) -> str:
    return " ".join(text.split())


def load_claims(path: Path) -> ClaimSet:
    """Read and validate a claims file. Raises ClaimsError listing every problem."""
    path = Path(path)
    chk = Checker(str(path))
    data, problems = load_document(path, chk.display)
    chk.errors.extend(problems)
    if not isinstance(data, LDict):
        if data is not None or not problems:
            chk.err(getattr(data, "pos", Pos(1, 1)), "a claims file is a mapping with `claims:`")
        chk.raise_errors()
    assert isinstance(data, LDict)
    chk.keys(data, data.pos, _TOP_KEYS, (), "the claims file")
    if data.get("schema") != CLAIMS_SCHEMA:
        chk.err(chk.vpos(data, "schema"), f"`schema` must be {CLAIMS_SCHEMA!r}")
    vendor = data.get("vendor")
    if not _text(vendor):
        chk.err(chk.vpos(data, "vendor"), "`vendor` must be a non-empty string")
    raw_claims = data.get("claims")
    if not isinstance(raw_claims, LList) or not raw_claims:
        chk.err(chk.vpos(data, "claims"), "`claims` must be a non-empty list")
        raw_claims = LList()
        raw_claims.item_pos = []
    claims: list[Claim] = []
    first_line: dict[str, int] = {}
    for raw, pos in zip(raw_claims, raw_claims.item_pos, strict=True):
        claim = _claim(chk, raw, pos)
        if claim is None:
            continue
        if claim.id in first_line:
            chk.err(pos, f"duplicate claim id {claim.id!r} (first at line {first_line[claim.id]})")
        else:
            first_line[claim.id] = pos.line
        claims.append(claim)
    chk.raise_errors()
    return ClaimSet(path=path, vendor=str(vendor).strip(), claims=tuple(claims))


def _claim(chk: Checker, raw: Any, pos: Pos) -> Claim | None:
    before = len(chk.errors)
    if not chk.keys(raw, pos, _CLAIM_KEYS, (), "claim", "each claim is a mapping"):
        return None
    claim_id = raw.get("id")
    if not isinstance(claim_id, str) or not _ID_RE.match(claim_id):
        chk.err(chk.vpos(raw, "id"), "claim `id` must be a slug like 'webex-no-personal-data'")
    if not _text(raw.get("statement")):
        chk.err(chk.vpos(raw, "statement"), "claim `statement` must be a non-empty string")
    quote = raw.get("quote")
    if quote is not None and not _text(quote):
        chk.err(chk.vpos(raw, "quote"), "`quote` must be a non-empty string when given")
    source = _source(chk, raw.get("source"), chk.vpos(raw, "source"))
    check = raw.get("check")
    params: dict[str, Any] = {}
    if check not in CHECKS:
        chk.err(chk.vpos(raw, "check"), f"unknown check {check!r}; choose from {', '.join(CHECKS)}"
                                    f"{did_you_mean(check, CHECKS)}")
    else:
        params = _params(chk, check, raw.get("params"), chk.vpos(raw, "params"))
    tests = _tests(chk, raw) if check in CHECKS else ()
    if len(chk.errors) > before or source is None:
        return None
    return Claim(id=claim_id, statement=_words(raw["statement"]), check=check,
                 params=MappingProxyType(params), source=source,
                 quote=_words(quote) if quote else None, line=pos.line, tests=tests)


def _source(chk: Checker, raw: Any, pos: Pos) -> ClaimSource | None:
    before = len(chk.errors)
    if not chk.keys(raw, pos, _SOURCE_KEYS, (), "source",
                    "claim `source` must be a mapping with at least `title`"):
        return None
    for key in _SOURCE_KEYS:
        value = raw.get(key)
        if (key == "title" or value is not None) and not _text(value):
            chk.err(chk.vpos(raw, key), f"source `{key}` must be a non-empty string")
    if len(chk.errors) > before:
        return None
    return ClaimSource(title=_words(raw["title"]), url=raw.get("url"),
                       section=raw.get("section"),
                       note=_words(raw["note"]) if raw.get("note") else None)


def _params(chk: Checker, check: str, raw: Any, pos: Pos) -> dict[str, Any]:
    spec = CHECKS[check]
    if raw is None:
        raw = LDict()
        raw.pos, raw.key_pos, raw.value_pos = pos, {}, {}
    if not isinstance(raw, LDict):
        chk.err(pos, "`params` must be a mapping")
        return {}
    params: dict[str, Any] = {}
    for key, value in raw.items():
        here = raw.key_pos[key]
        if key not in spec:
            allowed = ", ".join(spec) or "(none)"
            chk.err(here, f"check {check} has no parameter {key!r}; it takes {allowed}"
                          f"{did_you_mean(key, spec)}")
            continue
        problem = _VALIDATORS[spec[key].kind](value)
        if problem:
            chk.err(here, f"{check}.{key}: {problem}")
            continue
        params[key] = tuple(value) if isinstance(value, list) else value
    for key, param in spec.items():
        params.setdefault(key, param.default)
    return params


# --- inline tests ------------------------------------------------------------------------

_TEST_KEYS = ("name", "flows", "markers", "persistent_ids", "identity", "verdict", "evidence")
_FLOW_KEYS = ("id", "purpose", "party", "organization", "host", "timestamp", "findings",
              "audit_error")
_FINDING_KEYS = ("type", "category", "severity", "encoding")
_MARKER_KEYS = ("label", "timestamp")
_PERSISTENT_KEYS = ("key", "flows", "flow_count", "capture_count")


def _tests(chk: Checker, claim: LDict) -> tuple[ClaimTest, ...]:
    """`tests:` of one claim: each a small report and the verdict it must get."""
    raw = claim.get("tests")
    if raw is None:
        return ()
    if not isinstance(raw, LList):
        chk.err(chk.vpos(claim, "tests"), "`tests` must be a list")
        return ()
    tests = []
    for index, (item, pos) in enumerate(zip(raw, raw.item_pos, strict=True)):
        if not chk.keys(item, pos, _TEST_KEYS, ("verdict",), "a claim test"):
            continue
        verdict = chk.string(item, "verdict", choices=VERDICTS)
        flows = [_flow(chk, f, p, n) for n, (f, p) in enumerate(_items(chk, item, "flows"), 1)]
        report: dict[str, Any] = {
            "flows": flows,
            "markers": [_plain(chk, m, p, _MARKER_KEYS, "a marker")
                        for m, p in _items(chk, item, "markers")],
            "persistent_ids": [_plain(chk, e, p, _PERSISTENT_KEYS, "a persistent id")
                               for e, p in _items(chk, item, "persistent_ids")],
            "inputs": {"identity": "identity.yaml" if item.get("identity") is True else None},
        }
        if "identity" in item and not isinstance(item["identity"], bool):
            chk.err(chk.vpos(item, "identity"), "`identity` must be true or false")
        evidence = None
        if "evidence" in item:
            evidence = tuple(v for v, _ in chk.strings(item, "evidence", single=False))
        if verdict is not None:
            name = chk.string(item, "name") or f"test {index + 1}"
            tests.append(ClaimTest(name, MappingProxyType(report), verdict, evidence, pos.line))
    return tuple(tests)


def _items(chk: Checker, m: LDict, key: str) -> list[tuple[Any, Pos]]:
    raw = m.get(key)
    if raw is None:
        return []
    if not isinstance(raw, LList):
        chk.err(chk.vpos(m, key), f"`{key}` must be a list")
        return []
    return list(zip(raw, raw.item_pos, strict=True))


def _plain(chk: Checker, raw: Any, pos: Pos, allowed: Sequence[str], what: str) -> Any:
    """A mapping with only `allowed` keys, as plain data."""
    if not chk.keys(raw, pos, allowed, (), what):
        return {}
    return {key: list(value) if isinstance(value, list) else value
            for key, value in raw.items()}


def _flow(chk: Checker, raw: Any, pos: Pos, number: int) -> dict[str, Any]:
    """A report flow: telemetry to a first party at time `number` unless it says otherwise."""
    flow: dict[str, Any] = {"id": f"f{number}", "timestamp": float(number),
                            "purpose": "telemetry", "party": "first", "findings": [],
                            "audit_error": None}
    if not chk.keys(raw, pos, _FLOW_KEYS, (), "a test flow"):
        return flow
    for key, choices in (("purpose", PURPOSES), ("party", PARTIES)):
        if key in raw:
            chk.choice(raw[key], chk.vpos(raw, key), key, choices)
    flow.update((k, v) for k, v in raw.items() if k != "findings")
    flow["findings"] = [_finding(chk, f, p) for f, p in _items(chk, raw, "findings")]
    return flow


def _finding(chk: Checker, raw: Any, pos: Pos) -> dict[str, Any]:
    # the fields a report's finding has, so a test flow reads like a captured one
    finding: dict[str, Any] = {"severity": "medium", "encoding": None, "location": "$",
                               "detector": "claims-test", "evidence": ""}
    if not chk.keys(raw, pos, _FINDING_KEYS, ("type", "category"), "a test finding"):
        return finding
    for key, choices in (("type", FINDING_TYPES), ("category", CATEGORIES),
                         ("severity", SEVERITIES)):
        if key in raw:
            chk.choice(raw[key], chk.vpos(raw, key), key, choices)
    finding.update(raw)
    return finding
