"""Find, read, validate and compile rule packs."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..bundled import builtin_rules_dir
from ..yamldoc import DocumentError, Problem, load_document
from .engine import RuleSet
from .party import default_resolver
from .schema import Pack, PackBuilder

__all__ = ["load_rules", "RuleError", "RuleLoadError", "pack_files"]

RuleError = Problem
"""One problem in a rule pack: `path:line:col: message`."""
RuleLoadError = DocumentError
"""Rule packs failed to load; `.errors` holds every problem (the one document error)."""


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def pack_files(paths: Sequence[Path | str] = (), *, include_builtin: bool = True
               ) -> tuple[list[tuple[Path, str]], list[RuleError]]:
    """(file, display name) for every pack to load, in order, without repeats.

    In the bundled folder, every top-level *.yaml is a rule pack; other YAML
    data lives in subfolders (claims/, enforce/).
    """
    files: list[tuple[Path, str]] = []
    errors: list[RuleError] = []
    if include_builtin:
        builtin = builtin_rules_dir()
        files.extend((f, _display(f)) for f in sorted(builtin.glob("*.yaml")) if f.is_file())
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                errors.append(RuleError(str(raw), 1, 1, "no *.yaml rule packs in this folder"))
            files.extend((f, _display(f) if not path.is_absolute() else str(f)) for f in found)
        elif path.is_file():
            files.append((path, str(raw)))
        else:
            errors.append(RuleError(str(raw), 1, 1, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f, display in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((f, display))
    return unique, errors




@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading builds objects that all live until it ends: the cyclic collector would
    walk the growing heap again and again (time grew faster than the pack), and
    what it frees here goes with the next collection anyway."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_rules(paths: Sequence[Path | str] = (), *, include_builtin: bool = True,
               app: str | None = None) -> RuleSet:
    """Load the bundled packs (unless excluded) plus `paths` (files or folders).

    `app`: the audited app's pack id (None: decided by the report); ValueError
    when no loaded first-party pack has that id.

    Raises RuleLoadError listing every error (`path:line:col: message`).
    """
    with _collector_paused():
        return _load_rules(paths, include_builtin, app)


def _load_rules(paths: Sequence[Path | str], include_builtin: bool,
                app: str | None) -> RuleSet:
    files, errors = pack_files(paths, include_builtin=include_builtin)
    resolver = default_resolver()
    caches: dict[str, dict[str, object]] = {}
    packs: list[Pack] = []
    for file, display in files:
        data, yaml_errors = load_document(file, display)
        errors.extend(yaml_errors)
        if data is None:
            if not yaml_errors:
                errors.append(RuleError(display, 1, 1, "the pack is empty"))
            continue
        builder = PackBuilder(display, resolver, caches)
        pack = builder.pack(data)
        errors.extend(builder.errors)
        if pack is not None:
            packs.append(pack)
    errors.extend(_cross_checks(packs))
    if errors:
        raise RuleLoadError(errors)
    return RuleSet(packs, resolver, app=app)


def _cross_checks(packs: Sequence[Pack]) -> list[RuleError]:
    """Checks across packs, run once at the end: unique pack ids and rule ids."""
    errors: list[RuleError] = []
    pack_ids: dict[str, Pack] = {}
    for pack in packs:
        first = pack_ids.setdefault(pack.id, pack)
        if first is not pack:
            errors.append(RuleError(pack.path, 1, 1,
                                    f"duplicate pack id {pack.id!r} (also in {first.path})"))
    rule_ids: dict[str, str] = {}
    for pack in packs:
        for rule in pack.rules:
            first_where = rule_ids.setdefault(rule.id, rule.where)
            if first_where != rule.where:
                path, _, line = rule.where.rpartition(":")
                errors.append(RuleError(path, int(line), 1,
                                        f"duplicate rule id {rule.id!r} "
                                        f"(first defined at {first_where})"))
    return errors
