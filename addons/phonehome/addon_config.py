"""The addon's options: declared, then read and checked into one frozen `AddonConfig`.

Every bad value becomes one line of a single `ConfigError` (an OptionsError), so a bad
start stops mitmdump at once. `parse_config` needs no proxy: any object with the option
attributes will do.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitmproxy import exceptions, flowfilter

from .audit.pipeline import AuditSettings
from .audit.store import StoreError, StoreTarget, default_sensor, is_postgres_url, store_key
from .decode import DecodeLimits
from .detect import Identity, load_identity
from .enforce import MODES, EnforcePolicy
from .report.terminal import TOTAL_INTERVAL
from .report.write import parse_formats
from .rules import RuleLoadError, RuleSet, load_rules

__all__ = [
    "AddonConfig",
    "ConfigError",
    "add_options",
    "hold_unconvertible",
    "show_config_errors_on_one_line",
    "OPTION_NAMES",
    "INT_OPTIONS",
    "BOOL_OPTIONS",
    "parse_config",
    "option_problem",
    "OptionView",
]

INT_OPTIONS = ("phonehome_max_body", "phonehome_max_depth", "phonehome_max_leaves")
BOOL_OPTIONS = ("phonehome_reveal", "phonehome_quiet", "phonehome_enforce_dry_run",
                "phonehome_audit_process", "phonehome_details", "phonehome_mark_flows")
OPTION_NAMES = frozenset(INT_OPTIONS + BOOL_OPTIONS + (
    "phonehome_scope", "phonehome_rules", "phonehome_identity", "phonehome_report_dir",
    "phonehome_store", "phonehome_formats", "phonehome_time_scale", "phonehome_marker_socket",
    "phonehome_enforce", "phonehome_enforce_file", "phonehome_sensor", "phonehome_app",
    "phonehome_total_interval",
))

_MAX_TIME_SCALE = 1e6


class ConfigError(exceptions.OptionsError):
    """Bad phonehome options; str() is one `option: reason` line per bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class AddonConfig:
    """Everything the addon needs, parsed, loaded and checked."""

    scope: Any
    """The compiled `phonehome_scope` filter, or None for every flow."""
    formats: tuple[str, ...]
    settings: AuditSettings
    rules: RuleSet
    identity: Identity | None
    policy: EnforcePolicy
    time_scale: float
    report_dir: Path
    store_path: StoreTarget
    """A SQLite file, or a postgresql:// URL."""
    sensor: str
    marker_socket: Path
    audit_process: bool
    quiet: bool
    details: bool
    """The summary when mitmdump stops: every table, not one screen."""
    total_interval: float
    """Seconds between the live view's running totals; 0: none."""
    mark_flows: bool = True
    """Comment each audited flow and mark those with a high finding."""

    @property
    def inline(self) -> bool:
        """Audit in the proxy process: enforce mode must see the result before forwarding."""
        return self.policy.enabled or not self.audit_process

    def unknown_enforce_rules(self) -> list[str]:
        """Rule ids the enforce file names that no loaded rule has."""
        return self.policy.unknown_rules({rule.id for rule in self.rules.rules})


def add_options(loader: Any) -> None:
    """Declare every `phonehome_*` option (mitmproxy's `load` hook)."""
    for name, kind, default, text, choices in _declared_options(DecodeLimits()):
        loader.add_option(name, kind, default, text, choices=choices)


_Declared = tuple[str, Any, Any, str, "Sequence[str] | None"]


def _declared_options(limits: DecodeLimits) -> list[_Declared]:
    return [
        ("phonehome_scope", str, "",
         "Audit only flows matching this mitmproxy filter (default: all).", None),
        ("phonehome_rules", Sequence[str], [],
         "Extra rule packs (YAML files or folders), added to the bundled ones.", None),
        ("phonehome_identity", str, "",
         "Identity file (YAML) with your own values to look for.", None),
        ("phonehome_reveal", bool, False,
         "Show raw values in reports instead of redacted evidence.", None),
        ("phonehome_report_dir", str, "reports",
         "Folder for the reports written when mitmdump stops.", None),
        ("phonehome_store", str, "",
         "Findings store: a SQLite file (default: <report_dir>/audit.sqlite) or a "
         "postgresql:// URL shared by many proxies.", None),
        ("phonehome_sensor", str, "",
         "This proxy's name in a shared store (default: the host name).", None),
        ("phonehome_formats", str, "json,md,html,csv",
         "Report formats: json, md, html, csv, or all.", None),
        ("phonehome_quiet", bool, False,
         "No live one-line-per-flow view.", None),
        ("phonehome_details", bool, False,
         "When mitmdump stops, print every table, not the one-screen summary.", None),
        ("phonehome_total_interval", str, f"{TOTAL_INTERVAL:g}",
         "Seconds between the live view's running totals (flows, findings, new "
         "destinations); 0: none.", None),
        ("phonehome_max_body", int, limits.max_decompressed_bytes,
         "Largest decompressed body to decode, in bytes.", None),
        ("phonehome_max_depth", int, limits.max_depth,
         "Deepest nesting to decode.", None),
        ("phonehome_max_leaves", int, limits.max_leaves,
         "Most values to decode per flow.", None),
        ("phonehome_time_scale", str, "1",
         "Stretch timestamps by this factor (for time-compressed simulations).", None),
        ("phonehome_marker_socket", str, "",
         "Socket for `phonehome mark`; default: <report_dir>/.phonehome-markers.sock.", None),
        ("phonehome_enforce", str, "observe",
         "observe (change nothing), redact flagged values, or block telemetry.", MODES),
        ("phonehome_enforce_dry_run", bool, False,
         "Report what enforce mode would redact or block, and pass everything.", None),
        ("phonehome_enforce_file", str, "",
         "Enforce file (YAML): actions per rule id, category or finding type.", None),
        ("phonehome_app", str, "auto",
         "The audited app (webex, teams, … a first-party pack id), whose vendor is the"
         " first party and whose claims are checked; auto: the vendor whose domains "
         "carry most of the telemetry.", None),
        ("phonehome_audit_process", bool, True,
         "In observe mode, audit in a child process so proxying is not slowed (enforce"
         " mode always audits inline).", None),
        ("phonehome_mark_flows", bool, True,
         "Comment each audited flow with a one-line summary and mark flows with a high"
         " finding (filter them with ~marked).", None),
    ]


