"""plan_enforcement: modes × purposes × parties × rule actions × enforce-file overrides."""

from __future__ import annotations

import pytest

from phonehome.enforce import Action, EnforcementPlan, EnforcePolicy, plan_enforcement
from phonehome.enforce.plan import is_telemetry
from phonehome.model import Classification, Finding, Observation


def _finding(type_: str = "email", location: str = "$.user.email", category: str =
             "personal_data", severity: str = "medium", value: str = "jane@example.org") -> Finding:
    return Finding(type=type_, category=category, severity=severity, location=location,
                   detector=type_, evidence="j***", value=value)


EMAIL = _finding()
IDENTITY = _finding("identity_match", "$.uid", "identifiers", "high", "abc123")
AUDIO = _finding("audio_level", "$.levels", "meeting_content", "medium", "series")
TOKEN = _finding("auth_token", "header:Authorization", "identifiers", "high", "Bearer x.y.z")
INFO = _finding("hostname", "$.host", "device_info", "info", "lt-1234")
OBS = Observation(id="1", timestamp=0.0, method="POST", url="https://m.example.com/x",
                  scheme="https", host="m.example.com", port=443, path="/x")


def _cls(purpose: str = "telemetry", party: str = "first", *, rules: tuple[str, ...] = (),
         categories: tuple[str, ...] = (), action: str | None = None,
         organization: str | None = None) -> Classification:
    return Classification(purpose=purpose, party=party, organization=organization,
                          rule_ids=list(rules), categories=list(categories), action=action)


def _plan(policy: EnforcePolicy, cls: Classification,
          findings: tuple[Finding, ...] = (EMAIL,)) -> EnforcementPlan:
    return plan_enforcement(policy, OBS, None, cls, list(findings))


# --- the mode alone ----------------------------------------------------------------

MODE_TABLE = [
    # mode,    purpose,     party,    findings, expected action
    ("observe", "telemetry", "third", (EMAIL,), "pass"),
    ("observe", "telemetry", "first", (), "pass"),
    ("observe", "service", "first", (EMAIL,), "pass"),
    ("redact", "telemetry", "first", (EMAIL,), "redact"),
    ("redact", "telemetry", "first", (), "pass"),
    ("redact", "unknown", "unknown", (EMAIL,), "pass"),
    ("redact", "update", "first", (EMAIL,), "pass"),
    ("redact", "service", "first", (EMAIL,), "pass"),
    ("redact", "auth", "first", (EMAIL,), "pass"),
    ("block", "telemetry", "first", (EMAIL,), "block"),
    ("block", "telemetry", "first", (), "block"),
    ("block", "telemetry", "third", (), "block"),
    ("block", "service", "first", (EMAIL,), "pass"),
    ("block", "service", "first", (), "pass"),
    ("block", "auth", "first", (TOKEN,), "pass"),
    ("block", "update", "first", (), "pass"),
    ("block", "update", "first", (EMAIL,), "pass"),
    ("block", "unknown", "unknown", (), "pass"),
    ("block", "unknown", "unknown", (EMAIL,), "pass"),
    ("block", "unknown", "first", (EMAIL,), "pass"),
    ("block", "unknown", "third", (EMAIL,), "pass"),
]


@pytest.mark.parametrize(("mode", "purpose", "party", "findings", "expected"), MODE_TABLE)
@pytest.mark.parametrize("dry_run", [False, True])
def test_mode_defaults(mode: str, purpose: str, party: str, findings: tuple[Finding, ...],
                       expected: str, dry_run: bool) -> None:
    plan = _plan(EnforcePolicy(mode=mode, dry_run=dry_run), _cls(purpose, party), findings)
    assert plan.action == expected
    assert plan.dry_run is dry_run
    assert plan.reason
    if expected == "pass":
        assert plan.targets == ()
    else:
        assert plan.targets == tuple((f.type, f.location) for f in findings)


@pytest.mark.parametrize(
    ("purpose", "party", "organization", "rules", "expected"),
    [
        ("telemetry", "first", None, (), True),
        ("unknown", "third", "Amplitude", (), False),
        ("unknown", "third", None, ("tracker-amplitude",), False),
        ("unknown", "third", None, (), False),
        ("unknown", "first", "Cisco", ("webex-x",), False),
        ("service", "third", "Sentry", ("tracker-sentry",), False),
    ],
)
def test_is_telemetry(purpose: str, party: str, organization: str | None,
                      rules: tuple[str, ...], expected: bool) -> None:
    cls = _cls(purpose, party, rules=rules, organization=organization)
    assert is_telemetry(cls) is expected
    assert (_plan(EnforcePolicy(mode="block"), cls, ()).action == "block") is expected


