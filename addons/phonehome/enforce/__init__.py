"""ENFORCE: the opt-out the vendor does not offer — redact, block or dry-run.

    policy = EnforcePolicy.from_options("redact", dry_run=False, enforce_file=path)
    plan = plan_enforcement(policy, observation, payload, classification, findings)
    record["enforcement"] = apply_enforcement(flow, plan, payload, findings, recheck=...)
"""

from __future__ import annotations

from .apply import (
    BLOCK_HEADER,
    Recheck,
    apply_enforcement,
    apply_message_enforcement,
    block_flow,
    redacted_message,
    redacted_request,
)
from .placeholder import mask_text, placeholder
from .plan import EnforcementPlan, is_telemetry, plan_enforcement
from .policy import (
    ACTIONS,
    MODE_PURPOSES,
    MODES,
    PROTECTED_PURPOSES,
    Action,
    EnforceError,
    EnforceFile,
    EnforcePolicy,
    load_enforce_file,
)
from .redactor import UnsafeRedaction

__all__ = ["MODES", "ACTIONS", "PROTECTED_PURPOSES", "MODE_PURPOSES", "Action", "EnforceError",
           "EnforceFile", "EnforcePolicy", "EnforcementPlan", "Recheck", "UnsafeRedaction",
           "BLOCK_HEADER", "load_enforce_file", "plan_enforcement", "is_telemetry",
           "apply_enforcement", "apply_message_enforcement", "redacted_request",
           "redacted_message", "block_flow", "placeholder", "mask_text"]
