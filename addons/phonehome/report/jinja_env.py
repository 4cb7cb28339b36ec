"""The report templates' one environment: strict, trimmed, with the filters every format uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from .view import format_size, format_time

__all__ = ["TEMPLATES", "template_environment"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


def template_environment(*, autoescape: bool, finalize: Callable[[Any], Any],
                         keep_trailing_newline: bool = False,
                         **filters: Callable[..., Any]) -> jinja2.Environment:
    """`finalize` is the one escaping step for the format; an undefined name is an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(size=format_size, time=format_time, **filters)
    return env