# --- rule actions and enforce-file overrides ----------------------------------------------

BLOCK = Action("block")
REDACT = Action("redact")
OBSERVE = Action("observe")

OVERRIDE_TABLE = [
    # id, mode, classification kwargs, findings, policy kwargs, expected action
    ("rule action block", "redact", dict(purpose="telemetry", rules=("r1",), action="block"),
     (EMAIL,), {}, "block"),
    ("rule action block on service", "redact",
     dict(purpose="service", rules=("r1",), action="block"), (), {}, "block"),
    ("rule action observe beats mode", "block",
     dict(purpose="telemetry", rules=("r1",), action="observe"), (EMAIL,), {}, "pass"),
    ("rule action redact on auth", "block", dict(purpose="auth", rules=("r1",), action="redact"),
     (EMAIL,), {}, "redact"),
    ("rule action ignored in observe mode", "observe",
     dict(purpose="telemetry", rules=("r1",), action="block"), (EMAIL,), {}, "pass"),
    ("by_rule beats rule action", "redact",
     dict(purpose="telemetry", rules=("r1",), action="block"), (EMAIL,),
     dict(by_rule={"r1": OBSERVE}), "pass"),
    ("by_rule blocks service", "redact", dict(purpose="service", rules=("r1",)), (),
     dict(by_rule={"r1": BLOCK}), "block"),
    ("by_rule beats category", "block", dict(purpose="telemetry", rules=("r1",),
                                             categories=("error_logs",)), (EMAIL,),
     dict(by_rule={"r1": REDACT}, by_category={"error_logs": BLOCK}), "redact"),
    ("by_rule strongest of two rules", "redact", dict(purpose="telemetry", rules=("r1", "r2")),
     (EMAIL,), dict(by_rule={"r1": OBSERVE, "r2": BLOCK}), "block"),
    ("by_rule out of party scope falls through", "redact",
     dict(purpose="telemetry", party="first", rules=("r1",)), (EMAIL,),
     dict(by_rule={"r1": Action("block", parties=("third",))}), "redact"),
    ("category block to third party", "redact",
     dict(purpose="telemetry", party="third", categories=("error_logs",)), (),
     dict(by_category={"error_logs": Action("block", parties=("third",))}), "block"),
    ("category block not for first party", "redact",
     dict(purpose="telemetry", party="first", categories=("error_logs",)), (),
     dict(by_category={"error_logs": Action("block", parties=("third",))}), "pass"),
    ("category block never hits service unnamed", "block",
     dict(purpose="service", party="third", categories=("error_logs",)), (EMAIL,),
     dict(by_category={"error_logs": BLOCK}), "pass"),
    ("category block hits service when named", "block",
     dict(purpose="service", categories=("meeting_content",)), (),
     dict(by_category={"meeting_content": Action("block", purposes=("service",))}), "block"),
    ("category from a finding", "redact", dict(purpose="telemetry"), (AUDIO,),
     dict(by_category={"meeting_content": BLOCK}), "block"),
    ("category observe keeps a flow", "block",
     dict(purpose="telemetry", categories=("usage_statistics",)), (EMAIL,),
     dict(by_category={"usage_statistics": OBSERVE}), "pass"),
    ("category redact on service", "redact",
     dict(purpose="service", categories=("personal_data",)), (EMAIL,),
     dict(by_category={"personal_data": REDACT}), "redact"),
    ("category strongest wins", "redact",
     dict(purpose="telemetry", categories=("usage_statistics", "error_logs")), (EMAIL,),
     dict(by_category={"usage_statistics": OBSERVE, "error_logs": BLOCK}), "block"),
    ("category beats rule action", "redact",
     dict(purpose="telemetry", rules=("r1",), action="block", categories=("error_logs",)),
     (EMAIL,), dict(by_category={"error_logs": REDACT}), "redact"),
    ("finding block", "redact", dict(purpose="telemetry"), (EMAIL, TOKEN),
     dict(by_finding={"auth_token": BLOCK}), "block"),
    ("finding block not on auth", "redact", dict(purpose="auth"), (TOKEN,),
     dict(by_finding={"auth_token": BLOCK}), "pass"),
    ("finding redact on service", "redact", dict(purpose="service"), (IDENTITY, EMAIL),
     dict(by_finding={"identity_match": REDACT}), "redact"),
    ("finding redact in block mode service", "block", dict(purpose="service"), (IDENTITY,),
     dict(by_finding={"identity_match": REDACT}), "redact"),
    ("finding redact does not stop a block", "block", dict(purpose="telemetry"), (IDENTITY,),
     dict(by_finding={"identity_match": REDACT}), "block"),
    ("finding observe leaves nothing", "redact", dict(purpose="telemetry"), (EMAIL,),
     dict(by_finding={"email": OBSERVE}), "pass"),
    ("finding redact scoped to telemetry", "redact", dict(purpose="service"), (AUDIO,),
     dict(by_finding={"audio_level": Action("redact", purposes=("telemetry",))}), "pass"),
    ("mode on service too: redacted", "redact", dict(purpose="service"), (EMAIL,),
     dict(purposes=("telemetry", "service")), "redact"),
    ("mode on unknown too: blocked", "block", dict(purpose="unknown", party="third"), (),
     dict(purposes=("telemetry", "unknown")), "block"),
    ("mode on nothing", "redact", dict(purpose="telemetry"), (EMAIL,),
     dict(purposes=()), "pass"),
    ("min severity drops info findings", "redact", dict(purpose="telemetry"), (INFO,),
     dict(min_severity="low"), "pass"),
    ("min severity keeps high", "redact", dict(purpose="telemetry"), (INFO, IDENTITY),
     dict(min_severity="medium"), "redact"),
]


