"""Enforce policy: the mode, the dry-run switch and the enforce file's overrides.

The enforce file (rules/enforce/example.yaml documents it) overrides actions per
rule id, data category and finding type, each optionally limited to parties and
purposes; it is read once, every problem reported as `path:line:col`.
"""

# An enforce file:
#     block_status: 204
#     rules:
#       webex-clientmetrics: redact
#     categories:
#       error_logs: {action: block, party: third}
#     findings:
#       identity_match: redact


from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from ..model import CATEGORIES, FINDING_TYPES, PARTIES, PURPOSES, SEVERITIES
from ..terms import ACTIONS
from ..yamldoc import (
    TOP,
    Checker,
    DocumentError,
    LDict,
    LList,
    Pos,
    did_you_mean,
    load_document,
    typename,
)

__all__ = [
    "MODES",
    "ACTIONS",
    "PROTECTED_PURPOSES",
    "MODE_PURPOSES",
    "Action",
    "EnforceError",
    "EnforceFile",
    "EnforcePolicy",
    "load_enforce_file",
]

MODES = ACTIONS
"""The mode is the action taken on what it covers."""
PROTECTED_PURPOSES = ("service", "auth")
"""Never blocked unless a rule, a `rules:` entry, or an entry whose `purpose`
names them says so: the meeting itself must keep working."""
MODE_PURPOSES = ("telemetry",)
"""What the mode itself acts on: flows a rule classifies as telemetry."""

_DEFAULT_STATUS = 204
_ENTRY_KEYS = ("action", "status", "party", "purpose")
_TOP_KEYS = ("block_status", "min_severity", "purposes", "rules", "categories", "findings")


EnforceError = DocumentError
"""A bad enforce option or file; `.errors` lists every `path:line:col: problem`."""


@dataclass(frozen=True, slots=True)
class Action:
    """One override: what to do, and for which parties and purposes.

    Empty `parties` / `purposes` mean any. A `block` whose `purposes` is empty
    still never hits service or auth traffic (see PROTECTED_PURPOSES) unless
    it is a per-rule entry: naming the rule names its flows.
    """

    action: str
    status: int | None = None
    parties: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    where: str = ""
    """`path:line` of the entry, for reasons and messages."""

    def applies(self, purpose: str, party: str, *, named: bool = False) -> bool:
        if self.parties and party not in self.parties:
            return False
        if self.purposes:
            return purpose in self.purposes
        return named or self.action != "block" or purpose not in PROTECTED_PURPOSES


def _frozen(mapping: Mapping[str, Action] | None = None) -> Mapping[str, Action]:
    return MappingProxyType(dict(mapping or {}))


class EnforceFile(NamedTuple):
    """What an enforce file says (unpacks as by_rule, by_category, by_finding, …): the
    fields of an `EnforcePolicy` after its mode and dry-run flag, by the same names."""

    by_rule: Mapping[str, Action]
    by_category: Mapping[str, Action]
    by_finding: Mapping[str, Action]
    block_status: int = _DEFAULT_STATUS
    purposes: tuple[str, ...] = MODE_PURPOSES
    min_severity: str = "info"


