"""The whole-session analysis (audited app, timeline, persistent ids, finding groups,
fleet, claims, counts) over the store read twice as a stream of light views: first
what the timeline reads of each flow, then each flow with its context, counted. A
flow a stage fails on is left out of that stage and says why (`audit_error`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
from msgspec import UNSET

from .. import __version__
from ..bundled import builtin_rules_dir
from ..model import Marker, most_severe
from .app import AppVotes, party_for
from .claims import ClaimsEvaluation, SessionFacts, load_claims
from .columns import FlowIds, IdList, Interned, Lookup
from .digest import Digest, DigestKeys
from .fleet import Fleet
from .groups import FindingGroup, FindingGroups
from .persistent import PersistentIds, RecurringIds, only_recurring
from .records import AuditError, FlowRecord, FlowView, flow_from_mapping, to_builtins
from .tally import SessionTally, Summary, Tally
from .timeline import FlowContext, Timeline, TimelineColumns, TimelineFlow, apply_timeline
from .timeline.values import MUTED_AUDIO_REASON

__all__ = ["AfterOptOut", "Analysis", "FlowSource", "MemoryFlows", "SessionReport", "analyze",
           "apply_context", "app_claims_paths", "build_report", "highest_severity", "SCHEMA_ID"]

SCHEMA_ID = "phonehome.report/1"
FlowT = TypeVar("FlowT", FlowView, FlowRecord)


class FlowSource(Protocol):
    """A store's contents: its flows, streamed in report order, any number of times."""

    def flows(self, kind: type[FlowT]) -> Iterator[FlowT]: ...

    def markers(self) -> list[Marker]: ...


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


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


class AfterOptOut:
    """Whether the flow at a position was telemetry sent after the opt-out, as its
    timeline context says: the report's `after_opt_out`, asked by position."""

    def __init__(self, contexts: Sequence[FlowContext | None]) -> None:
        self.contexts = contexts

    def __contains__(self, position: object) -> bool:
        context = self.contexts[position]  # type: ignore[index]
        return context is not None and context.after_opt_out


@dataclass(frozen=True)
class Analysis:
    """Everything the session's analysis found, as values; the formats render it."""

    head: dict[str, Any]
    """The report's sections before `flows`, in JSON order."""
    tail: dict[str, Any]
    """The sections after `flows`."""
    flow_count: int
    app: str | None
    """The audited app's pack id: first party means its vendor."""
    timeline: Timeline
    contexts: Sequence[FlowContext | None]
    """Each flow's context, by position in the session (None: left out of the timeline)."""
    ids: Sequence[str]
    """Each flow's id, by position."""
    stage_errors: Mapping[int, AuditError]
    """Flows a session stage left out, by position."""
    groups: list[FindingGroup]
    tally: Tally
    highest_severity: str | None


def _applied(flow: FlowT, position: int, ids: Sequence[str],
             contexts: Sequence[FlowContext | None], app: str | None,
             stage_errors: Mapping[int, AuditError]) -> FlowT:
    if position >= len(ids) or ids[position] != flow.id:
        raise RuntimeError("the store changed while the report was being written")
    return apply_context(flow, contexts[position], app, stage_errors.get(position))


def apply_context(flow: FlowT, context: FlowContext | None, app: str | None,
                  error: AuditError | None = None) -> FlowT:
    """`flow` with what the session found: its timeline context, its party for the
    audited app, and the error of a stage that left it out."""
    changes: dict[str, Any] = {}
    party = party_for(flow.party, flow.vendor_pack, app)
    if party != flow.party:
        changes["party"] = party
    if context is not None:
        changes.update(phase=context.phase, trigger=context.trigger,
                       trigger_source=context.trigger_source,
                       trigger_confidence=context.trigger_confidence,
                       trigger_reason=context.trigger_reason)
        if any(context.events):
            changes["events"] = tuple(
                event if pair is None else msgspec.structs.replace(
                    event, trigger=pair[0], trigger_source=pair[1])
                for event, pair in zip(flow.events, context.events, strict=True))
        if context.muted:
            changes["findings"] = tuple(
                msgspec.structs.replace(f, severity="high", reason=MUTED_AUDIO_REASON)
                if f.type == "audio_level" else f for f in flow.findings)
    if error is not None and not flow.audit_error:
        changes["audit_error"] = error
    return msgspec.structs.replace(flow, **changes) if changes else flow


