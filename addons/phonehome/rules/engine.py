"""The rule engine: which rules explain a flow, and what they say about it.

Candidates by `match.domains` (a dict lookup), then `match.filter` on the request
capture kept (verdicts on the request line remembered); each candidate evaluated
(evaluate.py says what that means, accelerate.py does it fast); hits summed up.
"""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..capture.request_view import request_flow, request_line
from ..model import TRIGGER_SPECIFICITY, Classification, EventHit, Observation, Payload
from ..terms import strongest_action
from .accelerate import FastRule, RuleInput, evaluate_fast
from .compile import compile_rule
from .evaluate import Evaluation, RuleHit, evaluate_plainly, most_specific
from .memo import DEFAULT_LIMIT, MemoPool
from .party import (
    Attribution,
    DomainResolver,
    PartyEntry,
    PartyIndex,
    attribute,
    host_suffixes,
    is_ip_or_local,
)
from .schema import Pack, Rule
from .vocabulary import Vocabulary

__all__ = ["RuleSet", "RuleHit", "Evaluation", "TRIGGER_SPECIFICITY", "most_specific"]


# --- the rule set -----------------------------------------------------------------


class _Plan:
    """The rules to try for one host, and how to key their remembered filter verdicts."""

    __slots__ = ("rules", "tag", "settled", "verdicts", "pool")

    def __init__(self, rules: Sequence[FastRule], tag: str,
                 verdicts: dict[Any, tuple[bool | None, ...]], pool: MemoPool) -> None:
        self.rules = tuple(rules)
        self.tag = tag
        self.verdicts = verdicts
        self.pool = pool
        self.settled = any(r.c.verdict is not None for r in self.rules)
        """Whether the request line can settle some rule's filter."""

    def filter_verdicts(self, view: RuleInput) -> tuple[bool | None, ...] | None:
        """Per rule: True/False when the request line settles its filter, else None."""
        if not self.settled:
            return None
        key = (self.tag, request_line(view.obs))
        verdicts = self.verdicts.get(key)
        if verdicts is None:
            flow = view.flow
            verdicts = tuple(True if r.c.rule.filter is None
                             else r.c.verdict(flow) if r.c.verdict is not None
                             else None
                             for r in self.rules)
            self.pool.remember(self.verdicts, key, verdicts)
        return verdicts


