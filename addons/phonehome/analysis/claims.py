"""Vendor claims checked against the session: one verdict per claim, with its evidence.

claims_file.py loads and validates the claims files; `ClaimsEvaluation` checks them
over the session's flows in one pass; `evaluate_claims` does the same over a built
report dict, and `run_claim_tests` runs the files' inline `tests:` through it.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

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
from .digest import ItemKey, digest_of_flows, entry_ids

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
    "ClaimsEvaluation",
    "SessionFacts",
    "evaluate_claims",
    "load_claims",
    "run_claim_tests",
]

EVIDENCE_LIMIT = 25
"""At most this many flow ids per verdict; `evidence_count` has the full number."""
CITED_ITEMS = 4_096
"""Distinct digest items a check keeps to cite (the digest keeps fewer)."""


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
    after_opt_out: Container[int] | None
    """Positions of the flows sent after the opt-out; None: not known."""
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
        self.item_of: Any = None
        self.items: dict[ItemKey, None] = {}
        """The digest items of the findings in evidence."""

    def cite(self, findings: Any) -> None:
        if self.item_of is None:
            return
        for finding in findings:
            key = self.item_of(finding)
            if key is not None and len(self.items) < CITED_ITEMS:
                self.items[key] = None

    def add(self, position: int, flow: Any) -> None:
        if flow.purpose in self.purposes:
            self.examine(position, flow)
            self.flows += 1
            self.broken += bool(flow.audit_error)

    def examine(self, position: int, flow: Any) -> None:
        """Look at one in-scope flow; raise before keeping anything if it is unusable."""

    def verdict(self, facts: SessionFacts, purpose_of: Any) -> _Verdict:
        raise NotImplementedError

    def _none_in_scope(self, absent: str) -> _Verdict:
        """The claim holds: no `absent` in any in-scope flow (some may not have been
        examined)."""
        return _Verdict("holds", f"no {absent} in {_plural(self.flows, self.scope + ' flow')}"
                                 f"{_unexamined_note(self.broken)}")


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
            finding
            for finding in flow.findings
            if finding.category in self.categories
            and (self.types is None or finding.type in self.types)
            and finding.type not in self.excluded
            and severity_rank(finding.severity) >= self.floor
        ]
        if matched:
            self.hits.add(position)
            self.kinds.update(finding.type for finding in matched)
            self.cite(matched)

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
        return self._none_in_scope(f"{self.what} findings")


class _AnonymizedCheck(_Check):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.encodings = set(params["encodings"]) if params["encodings"] else None
        self.identity = bytearray()
        """1 at the position of each in-scope flow that carries the user's identity."""
        self.identity_flows = 0
        self.used: Counter[str] = Counter()

    def examine(self, position: int, flow: Any) -> None:
        matched = [
            finding
            for finding in flow.findings
            if finding.type == "identity_match"
            and (self.encodings is None or _encoding_family(finding.encoding) in self.encodings)
        ]
        used = [finding.encoding or "plain" for finding in matched]
        if used:
            self.cite(matched)
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
        return self._none_in_scope("identity match and no persistent id")


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
            self.cite(flow.findings)
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
        self.after = facts.after_opt_out
        self.hits = _Hits()
        self.later = 0

    def add(self, position: int, flow: Any) -> None:
        # every flow counts here, not only those of the purposes
        if self.start is None:
            return
        later = flow.timestamp >= self.start
        after = position in self.after if self.after is not None else later
        if after and flow.purpose in self.purposes:
            self.hits.add(position)
            self.cite(flow.findings)
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
    organization, host, audit_error, findings), then `entries(...)`. `item_of` names
    a finding's digest item (DigestKeys.key_of), for the entries to cite.
    """

    def __init__(self, claims: ClaimSet, facts: SessionFacts, item_of: Any = None) -> None:
        self.claims = claims
        self.facts = facts
        self.checks = [_check_for(claim, facts) for claim in claims.claims]
        for check in self.checks:
            check.item_of = item_of

    def add(self, position: int, flow: Any) -> None:
        for check in self.checks:
            check.add(position, flow)

    def entries(self, facts: SessionFacts, purpose_of: Any, id_of: Any,
                digest_ids: Mapping[ItemKey, str] | None = None) -> list[dict[str, Any]]:
        """The report's `claims[]` entries, in file order. `purpose_of(position)` and
        `id_of(position)` describe the session's flows; `digest_ids` names the digest's
        entries, which a contradicted verdict cites (`digest`)."""
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
                "digest": entry_ids(check.items, digest_ids or {})
                if result.verdict == "contradicted" else [],
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
                 "findings", "trigger")

    def __init__(self, flow: Mapping[str, Any]) -> None:
        from .records import Finding

        self.id = flow.get("id")
        self.timestamp = float(flow.get("timestamp", 0))
        self.purpose = flow.get("purpose")
        self.party = flow.get("party")
        self.organization = flow.get("organization")
        self.host = flow.get("host")
        self.trigger = flow.get("trigger") or "unknown"
        self.audit_error = flow.get("audit_error")
        self.findings = msgspec.convert(list(flow.get("findings") or ()), tuple[Finding, ...])


def evaluate_claims(report: Mapping[str, Any], claims: ClaimSet) -> list[dict[str, Any]]:
    """Every claim of the set over a built report dict (its flows, persistent ids,
    markers, after_opt_out), in file order."""
    flows = [_Flow(flow) for flow in report.get("flows") or ()]
    position = {flow.id: i for i, flow in enumerate(flows)}
    linked = [(entry, [position[i] for i in entry.get("flows") or () if i in position])
              for entry in report.get("persistent_ids") or ()]
    after_ids = set(report.get("after_opt_out") or ())
    after_opt_out = ({i for i, flow in enumerate(flows) if flow.id in after_ids}
                     if "after_opt_out" in report else None)
    facts = SessionFacts(inputs=report.get("inputs") or {}, markers=report.get("markers") or (),
                         after_opt_out=after_opt_out, linked=linked)
    _, keys, digest_ids = digest_of_flows(flows)
    evaluation = ClaimsEvaluation(claims, facts, item_of=keys.key_of)
    for i, flow in enumerate(flows):
        evaluation.add(i, flow)
    return evaluation.entries(facts, lambda i: flows[i].purpose, lambda i: flows[i].id,
                              digest_ids)


def run_claim_tests(claims: ClaimSet) -> list[tuple[Claim, list[str]]]:
    """Each claim with the failures of its inline tests (one line each; none: passed)."""
    results = []
    for claim in claims.claims:
        failures = []
        alone = dataclasses.replace(claims, claims=(claim,))
        for test in claim.tests:
            entry = evaluate_claims(test.report, alone)[0]
            label = f"{claim.id} [{test.name}, line {test.line}]"
            if entry["verdict"] != test.verdict:
                failures.append(f"{label}: {entry['verdict']} ({entry['reason']}), "
                                f"expected {test.verdict}")
            elif test.evidence is not None and entry["evidence"] != list(test.evidence):
                failures.append(f"{label}: evidence {entry['evidence']}, "
                                f"expected {list(test.evidence)}")
        results.append((claim, failures))
    return results