def hold_unconvertible(options: Any) -> dict[str, Any]:
    """Take out of `options.deferred` the int and bool values mitmproxy could not convert.

    mitmdump's --set values wait there as text until their options exist, and a value it
    cannot convert fails where the error is lost: parse_config reports these instead.
    """
    held: dict[str, Any] = {}
    deferred = getattr(options, "deferred", None)
    if not isinstance(deferred, dict):
        return held
    for name in INT_OPTIONS + BOOL_OPTIONS:
        if name in deferred:
            raw = deferred[name]
            value = getattr(raw, "val", raw)  # the --set texts, or a config.yaml value
            if isinstance(value, list):
                value = value[0] if len(value) == 1 else (value or None)
            if option_problem(name, value) is not None:
                held[name] = value
                del deferred[name]
    return held


class _OneLineConfigErrors(logging.Filter):
    """mitmproxy logs a script's configure error with its traceback, which suits a bug
    but buries a bad option: show a ConfigError as its own `option: reason` lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ConfigError):
            record.msg, record.args = str(exc), ()
            record.exc_info = record.exc_text = None
        return True


_ONE_LINE_CONFIG_ERRORS = _OneLineConfigErrors()


def show_config_errors_on_one_line() -> None:
    logging.getLogger("mitmproxy.addons.script").addFilter(_ONE_LINE_CONFIG_ERRORS)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a whole number: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def _as_bool(value: Any) -> bool:
    """mitmproxy's spelling: true, false, or nothing (true)."""
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "true"):
        return True
    if text == "false":
        return False
    raise ValueError(f"{value!r} is not true or false")


def option_problem(name: str, value: Any) -> str | None:
    """Why `value` cannot be the int or bool option `name` (None when it can)."""
    try:
        if name in INT_OPTIONS:
            _as_int(value)
        elif name in BOOL_OPTIONS:
            _as_bool(value)
    except ValueError as e:
        return str(e)
    return None


