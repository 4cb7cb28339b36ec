"""An audit session: the per-flow pipeline feeding the store, and the report at the end.

Both the live addon and `phonehome audit` drive one of these, so identical
traffic gives identical reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..analysis.session import SessionReport, analyze
from ..model import Marker, Observation
from ..report.write import private_dir
from .pipeline import Audited, Auditor, AuditSettings, EncodedRecord, encode_record
from .store import StoreTarget, default_sensor, is_postgres_url, open_store, read_store
from .store_pg import StoreSelection

__all__ = ["AuditSession", "report_from_store", "sensor_selection"]


class AuditSession:
    def __init__(
        self,
        settings: AuditSettings,
        store_path: StoreTarget,
        *,
        inputs: Mapping[str, Any] | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        auditor: Auditor | None = None,
        time_scale: float = 1.0,
        fresh_store: bool = True,
        sensor: str | None = None,
        spool_dir: Path | None = None,
        must_connect: bool = True,
    ) -> None:
        self.auditor = auditor or Auditor(settings)
        self.sensor = sensor or default_sensor()
        if not is_postgres_url(store_path):
            private_dir(Path(store_path).parent)  # the reports usually go here too
        self.store = open_store(store_path, fresh=fresh_store, sensor=self.sensor,
                                spool_dir=spool_dir, must_connect=must_connect)
        self.store_path = store_path
        self.inputs = {
            "captures": [],
            "rule_packs": [
                {"pack": pack.id, "version": pack.version, "path": str(pack.path)}
                for pack in self.auditor.rules.packs
            ],
            "app": settings.app,
            "apps": {pack.id: pack.vendor or None for pack in self.auditor.rules.packs
                     if pack.id in self.auditor.rules.apps},
            "identity": self.auditor.has_identity,
            "reveal": settings.reveal,
            "time_scale": time_scale,
            "capture_errors": [],
            **dict(inputs or {}),
        }
        self.store.set_meta("inputs", self.inputs)
        self.on_record = on_record
        self.time_scale = time_scale
        self._origin: float | None = None
        self.flows = 0
        self._closed = False

    def _scaled(self, timestamp: float) -> float:
        """Stretch time from the session's first moment on (for time-compressed simulations)."""
        if self.time_scale == 1.0:
            return timestamp
        if self._origin is None:
            self._origin = timestamp
        return self._origin + (timestamp - self._origin) * self.time_scale

    def submit(self, flow: Observation | Audited, record: dict[str, Any] | None = None
               ) -> dict[str, Any] | EncodedRecord:
        """Store one flow: the markers saved on it, then its record, its time scaled.
        `flow` is an observation (audited here, unless `record` is its audit from
        elsewhere) or a flow a worker audited and encoded. Returns what was stored."""
        if isinstance(flow, Audited):
            return self._submit_encoded(flow)
        for label, timestamp in flow.markers:
            self.mark(label, timestamp, flow_id=flow.id)
        if record is None:
            record = self.auditor.audit(flow)
        record["timestamp"] = self._scaled(record["timestamp"])
        self.store.append(record)
        self.flows += 1
        if self.on_record is not None:
            self.on_record(record)
        return record

    def _submit_encoded(self, flow: Audited) -> EncodedRecord:
        encoded = flow.record
        for label, timestamp in flow.markers:
            self.mark(label, timestamp, flow_id=encoded.id)
        if self.time_scale != 1.0:  # (simulations) the time sits inside the text
            record = json.loads(encoded.text)
            record["timestamp"] = self._scaled(record["timestamp"])
            encoded = encode_record(record)
        self.store.append_encoded((encoded,))
        self.flows += 1
        if self.on_record is not None:
            self.on_record(json.loads(encoded.text))
        return encoded

    def mark(self, label: str, timestamp: float | None = None, *, flow_id: str | None = None,
             source: str = "auditor") -> Marker:
        when = self._scaled(time.time() if timestamp is None else timestamp)
        marker = Marker(when, label, source, flow_id)
        self.store.add_marker(marker)
        return marker

    def note_inputs(self, **values: Any) -> None:
        self.inputs.update(values)
        self.store.set_meta("inputs", self.inputs)

    def tick(self) -> None:
        """Commit the pending batch if it is due (call from a timer)."""
        self.store.flush_if_due()

    def close(self) -> None:
        """Commit and close the store."""
        if not self._closed:
            self.store.close()
            self._closed = True

    def finish(self, claims_paths: Sequence[Path] | None = None) -> SessionReport:
        """Close the store and analyse the session from it."""
        self.close()
        return report_from_store(self.store_path, claims_paths=claims_paths,
                                 selection=sensor_selection(self.store_path, self.sensor))


def sensor_selection(target: StoreTarget, sensor: str) -> StoreSelection | None:
    """A shared store holds every sensor's flows: a session reports its own."""
    return StoreSelection(sensors=(sensor,)) if is_postgres_url(target) else None


def report_from_store(
    path: StoreTarget, *, claims_paths: Sequence[Path] | None = None,
    selection: StoreSelection | None = None, app: str | None = None,
) -> SessionReport:
    """The session's analysis, read from the store as a stream; its reports are
    written by streaming the store once more (`report.write.write_report`)."""
    with read_store(path, selection) as contents:
        inputs = dict(contents.meta().get("inputs") or {})
        analysis = analyze(contents, inputs=inputs, claims_paths=claims_paths, app=app)
    return SessionReport(analysis, lambda: read_store(path, selection))
