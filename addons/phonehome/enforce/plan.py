"""Deciding what enforce mode does with one flow: pass, redact or block.

The first level with something to say decides (see below); within a level the
strongest action wins. A plan names locations, never values: safe to log and store.
"""

# Levels, in order:
# 1. the enforce file's `rules:` entries for the rules that explain the flow;
# 2. its `categories:` entries (the flow's categories and its findings'),
#    and `findings:` entries that say `block`;
# 3. the rule's own `action`;
# 4. the mode, only for flows whose purpose it acts on (`purposes`, by default
#    telemetry): `block` blocks them, `redact` redacts their flagged values.
# Then `findings:` entries adjust which values a redaction replaces: `redact` adds
# its findings (also on flows that would pass), `observe` keeps them. A flow to be
# redacted whose body could not be read in full is blocked: what cannot be seen
# cannot be checked.


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model import Classification, Finding, Observation, Payload, severity_rank
from ..terms import ACTIONS, action_rank
from .policy import Action, EnforcePolicy

__all__ = ["EnforcementPlan", "plan_enforcement", "is_telemetry"]

@dataclass(frozen=True)
class EnforcementPlan:
    """What to do with one flow; `targets` are (finding type, location) pairs."""

    action: str
    """pass, redact or block."""
    reason: str
    dry_run: bool = False
    status: int = 204
    """The local answer's status when blocking."""
    targets: tuple[tuple[str, str], ...] = ()
    """The findings a redaction replaces; for a block, every finding kept from leaving."""

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(location for _, location in self.targets))

    def selects(self, finding: Finding) -> bool:
        return (finding.type, finding.location) in self.targets


def is_telemetry(classification: Classification) -> bool:
    """Whether a rule classified the flow as telemetry (the mode's default target)."""
    return classification.purpose == "telemetry"


def _unread(payload: Payload | None) -> str:
    """Why the body was not read in full ("" when it was)."""
    if payload is None:
        return ""
    if payload.opaque:
        return f"opaque body ({payload.opaque})"
    if payload.truncated:
        return f"body only partly decoded ({payload.truncated[0]})"
    return ""


def _strongest(found: list[tuple[Action, str]]) -> tuple[Action, str] | None:
    best: tuple[Action, str] | None = None
    for item in found:
        if best is None or action_rank(item[0].action) > action_rank(best[0].action):
            best = item
    return best


def _describe(action: Action, what: str) -> str:
    scope = []
    if action.parties:
        scope.append("party " + "/".join(action.parties))
    if action.purposes:
        scope.append("purpose " + "/".join(action.purposes))
    where = f" ({action.where})" if action.where else ""
    return f"enforce file: {what}" + (f" [{', '.join(scope)}]" if scope else "") + where


def plan_enforcement(
    policy: EnforcePolicy,
    observation: Observation | None,
    payload: Payload | None,
    classification: Classification,
    findings: Sequence[Finding],
) -> EnforcementPlan:
    """The plan for one flow. Pure: reads its arguments, changes nothing."""
    dry = policy.dry_run
    status = policy.block_status
    if not policy.enabled:
        return EnforcementPlan("pass", "observe mode", dry, status)
    purpose, party = classification.purpose, classification.party
    floor = severity_rank(policy.min_severity)
    flagged = [f for f in findings if severity_rank(f.severity) >= floor]
    categories = list(dict.fromkeys([*classification.categories, *(f.category for f in flagged)]))

    decision: Action | None = None
    reason = ""
    # 1. per-rule entries name their flows explicitly
    found = [(a, f"rule {rid}") for rid in classification.rule_ids
             if (a := policy.by_rule.get(rid)) is not None
             and a.applies(purpose, party, named=True)]
    best = _strongest(found)
    # 2. per-category entries, and finding types that block the flow
    if best is None:
        found = [(a, f"category {c}") for c in categories
                 if (a := policy.by_category.get(c)) is not None and a.applies(purpose, party)]
        found += [(a, f"finding {t}") for t in dict.fromkeys(f.type for f in flagged)
                  if (a := policy.by_finding.get(t)) is not None and a.action == "block"
                  and a.applies(purpose, party)]
        best = _strongest(found)
    if best is not None:
        decision, reason = best[0], _describe(*best)
    # 3. the rule's own action
    elif classification.action in ACTIONS:
        decision = Action(classification.action)
        ids = ", ".join(classification.rule_ids) or "a rule"
        reason = f"rule action ({ids}): {classification.action}"
    # 4. the mode, for the purposes it acts on
    elif purpose not in policy.purposes:
        decision = Action("observe")
        reason = (f"{purpose} traffic is left alone by {policy.mode} mode "
                  f"(it acts on {'/'.join(policy.purposes) or 'no purpose'})")
    elif policy.mode == "block":
        decision = Action("block")
        reason = f"block mode: {purpose} to {party} party"
    else:
        decision = Action("redact")
        reason = f"{policy.mode} mode: flagged values in {purpose} traffic"

    unread = _unread(payload)
    if decision.action == "redact" and unread:
        decision = Action("block", decision.status)
        reason = f"{reason}; fail-closed: {unread}, so nothing in it can be checked"

    if decision.action == "block":
        targets = tuple(dict.fromkeys((f.type, f.location) for f in flagged))
        return EnforcementPlan("block", reason, dry, decision.status or status, targets)

    selected: list[Finding] = []
    extra: list[str] = []
    for finding in flagged:
        entry = policy.by_finding.get(finding.type)
        if entry is not None and entry.action != "block" and entry.applies(purpose, party):
            if entry.action == "redact":
                selected.append(finding)
                if decision.action != "redact" and finding.type not in extra:
                    extra.append(finding.type)
            continue  # observe: kept as sent
        if decision.action == "redact":
            selected.append(finding)
    if not selected:
        why = reason if decision.action == "observe" else f"{reason}; nothing flagged to redact"
        return EnforcementPlan("pass", why, dry, status)
    if extra:
        reason = f"{reason}; enforce file: findings {', '.join(extra)} → redact"
    targets = tuple(dict.fromkeys((f.type, f.location) for f in selected))
    return EnforcementPlan("redact", reason, dry, status, targets)