def _writable_dir(directory: Path) -> None:
    """Create `directory` (0700) if needed and prove a file can be made in it."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{str(directory)!r} is not a folder")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".phonehome-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write in {str(directory)!r}: {e.strerror or e}") from None


def _writable_file(path: Path) -> None:
    """`path` can be created, or opened for update, without touching its contents."""
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a file")
    _writable_dir(path.parent)
    if path.exists():
        try:
            with path.open("r+b"):
                pass
        except OSError as e:
            raise ValueError(f"cannot open {str(path)!r}: {e.strerror or e}") from None


def parse_config(options: Any) -> AddonConfig:
    """Read and check every phonehome option of `options` (attribute access).

    Raises ConfigError with one `phonehome_x: reason` line per bad value.
    """
    problems: list[str] = []

    def check(name: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        try:
            return parse(getattr(options, name))
        except Exception as e:  # noqa: BLE001 - every reason becomes one line
            problems.append(f"{name}: {_one_line(e) or type(e).__name__}")
            return default

    def at_least(minimum: int) -> Callable[[Any], int]:
        def parse(value: Any) -> int:
            number = _as_int(value)
            if number < minimum:
                raise ValueError(f"must be at least {minimum}, not {number}")
            return number
        return parse

    defaults = DecodeLimits()
    limits = DecodeLimits(
        max_decompressed_bytes=check("phonehome_max_body", at_least(1),
                                     defaults.max_decompressed_bytes),
        max_depth=check("phonehome_max_depth", at_least(1), defaults.max_depth),
        max_leaves=check("phonehome_max_leaves", at_least(1), defaults.max_leaves),
    )
    reveal, quiet, dry_run, audit_process, details, mark_flows = (
        check(name, _as_bool, False) for name in BOOL_OPTIONS)
    total_interval = check("phonehome_total_interval", _seconds, TOTAL_INTERVAL)
    scope = check("phonehome_scope", _scope)
    formats = check("phonehome_formats", lambda text: tuple(parse_formats(text)), ())
    time_scale = check("phonehome_time_scale", _time_scale, 1.0)
    mode = check("phonehome_enforce", _mode, "observe")
    policy = check("phonehome_enforce_file",
                   lambda text: _policy(mode, bool(dry_run), text), EnforcePolicy())
    rule_paths = tuple(Path(p) for p in (getattr(options, "phonehome_rules", None) or ()))
    app = str(getattr(options, "phonehome_app", "") or "auto").strip() or "auto"
    rules = None
    try:
        rules = load_rules(rule_paths, app=None if app == "auto" else app)
    except RuleLoadError as e:
        problems.append(f"phonehome_rules: {_one_line(e)}")
    except ValueError as e:  # the packs loaded, but none is this app
        problems.append(f"phonehome_app: {_one_line(e)}")
    identity_text = getattr(options, "phonehome_identity", "") or ""
    identity = check("phonehome_identity",
                     lambda text: load_identity(Path(text)) if text else None)
    report_dir = Path(getattr(options, "phonehome_report_dir", "") or "reports")
    check("phonehome_report_dir", lambda _: _writable_dir(report_dir))
    store_text = getattr(options, "phonehome_store", "") or ""
    store_path: StoreTarget = (store_text if is_postgres_url(store_text)
                               else Path(store_text) if store_text
                               else report_dir / "audit.sqlite")
    if isinstance(store_path, str):
        key = check("phonehome_store", _shared_store)
    elif store_text:
        check("phonehome_store", lambda _: _writable_file(store_path))
    sensor = str(getattr(options, "phonehome_sensor", "") or "").strip() or default_sensor()
    marker_text = getattr(options, "phonehome_marker_socket", "") or ""
    marker_socket = (Path(marker_text) if marker_text
                     else report_dir / ".phonehome-markers.sock")
    check("phonehome_marker_socket", lambda _: _marker_socket(marker_socket))

    if problems:
        raise ConfigError(problems)
    if not isinstance(store_path, str):  # only once the folder is known to be usable
        key = check("phonehome_store", lambda _: _file_key(store_path))
        if problems:
            raise ConfigError(problems)
    settings = AuditSettings(
        rule_paths=rule_paths,
        identity_path=Path(identity_text) if identity_text else None,
        reveal=reveal,
        limits=limits,
        app=app,
        fingerprint_key=key,
    )
    return AddonConfig(
        scope=scope, formats=formats, settings=settings, rules=rules, identity=identity,
        policy=policy, time_scale=time_scale, report_dir=report_dir, store_path=store_path,
        sensor=sensor, marker_socket=marker_socket, audit_process=audit_process, quiet=quiet,
        details=details, total_interval=total_interval, mark_flows=mark_flows,
    )


def _scope(text: str) -> Any:
    if not text:
        return None
    parsed = flowfilter.parse(text)  # ValueError on a bad filter
    if parsed is None:  # older mitmproxy returned None instead
        raise ValueError(f"invalid filter expression {text!r}")
    return parsed


def _number(value: Any, fits: Callable[[float], bool], requirement: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    if not (math.isfinite(number) and fits(number)):
        raise ValueError(f"{requirement}, not {value!r}")
    return number


def _time_scale(value: Any) -> float:
    return _number(value, lambda scale: 0 < scale <= _MAX_TIME_SCALE,
                   f"must be above 0 and at most {_MAX_TIME_SCALE:g}")


def _seconds(value: Any) -> float:
    return _number(value, lambda seconds: seconds >= 0, "must be 0 or more seconds")


def _mode(text: Any) -> str:
    mode = str(text or "observe").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{text!r} is not one of {', '.join(MODES)}")
    return mode


def _policy(mode: str, dry_run: bool, enforce_file: Any) -> EnforcePolicy:
    try:
        return EnforcePolicy.from_options(mode, dry_run, enforce_file or None)
    except ValueError as e:  # EnforceError lists every problem; one line per option
        errors = getattr(e, "errors", None) or [str(e)]
        more = len(errors) - 1
        suffix = f" (and {more} more error{'s' if more != 1 else ''})" if more else ""
        raise ValueError(f"{errors[0]}{suffix}") from None


def _shared_store(dsn: str) -> bytes:
    """Reach it, create or upgrade its schema, and read its fingerprint key now: a wrong
    DSN fails before traffic."""
    try:
        return store_key(dsn)
    except StoreError as e:
        raise ValueError(str(e)) from None


def _file_key(store: Path) -> bytes:
    try:
        return store_key(store)
    except OSError as e:
        raise ValueError(f"{store.parent}: cannot keep the fingerprint key "
                         f"({e.strerror or e})") from None


def _marker_socket(path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a socket path")


class OptionView:
    """`options` with some values replaced (raw text mitmproxy could not convert)."""

    def __init__(self, options: Any, overrides: Mapping[str, Any]) -> None:
        self._options = options
        self._overrides = dict(overrides)

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._options, name)
