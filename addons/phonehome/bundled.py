"""Where the packaged rule packs live, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

__all__ = ["builtin_rules_dir", "DEFAULT_REPORT_DIR"]

DEFAULT_REPORT_DIR = Path("reports")

_PACKAGE_DIR = Path(__file__).resolve().parent


def builtin_rules_dir() -> Path:
    """The bundled `rules/` folder.

    A wheel carries it as `phonehome/_rules`; a checkout (or an editable
    install) has it at the repository root, two levels above this package.
    """
    for candidate in (_PACKAGE_DIR / "_rules", _PACKAGE_DIR.parent.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("phonehome's bundled rules/ folder is missing from this install")