@pytest.mark.parametrize(
    ("mode", "cls_kwargs", "findings", "policy_kwargs", "expected"),
    [row[1:] for row in OVERRIDE_TABLE],
    ids=[row[0] for row in OVERRIDE_TABLE],
)
def test_overrides(mode: str, cls_kwargs: dict, findings: tuple[Finding, ...],
                   policy_kwargs: dict, expected: str) -> None:
    policy = EnforcePolicy(mode=mode, **policy_kwargs)
    plan = _plan(policy, _cls(**cls_kwargs), findings)
    assert plan.action == expected, plan.reason


def test_finding_entries_pick_values() -> None:
    policy = EnforcePolicy(mode="redact", by_finding={"email": OBSERVE})
    plan = _plan(policy, _cls("telemetry"), (EMAIL, IDENTITY, AUDIO))
    assert plan.action == "redact"
    assert plan.targets == (("identity_match", "$.uid"), ("audio_level", "$.levels"))
    assert plan.selects(IDENTITY) and not plan.selects(EMAIL)


def test_finding_redact_on_passing_flow_only_targets_its_type() -> None:
    policy = EnforcePolicy(mode="redact", by_finding={"identity_match": REDACT})
    plan = _plan(policy, _cls("service"), (EMAIL, IDENTITY))
    assert plan.targets == (("identity_match", "$.uid"),)
    assert "identity_match" in plan.reason


@pytest.mark.parametrize(
    ("policy", "cls", "status"),
    [
        (EnforcePolicy(mode="block"), _cls("telemetry"), 204),
        (EnforcePolicy(mode="block", block_status=403), _cls("telemetry"), 403),
        (EnforcePolicy(mode="redact", block_status=403,
                       by_rule={"r": Action("block", status=418)}),
         _cls("telemetry", rules=("r",)), 418),
        (EnforcePolicy(mode="redact", by_category={"error_logs": Action("block", status=200)}),
         _cls("telemetry", categories=("error_logs",)), 200),
    ],
)
def test_block_status(policy: EnforcePolicy, cls: Classification, status: int) -> None:
    plan = _plan(policy, cls)
    assert (plan.action, plan.status) == ("block", status)


def test_plan_holds_locations_never_values() -> None:
    plan = _plan(EnforcePolicy(mode="redact"), _cls("telemetry"), (EMAIL, IDENTITY, EMAIL))
    assert plan.locations == ("$.user.email", "$.uid")
    assert EMAIL.value not in repr(plan) and IDENTITY.value not in repr(plan)


def test_reasons_name_their_source() -> None:
    policy = EnforcePolicy(mode="redact", by_category={
        "error_logs": Action("block", parties=("third",), where="enforce.yaml:7")})
    plan = _plan(policy, _cls("telemetry", "third", categories=("error_logs",)))
    assert "category error_logs" in plan.reason and "enforce.yaml:7" in plan.reason
    assert "party third" in plan.reason
    rule_plan = _plan(EnforcePolicy(mode="redact"),
                      _cls("telemetry", rules=("webex-x",), action="block"))
    assert "webex-x" in rule_plan.reason