def _timeline(flows: TimelineColumns, markers: Sequence[Marker],
              positions: array, stage_errors: dict[int, AuditError],
              session_errors: list[str]) -> tuple[Timeline, array]:
    """The timeline over every flow, and the positions it covers, but no flow can make
    it fail: when it raises, each flow it also fails on alone is left out (with an
    audit error)."""
    try:
        return apply_timeline(flows, markers), positions
    except Exception:  # noqa: BLE001 - find the flows it fails on
        pass
    kept, kept_positions = TimelineColumns(), array("I")
    for flow, position in zip(flows, positions, strict=True):
        try:
            apply_timeline([flow], markers)
        except Exception as e:  # noqa: BLE001 - this flow's data breaks the stage
            stage_errors.setdefault(position, AuditError(stage="timeline", reason=_reason(e)))
        else:
            kept.append(flow)
            kept_positions.append(position)
    try:
        return apply_timeline(kept, markers), kept_positions
    except Exception as e:  # noqa: BLE001 - it fails on flows only together
        session_errors.append(f"timeline: {_reason(e)}")
        return apply_timeline([], ()), array("I")


def _position_contexts(count: int, timeline: Timeline, positions: Sequence[int]) -> Lookup:
    """Each flow's timeline context by its position in the session (None: left out)."""
    table: list[FlowContext | None] = [None]
    indexes = array("I", bytes(4 * count))
    interned: Interned[FlowContext] = Interned()
    for position, context in zip(positions, timeline.contexts, strict=True):
        indexes[position] = interned.index_of(context) + 1
    table.extend(interned.values)
    return Lookup(indexes, table.__getitem__)


class _Stage:
    """A per-flow stage: a flow it fails on is left out of it and gets an audit error."""

    def __init__(self, name: str, stage_errors: dict[int, AuditError]) -> None:
        self.name = name
        self.stage_errors = stage_errors

    def run(self, position: int, flow: FlowView, step: Callable[[], None]) -> FlowView:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - this flow's data breaks the stage
            error = AuditError(stage=self.name, reason=_reason(e))
            if not flow.audit_error:
                self.stage_errors.setdefault(position, error)
                return msgspec.structs.replace(flow, audit_error=error)
        return flow