class RuleSet:
    """Loaded, validated and compiled packs.

    The rules never change; the memo tables behind `classify` are bounded
    (`memo_limit` entries in all) and never change a result, so a RuleSet is
    safe to share. `app` is the audited app (a first-party pack id, see
    `apps`): its vendor is the first party; None leaves every app vendor first
    until the report picks one. `reference` evaluates every flow the plain way
    (evaluate.py, whole filters), which the fast path is tested against.
    """

    def __init__(self, packs: Sequence[Pack], resolver: DomainResolver, *,
                 memo_limit: int = DEFAULT_LIMIT, app: str | None = None,
                 reference: bool = False) -> None:
        self.packs: tuple[Pack, ...] = tuple(packs)
        self.apps: tuple[str, ...] = tuple(
            p.id for p in self.packs if p.party == "first" and not p.fallback
            and (p.domains or any(r.domains for r in p.rules)))
        """The apps a pack describes: first-party packs that own domains."""
        if app is not None and app not in self.apps:
            raise ValueError(f"unknown app {app!r}: no loaded first-party pack has that id "
                             f"(apps: {', '.join(self.apps) or 'none'})")
        self.app = app
        self.rules: tuple[Rule, ...] = tuple(r for p in self.packs for r in p.rules)
        self._resolver = resolver
        self._reference = reference
        self._pool = MemoPool(0 if reference else memo_limit)
        compiled: list[FastRule] = []
        each_tables: dict[str, dict[Any, Any]] = {}
        for pack in self.packs:
            for rule in pack.rules:
                compiled.append(FastRule(compile_rule(rule, len(compiled), pack), self._pool,
                                         each_tables))
        self._packs_by_id = {pack.id: pack for pack in self.packs}
        self.vocabulary = Vocabulary.combine(p.vocabulary for p in self.packs if p.vocabulary)
        self._main = [r for r in compiled if not r.c.pack.fallback]
        self._fallback = [r for r in compiled if r.c.pack.fallback]
        self._by_domain: dict[str, list[FastRule]] = {}
        self._anywhere: list[FastRule] = []
        for r in self._main:
            if r.c.rule.domains:
                for domain in r.c.rule.domains:
                    self._by_domain.setdefault(domain, []).append(r)
            else:
                self._anywhere.append(r)
        entries: list[tuple[str, PartyEntry]] = []
        for pack in self.packs:
            if pack.fallback:
                continue
            for rule in pack.rules:
                org = rule.organization or pack.vendor or None
                entries.extend((d, PartyEntry(pack.party, org, pack.id)) for d in rule.domains)
            entries.extend((d, PartyEntry(pack.party, pack.vendor or None, pack.id))
                           for d in pack.domains)
        # Rule domains come first so a tracker's own organization wins.
        self._party = PartyIndex(entries, resolver)
        self._verdicts: dict[Any, tuple[bool | None, ...]] = self._pool.table()
        self._plans: dict[str, _Plan] = self._pool.table()
        self._hosts: dict[str, tuple[PartyEntry | None, bool]] = self._pool.table()
        self._shapes: dict[Any, Any] = self._pool.table()
        self._fallback_plan = _Plan(self._fallback, "\0fallback", self._verdicts,
                                    self._pool)

    def _candidates(self, host: str) -> list[FastRule]:
        found: dict[int, FastRule] = {r.c.index: r for r in self._anywhere}
        if self._by_domain:
            for suffix in host_suffixes(host):
                for r in self._by_domain.get(suffix, ()):
                    found[r.c.index] = r
        return [found[i] for i in sorted(found)]

    def _plan(self, host: str) -> _Plan:
        plan = self._plans.get(host)
        if plan is None:
            plan = _Plan(self._candidates(host), host, self._verdicts, self._pool)
            self._pool.remember(self._plans, host, plan)
        return plan

    def _run(self, plan: _Plan, view: RuleInput) -> list[RuleHit]:
        if self._reference:
            return self._run_plainly(plan.rules, view.obs, view.payload)
        hits = []
        verdicts = plan.filter_verdicts(view) if plan.rules else None
        for i, r in enumerate(plan.rules):
            verdict = verdicts[i] if verdicts is not None else None
            if verdict is None:
                verdict = r.c.rule.filter is None or bool(r.c.rule.filter(view.flow))
            if not verdict:
                continue
            hit = evaluate_fast(r, view)
            if hit is not None:
                hits.append(hit)
        return hits

    @staticmethod
    def _run_plainly(rules: Sequence[FastRule], obs: Observation,
                     payload: Payload) -> list[RuleHit]:
        hits = []
        for r in rules:
            if r.c.rule.filter is None or r.c.rule.filter(request_flow(obs)):
                hit = evaluate_plainly(r.c, payload)
                if hit is not None:
                    hits.append(hit)
        return hits

    def evaluate(self, obs: Observation, payload: Payload) -> Evaluation:
        """Classification plus what each rule found (used by the rule tests)."""
        view = RuleInput(obs, payload, self._pool, self._shapes)
        host = (obs.host or "").lower()
        hits = self._run(self._plan(host), view)
        explained = any(self.pack_of_hit(h).party == "first" for h in hits)
        fallback_hits: list[RuleHit] = []
        if not explained and self._fallback:
            fallback_hits = self._run(self._fallback_plan, view)
        all_hits = hits + fallback_hits
        return Evaluation(self._summarize(host, hits, fallback_hits), all_hits)

    def pack_of_hit(self, hit: RuleHit) -> Pack:
        return self._packs_by_id[hit.rule.pack]

    def classify(self, obs: Observation, payload: Payload) -> Classification:
        return self.evaluate(obs, payload).classification

    def _summarize(self, host: str, hits: list[RuleHit],
                   fallback_hits: list[RuleHit]) -> Classification:
        result = Classification()
        all_hits = hits + fallback_hits
        result.rule_ids = [h.rule.id for h in all_hits]
        result.events = [self._named(e) for h in all_hits for e in h.events]
        trigger = most_specific(e.trigger for e in result.events)
        if trigger is not None:
            result.trigger, result.trigger_source = trigger, "rule"
        result.categories = sorted({cat for h in all_hits for cat in h.categories})
        result.marks = list(dict.fromkeys(m for h in all_hits for m in h.marks))
        if hits:
            result.purpose = hits[0].rule.purpose
        elif fallback_hits:
            result.purpose = fallback_hits[0].rule.purpose
        result.action = strongest_action(h.rule.action for h in all_hits)
        where = self.attribute(host)
        result.party, result.organization = where.party, where.organization
        result.vendor_pack = where.vendor_pack
        return result

    def _named(self, event: EventHit) -> EventHit:
        """The event with what its name says, when no rule gave it a trigger."""
        if event.trigger is not None or event.name == event.rule_id or not self.vocabulary:
            return event
        verdict = self.vocabulary.judge(event.name)
        if verdict.trigger is None and not verdict.candidates:
            return event
        return replace(event, name_trigger=verdict.trigger, name_confidence=verdict.confidence,
                       name_candidates=verdict.candidates, name_reason=verdict.reason,
                       name_marks=verdict.marks)

    def _host_party(self, host: str) -> tuple[PartyEntry | None, bool]:
        """(the packs' entry for `host`, whether `host` has no registrable domain)."""
        known = self._hosts.get(host)
        if known is None:
            entry = self._party.lookup(host) if host else None
            no_domain = entry is None and (
                not host or is_ip_or_local(host) or self._resolver.registrable(host) is None)
            known = self._pool.remember(self._hosts, host, (entry, no_domain))
        return known

    def attribute(self, host: str) -> Attribution:
        """The host's party and organization: from the host alone, never from a rule
        that matched on the path."""
        entry, no_domain = self._host_party(host)
        return attribute(entry, not no_domain, self.app)
