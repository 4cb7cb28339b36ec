"""Writing reports, each file atomic and owner-only.

A session's reports are written in one pass over its store: audit.json and the CSVs
stream flow by flow, and the flows the Markdown and HTML show in full are kept on
the way. A built report dict (a saved audit.json) is formatted whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..analysis.session import AfterOptOut, SessionReport
from .json_stream import JsonReportWriter, format_json

__all__ = ["FORMATS", "private_dir", "write_atomic", "write_report", "format_json",
           "parse_formats", "atomic_file"]


def _markdown(report: Mapping[str, Any]) -> str:
    from .markdown import format_markdown

    return format_markdown(report)


def _html(report: Mapping[str, Any]) -> str:
    from .html import format_html

    return format_html(report)


def _flows_csv(report: Mapping[str, Any]) -> str:
    from .csv_export import format_flows_csv

    return format_flows_csv(report)


def _findings_csv(report: Mapping[str, Any]) -> str:
    from .csv_export import format_findings_csv

    return format_findings_csv(report)


Formatter = Callable[[Any], str]

# format name → [(file name, formatter)]
FORMATS: dict[str, list[tuple[str, Formatter]]] = {
    "json": [("audit.json", format_json)],
    "md": [("audit.md", _markdown)],
    "html": [("audit.html", _html)],
    "csv": [("audit-flows.csv", _flows_csv), ("audit-findings.csv", _findings_csv)],
}


def parse_formats(text: str) -> list[str]:
    """`json,md` → ["json", "md"]; `all` → every format. Raises ValueError."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ValueError(
            f"unknown report format {', '.join(unknown) or '(empty)'}; "
            f"choose from {', '.join(FORMATS)} or all"
        )
    return list(dict.fromkeys(names))


def private_dir(path: Path) -> Path:
    """Create the folder owner-only (0700) if it is missing; an existing one is left as is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A 0600 temp file in `path`'s folder, renamed to `path` when the block ends
    without an error and removed when it raises."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        text = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with os.fdopen(fd, mode, **text) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a 0600 temp file in the same folder, then rename."""
    with atomic_file(path) as out:
        out.write(text)


def write_report(
    report: Mapping[str, Any] | SessionReport, out_dir: Path, formats: Sequence[str] = ("json",)
) -> list[Path]:
    """Write each requested format into `out_dir`; return the paths written."""
    if isinstance(report, SessionReport):
        return _write_session(report, out_dir, formats)
    written: list[Path] = []
    for name in formats:
        for filename, formatter in FORMATS[name]:
            path = out_dir / filename
            write_atomic(path, formatter(report))
            written.append(path)
    return written


def _write_session(report: SessionReport, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """One pass over the store for audit.json and the CSVs, then Markdown and HTML."""
    from .csv_export import FindingsCsv, FlowsCsv
    from .document import document_from_analysis, session_shown_ids

    analysis = report.analysis
    private_dir(out_dir)
    with contextlib.ExitStack() as files:
        sinks: list[Any] = []
        if "json" in formats:
            out = files.enter_context(atomic_file(out_dir / "audit.json", "wb"))
            json_writer = JsonReportWriter(out, analysis.head, analysis.tail)
            sinks.append(json_writer)
        if "csv" in formats:
            flows_out = files.enter_context(atomic_file(out_dir / "audit-flows.csv"))
            sinks.append(FlowsCsv(flows_out, AfterOptOut(analysis.contexts)))
            findings = FindingsCsv(out_dir)
            files.callback(findings.close)
            sinks.append(findings)
        people = "md" in formats or "html" in formats
        wanted = session_shown_ids(analysis) if people else set()
        shown = []
        with report.flows() as flows:
            for flow in flows:
                for sink in sinks:
                    sink.add(flow)
                if people and (wanted is None or flow.id in wanted):
                    shown.append(flow)
        if "json" in formats:
            json_writer.finish()
        if "csv" in formats:
            with atomic_file(out_dir / "audit-findings.csv") as findings_out:
                findings.finish(findings_out)
    if people:
        document = document_from_analysis(analysis, shown)
        for name in ("md", "html"):
            if name in formats:
                ((filename, formatter),) = FORMATS[name]
                write_atomic(out_dir / filename, formatter(document))
    return [out_dir / filename for name in formats for filename, _ in FORMATS[name]]