def analyze(
    source: FlowSource,
    *,
    inputs: Mapping[str, Any] | None = None,
    claims_paths: Sequence[Path] | None = None,
    app: str | None = None,
    generated_at: str | None = None,
) -> Analysis:
    """Every session stage over `source`'s flows, in two streaming passes.

    `app` overrides the audited app the inputs name (a pack id or "auto"); the
    claims checked are that app vendor's unless `claims_paths` is given.
    ValueError for an app no loaded pack describes.
    """
    inputs = dict(inputs or {})
    markers = source.markers()
    session_errors: list[str] = []
    stage_errors: dict[int, AuditError] = {}

    # pass 1: what the timeline and the app read of each flow, kept in a few bytes a flow
    votes = AppVotes()
    digest_keys = DigestKeys()
    recurring_ids = RecurringIds()
    ids = FlowIds()
    purposes: Interned[str] = Interned()
    timeline_positions = array("I")
    timeline_flows = TimelineColumns(IdList(timeline_positions, ids))
    for position, flow in enumerate(source.flows(FlowView)):
        ids.append(flow.id)
        purposes.append(flow.purpose)
        votes.add(flow.vendor_pack, flow.purpose, flow.organization)
        digest_keys.learn(flow.findings)
        recurring_ids.add(flow.identifiers)
        try:
            timeline_flows.append(TimelineFlow.of(flow))
        except Exception as e:  # noqa: BLE001 - this flow's data breaks the stage
            stage_errors.setdefault(position, AuditError(stage="timeline", reason=_reason(e)))
            continue
        timeline_positions.append(position)
    count = len(ids)

    requested, known_apps = app or inputs.get("app"), inputs.get("apps") or {}
    audited = votes.resolve(requested, known_apps)  # ValueError: an unknown app
    app_name = audited["name"]

    timeline, timeline_positions = _timeline(timeline_flows, markers, timeline_positions,
                                             stage_errors, session_errors)
    contexts = _position_contexts(count, timeline, timeline_positions)
    del timeline_flows, timeline_positions

    facts_base = dict(inputs=inputs, markers=timeline.markers,
                      after_opt_out=AfterOptOut(contexts))
    claim_sets = []
    paths = app_claims_paths(app_name) if claims_paths is None else claims_paths
    for path in paths:
        claim_sets.append(load_claims(path))
    evaluations = [ClaimsEvaluation(claims, SessionFacts(**facts_base),  # type: ignore[arg-type]
                                    item_of=digest_keys.key_of)
                   for claims in claim_sets]

    # pass 2: each flow as the report shows it, counted
    recurring = recurring_ids.recurring()
    persistent, summary, groups = PersistentIds(), Summary(), FindingGroups()
    fleet, tally, digest = Fleet(), SessionTally(), Digest(digest_keys)
    any_sensor = False
    severities: dict[str, None] = {}
    audit_errors = 0
    stages = {name: _Stage(name, stage_errors)
              for name in ("persistent_ids", "summary", "finding_groups", "digest", "claims")}
    for position, flow in enumerate(source.flows(FlowView)):
        linking = only_recurring(flow.identifiers, recurring)
        flow = _applied(flow, position, ids, contexts, app_name, stage_errors)
        flow = stages["persistent_ids"].run(position, flow, lambda f=flow, p=position, i=linking: (
            persistent.add(p, str(f.source or "live"), i)))
        flow = stages["summary"].run(position, flow, lambda f=flow: summary.add(f))
        flow = stages["finding_groups"].run(position, flow, lambda f=flow, p=position: (
            groups.add(p, f.id, f.timestamp, f.host, f.trigger, f.findings)))
        flow = stages["digest"].run(position, flow, lambda f=flow: digest.add(f))
        for evaluation in evaluations:
            flow = stages["claims"].run(position, flow, lambda f=flow, p=position, e=evaluation: (
                e.add(p, f)))
        any_sensor = any_sensor or flow.sensor is not UNSET
        fleet.add(str(flow.sensor or ""), flow.host, flow.timestamp, len(flow.findings),
                  linking)
        tally.add(flow)
        audit_errors += bool(flow.audit_error)
        severities.update(dict.fromkeys(finding.severity for finding in flow.findings))

    linked = persistent.linked()
    persistent_ids = persistent.entries(ids)
    facts = SessionFacts(**facts_base,  # type: ignore[arg-type]
                         linked=[(entry, seen.flows)
                                 for entry, (_, seen) in zip(persistent_ids, linked,
                                                             strict=True)])
    digest_entries, digest_ids = digest.entries()
    claims: list[dict[str, Any]] = []
    for evaluation in evaluations:
        claims.extend(evaluation.entries(facts, purposes.__getitem__, ids.__getitem__,
                                         digest_ids))
    worst = most_severe([*severities, *(entry["severity"] for entry in persistent_ids)])

    summary_section = summary.section()
    if persistent_ids:  # found across flows, not by a per-flow detector
        summary_section["by_finding_type"]["persistent_id"] = len(persistent_ids)
    # a flow left out of a stage is counted as an audit error
    summary_section["audit_errors"] = audit_errors
    if session_errors:
        inputs["session_errors"] = session_errors
    head = {
        "schema": SCHEMA_ID,
        "generated_at": generated_at or _dt.datetime.now(_dt.timezone.utc).isoformat(
            timespec="seconds"),
        "tool": {"name": "phonehome", "version": __version__, "mitmproxy": _mitmproxy_version()},
        "inputs": inputs,
        "app": audited,
        "digest": digest_entries,
        "claims": claims,
        "summary": summary_section,
    }
    group_list = groups.groups()
    tail: dict[str, Any] = {
        "cadence": timeline.cadence,
        "phases": timeline.phases,
        "markers": timeline.markers,
        "after_opt_out": timeline.after_opt_out,
        "persistent_ids": persistent_ids,
    }
    if any_sensor:  # from a shared store
        tail["fleet"] = fleet.section()
    tail["finding_groups"] = group_list
    return Analysis(head=head, tail=tail, flow_count=count, app=app_name, timeline=timeline,
                    contexts=contexts, ids=ids, stage_errors=stage_errors, groups=group_list,
                    tally=tally.tally(timeline.cadence), highest_severity=worst)