@dataclass(frozen=True)
class EnforcePolicy:
    """Everything plan_enforcement needs, parsed once at configure time.

    `observe` (the default) changes nothing. The other modes act only on flows a
    rule classifies as telemetry; anything else needs an entry in the enforce file
    (rules/enforce/example.yaml). `block` answers them locally (204 unless an entry
    says otherwise); `redact` replaces every flagged value with a same-shape
    placeholder, verifies the result with the detectors and blocks when it cannot
    redact safely or cannot read the body. Dry-run reports and changes nothing.
    """

    mode: str = "observe"
    dry_run: bool = False
    by_rule: Mapping[str, Action] = field(default_factory=_frozen)
    by_category: Mapping[str, Action] = field(default_factory=_frozen)
    by_finding: Mapping[str, Action] = field(default_factory=_frozen)
    block_status: int = _DEFAULT_STATUS
    purposes: tuple[str, ...] = MODE_PURPOSES
    """Purposes whose flows the mode itself redacts or blocks (entries apply to any)."""
    min_severity: str = "info"
    """Findings below this severity are neither redacted nor a reason to act."""

    def __post_init__(self) -> None:
        errors = []
        if self.mode not in MODES:
            errors.append(f"enforce mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not _valid_status(self.block_status):
            errors.append(f"block status {self.block_status!r} must be an HTTP status 200-599")
        if self.min_severity not in SEVERITIES:
            errors.append(f"min_severity {self.min_severity!r} is not one of "
                          f"{', '.join(SEVERITIES)}")
        if errors:
            raise EnforceError(errors)
        for name in ("by_rule", "by_category", "by_finding"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, _frozen(value))

    @property
    def enabled(self) -> bool:
        """False in observe mode: nothing is ever changed."""
        return self.mode != "observe"

    @classmethod
    def from_options(
        cls, mode: str, dry_run: bool = False, enforce_file: Path | str | None = None
    ) -> EnforcePolicy:
        """The policy for the `phonehome_enforce*` options. Raises EnforceError."""
        mode = (mode or "observe").strip().lower()
        if enforce_file is None or str(enforce_file) == "":
            return cls(mode=mode, dry_run=bool(dry_run))
        loaded = load_enforce_file(Path(enforce_file))
        return cls(mode=mode, dry_run=bool(dry_run), **loaded._asdict())

    def unknown_rules(self, known: set[str] | frozenset[str]) -> list[str]:
        """Rule ids named in the enforce file that no loaded rule has (for a warning)."""
        return sorted(rule_id for rule_id in self.by_rule if rule_id not in known)


def _valid_status(status: object) -> bool:
    return isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599


# --- the file -------------------------------------------------------------------


class _Reader(Checker):
    def names(self, value: Any, pos: Pos, key: str, choices: tuple[str, ...],
              item_pos: list[Pos] | None = None) -> tuple[str, ...]:
        """A word or a list of words from `choices`."""
        if isinstance(value, str):
            items, poses = [value], [pos]
        elif isinstance(value, LList):
            items, poses = list(value), item_pos or value.item_pos
        else:
            self.err(pos, f"{key!r} must be a word or a list of words, not {typename(value)}")
            return ()
        out = []
        for item, item_at in zip(items, poses, strict=True):
            if not self.choice(item, item_at, repr(key), choices):
                continue
            if item not in out:
                out.append(item)
        return tuple(out)

    def entry(self, value: Any, pos: Pos, what: str) -> Action | None:
        """`block` or {action: block, status: 403, party: third, purpose: telemetry}."""
        if isinstance(value, str):
            if not self.choice(value, pos, f"{what}: action", ACTIONS, sep=" "):
                return None
            return Action(value, where=self.where(pos))
        if not isinstance(value, LDict):
            self.err(pos, f"{what} must be an action word or a mapping, not {typename(value)}")
            return None
        before = len(self.errors)
        self.keys(value, value.pos, _ENTRY_KEYS, ("action",), what)
        if "action" not in value:
            return None
        action = value["action"]
        self.choice(action, value.value_pos["action"], f"{what}: action", ACTIONS, sep=" ")
        status = value.get("status")
        if "status" in value:
            if not _valid_status(status):
                self.err(value.value_pos["status"],
                         f"{what}: status {status!r} must be an HTTP status 200-599")
            elif action != "block":
                self.err(value.value_pos["status"], f"{what}: 'status' only goes with block")
        parties = purposes = ()
        if "party" in value:
            parties = self.names(value["party"], value.value_pos["party"], "party", PARTIES)
        if "purpose" in value:
            purposes = self.names(value["purpose"], value.value_pos["purpose"], "purpose",
                                  PURPOSES)
        if len(self.errors) > before:
            return None
        return Action(action, status, parties, purposes, self.where(value.pos))

    def section(self, data: LDict, key: str, choices: tuple[str, ...] | None,
                hint: dict[str, str]) -> dict[str, Action]:
        if key not in data or data[key] is None:
            return {}
        section = data[key]
        if not isinstance(section, LDict):
            self.err(data.value_pos[key],
                     f"{key!r} must be a mapping of names to actions, not {typename(section)}")
            return {}
        out: dict[str, Action] = {}
        for name, value in section.items():
            name_at = section.key_pos[name]
            if not isinstance(name, str) or not name:
                self.err(name_at, f"{key!r}: names must be non-empty strings, not {name!r}")
                continue
            if choices is not None and name not in choices:
                extra = hint.get(name) or did_you_mean(name, choices)
                self.err(name_at, f"{key!r}: {name!r} is not one of {', '.join(choices)}{extra}")
                continue
            action = self.entry(value, section.value_pos[name], f"{key}.{name}")
            if action is not None:
                out[name] = action
        return out


def load_enforce_file(path: Path | str, display: str | None = None) -> EnforceFile:
    """Parse and validate an enforce file. Raises EnforceError listing every problem."""
    path = Path(path)
    reader = _Reader(display or str(path))
    data, problems = load_document(path, reader.display)
    reader.errors.extend(problems)
    if data is None and not problems:
        data = LDict()
        data.pos, data.key_pos, data.value_pos = TOP, {}, {}
    if data is not None and not isinstance(data, LDict):
        reader.err(getattr(data, "pos", TOP),
                   f"the enforce file must be a mapping, not {typename(data)}")
        data = None
    if data is None:
        reader.raise_errors()
    assert data is not None
    reader.keys(data, data.pos, _TOP_KEYS, (), "the enforce file")
    block_status = _DEFAULT_STATUS
    if "block_status" in data:
        if _valid_status(data["block_status"]):
            block_status = data["block_status"]
        else:
            reader.err(data.value_pos["block_status"],
                       f"block_status {data['block_status']!r} must be an HTTP status 200-599")
    min_severity = "info"
    if "min_severity" in data:
        value = data["min_severity"]
        if value in SEVERITIES:
            min_severity = value
        else:
            reader.err(data.value_pos["min_severity"],
                       f"min_severity {value!r} is not one of {', '.join(SEVERITIES)}"
                       f"{did_you_mean(value, SEVERITIES)}")
    purposes = MODE_PURPOSES
    if "purposes" in data:
        value = data["purposes"]
        purposes = () if value is None or value == [] else reader.names(
            value, data.value_pos["purposes"], "purposes", PURPOSES)
    type_hint = {t: " (a finding type: put it under 'findings')" for t in FINDING_TYPES}
    category_hint = {c: " (a data category: put it under 'categories')" for c in CATEGORIES}
    by_rule = reader.section(data, "rules", None, {})
    by_category = reader.section(data, "categories", CATEGORIES, type_hint)
    by_finding = reader.section(data, "findings", FINDING_TYPES, category_hint)
    reader.raise_errors()
    return EnforceFile(_frozen(by_rule), _frozen(by_category), _frozen(by_finding),
                       block_status, purposes, min_severity)
