"""What the formats for people (terminal, Markdown, HTML) show, in bounded size: the
digest, the whole-session analysis, the finding groups, and the flows shown in full (all of a
small session; of a large one, those behind the top groups and the claims' first
evidence). The rest is a count and a pointer to audit.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..analysis.digest import digest_of_flows
from ..analysis.groups import FindingGroups
from ..analysis.records import FlowView, flow_from_mapping, to_builtins
from ..analysis.session import Analysis, SessionReport
from ..analysis.tally import SessionTally, Tally
from ..analysis.timeline import Timeline, timeline_from_report

__all__ = ["Document", "document_from_report", "document_from_analysis", "as_document",
           "shown_flow_ids", "ALL_FLOWS_UP_TO",
           "TOP_GROUPS", "ROWS_SHOWN"]

ALL_FLOWS_UP_TO = 300
"""A session of at most this many flows shows every flow in full."""
TOP_GROUPS = 30
"""In a larger one, the flows behind this many top finding groups are shown ..."""
FLOWS_PER_GROUP = 3
"""... this many per group ..."""
EVIDENCE_PER_CLAIM = 5
"""... and the first evidence of each claim."""
ROWS_SHOWN = 100
"""Rows of each long table (endpoints, groups, cadence, markers …) shown."""
DESTINATIONS_SHOWN = 8
"""Destinations of each digest entry whose example flow is shown in full."""


@dataclass(frozen=True)
class Document:
    report: Mapping[str, Any]
    """The report's sections (plain JSON data), without `flows`."""
    timeline: Timeline
    tally: Tally
    groups: list[dict[str, Any]]
    flows: list[dict[str, Any]]
    """The flows shown in full, in session order."""
    flow_count: int
    digest: list[dict[str, Any]]
    """Each personal item and where it went (the report's `digest[]`), first screen first."""

    @property
    def flows_left(self) -> int:
        return self.flow_count - len(self.flows)

    @property
    def finding_count(self) -> int:
        return sum(int(group.get("count") or 0) for group in self.groups)


def shown_flow_ids(flow_count: int, groups: Sequence[Mapping[str, Any]],
                   claims: Sequence[Mapping[str, Any]],
                   digest: Sequence[Mapping[str, Any]] = ()) -> set[str] | None:
    """The ids of the flows a large session shows in full (None: all of them)."""
    if flow_count <= ALL_FLOWS_UP_TO:
        return None
    wanted: dict[str, None] = {}
    for entry in digest[:ROWS_SHOWN]:
        wanted[str(entry.get("example_flow"))] = None
        for destination in list(entry.get("destinations") or ())[:DESTINATIONS_SHOWN]:
            wanted[str(destination.get("example_flow"))] = None
    for group in groups[:TOP_GROUPS]:
        wanted.update(dict.fromkeys(str(i) for i in list(group.get("flows") or ())
                                    [:FLOWS_PER_GROUP]))
    for claim in claims:
        wanted.update(dict.fromkeys(str(i) for i in list(claim.get("evidence") or ())
                                    [:EVIDENCE_PER_CLAIM]))
    return set(wanted)


def document_from_report(report: Mapping[str, Any]) -> Document:
    """The document of a built report dict (a saved audit.json)."""
    flows = list(report.get("flows") or ())
    tally = SessionTally()
    groups = FindingGroups()
    views = [flow_from_mapping(flow, FlowView, i) for i, flow in enumerate(flows)]
    for position, view in enumerate(views):
        tally.add(view)
        groups.add(position, view.id, view.timestamp, view.host, view.trigger, view.findings)
    group_list = list(report.get("finding_groups") or ()) or to_builtins(groups.groups())
    digest = report.get("digest")
    if digest is None:  # a report saved before the digest
        digest = to_builtins(digest_of_flows(views)[0])
    shown = shown_flow_ids(len(flows), group_list, report.get("claims") or (), digest)
    sections = {k: v for k, v in report.items() if k != "flows"}
    return Document(report=sections, timeline=timeline_from_report(report),
                    tally=tally.tally(report.get("cadence") or ()), groups=group_list,
                    flows=[f for f in flows if shown is None or str(f.get("id")) in shown],
                    flow_count=len(flows), digest=list(digest))


def document_from_analysis(analysis: Analysis, flows: Sequence[Any] = ()) -> Document:
    """The document of a session's analysis; `flows` are the ones shown in full."""
    head, tail = to_builtins(analysis.head), to_builtins(analysis.tail)
    return Document(report={**head, **tail}, timeline=analysis.timeline, tally=analysis.tally,
                    groups=tail.get("finding_groups") or [],
                    flows=[to_builtins(flow) for flow in flows],
                    flow_count=analysis.flow_count, digest=head.get("digest") or [])


def session_shown_ids(analysis: Analysis) -> set[str] | None:
    return shown_flow_ids(analysis.flow_count, to_builtins(analysis.groups),
                          analysis.head.get("claims") or (),
                          to_builtins(analysis.head.get("digest") or ()))


def as_document(report: Mapping[str, Any] | Document | SessionReport) -> Document:
    if isinstance(report, Document):
        return report
    if isinstance(report, SessionReport):
        return document_from_analysis(report.analysis)
    return document_from_report(report)
