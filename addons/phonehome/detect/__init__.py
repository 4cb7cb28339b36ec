"""DETECT stage: personal data, meeting content, the auditor's own identity.

    engine = DetectionEngine(load_identity(Path("identity.yaml")))  # once
    findings = engine.detect(payload)                                # per flow
    identifiers = engine.identifiers(payload)                        # per flow
"""

from __future__ import annotations

from .base import Context, Detector, Hit
from .engine import DETECTORS, DetectionEngine
from .identity import IDENTITY_FIELDS, Identity, IdentityError, load_identity
from .persistent import (
    IdentifierScanner,
    identifier_candidates,
    is_identifier_key,
)
from .redact import fingerprint, flagged_values, redact, redact_text, redact_tree, redact_url

__all__ = [
    "DETECTORS",
    "DetectionEngine",
    "Detector",
    "Context",
    "Hit",
    "Identity",
    "IdentityError",
    "IDENTITY_FIELDS",
    "load_identity",
    "IdentifierScanner",
    "identifier_candidates",
    "is_identifier_key",
    "redact",
    "redact_text",
    "redact_tree",
    "redact_url",
    "fingerprint",
    "flagged_values",
]