class MemoryFlows:
    """Flow records held in memory (dicts shaped like the store's), as a FlowSource."""

    def __init__(self, records: Iterable[Mapping[str, Any]], markers: Sequence[Marker] = ()):
        self._records = sorted(records, key=lambda r: (_sort_time(r.get("timestamp")),
                                                       str(r.get("id"))))
        self._markers = list(markers)

    def flows(self, kind: type[FlowT]) -> Iterator[FlowT]:
        for index, record in enumerate(self._records):
            try:
                yield msgspec.convert(_raw_decoded(record), kind)
            except msgspec.ValidationError:
                yield flow_from_mapping(record, kind, index)

    def markers(self) -> list[Marker]:
        return list(self._markers)

    def count(self) -> int:
        return len(self._records)


def _raw_decoded(record: Mapping[str, Any]) -> Mapping[str, Any]:
    if "decoded" not in record:
        return record
    try:
        decoded = msgspec.json.encode(record["decoded"])
    except (TypeError, ValueError, OverflowError):
        decoded = b"null"
    return {**record, "decoded": msgspec.Raw(decoded)}


def _sort_time(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def report_flows(analysis: Analysis, source: FlowSource,
                 kind: type[FlowT] = FlowRecord) -> Iterator[FlowT]:  # type: ignore[assignment]
    """The session's flows as the report shows them, streamed. A flow the analysis did
    not see (one another sensor added since) is left out."""
    ids, position = analysis.ids, 0
    for flow in source.flows(kind):
        if position >= len(ids):
            return
        if flow.id != ids[position]:
            continue
        yield apply_context(flow, analysis.contexts[position], analysis.app,
                            analysis.stage_errors.get(position))
        position += 1


@dataclass(frozen=True)
class SessionReport:
    """A session's analysis, and the store it came from, to stream its flows again."""

    analysis: Analysis
    open: Callable[[], AbstractContextManager[FlowSource]]
    """Opens the store for one more pass over the flows."""

    @contextlib.contextmanager
    def flows(self, kind: type[FlowT] = FlowRecord  # type: ignore[assignment]
              ) -> Iterator[Iterator[FlowT]]:
        with self.open() as source:
            yield report_flows(self.analysis, source, kind)

    def to_dict(self, *, decoded: bool = True) -> dict[str, Any]:
        """The whole report in memory (for a diff, or a small session)."""
        with self.flows(FlowRecord if decoded else FlowView) as flows:
            listed = [to_builtins(flow) for flow in flows]
        return {**to_builtins(self.analysis.head), "flows": listed,
                **to_builtins(self.analysis.tail)}


def highest_severity(report: SessionReport | Mapping[str, Any]) -> str | None:
    """The most severe finding in a report (its flows' and its persistent ids'), or None."""
    if isinstance(report, SessionReport):
        return report.analysis.highest_severity
    severities = [f["severity"] for flow in report.get("flows", ())
                  for f in flow.get("findings") or ()]
    severities += [entry.get("severity", "medium") for entry in report.get("persistent_ids", ())]
    return most_severe(severities)


def build_report(
    records: Iterable[Mapping[str, Any]],
    markers: Sequence[Marker] = (),
    *,
    inputs: Mapping[str, Any] | None = None,
    claims_paths: Sequence[Path] | None = None,
    app: str | None = None,
) -> dict[str, Any]:
    """The whole report as one dict, for records held in memory (tests, small sessions)."""
    source = MemoryFlows(records, markers)
    analysis = analyze(source, inputs=inputs, claims_paths=claims_paths, app=app)
    return SessionReport(analysis, lambda: contextlib.nullcontext(source)).to_dict()
