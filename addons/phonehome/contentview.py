"""The "phonehome" content view of mitmproxy and mitmweb: the audit of the flow clicked.

mitmproxy 12 takes a `Contentview` (prettify → text), mitmproxy 11 a `View` (call →
styled lines); both ask `inspect` for the audit on demand, since a view runs only when a
person looks. A failure becomes the view's text: the traffic never sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mitmproxy import contentviews

from .flow_view import Annotations, Line, view_lines, view_text
from .report.safe_text import visible

__all__ = ["NAME", "Inspect", "lines_for", "make_view", "register", "unregister"]

NAME = "phonehome"

Inspect = Callable[[Any, "int | None"], "tuple[Mapping[str, Any], Annotations] | None"]
"""(flow, WebSocket message index or None) → (flow record, what the rules say of its
places), or None when phonehome does not audit that flow."""

_AUTO_PRIORITY = 2.0
"""Above the JSON view's 1, so a request with findings opens on its audit."""


def _message_index(flow: Any, message: Any) -> int | None:
    websocket = getattr(flow, "websocket", None)
    if message is None or websocket is None:
        return None
    for index, candidate in enumerate(websocket.messages):
        if candidate is message:
            return index
    return None


def lines_for(inspect: Inspect, flow: Any, websocket_message: Any = None) -> list[Line]:
    """The view of `flow` (or of one of its WebSocket messages). Never raises."""
    if flow is None:
        return [[("warn", "# phonehome: no flow to audit")]]
    index = _message_index(flow, websocket_message)
    if websocket_message is not None and index is None:
        return [[("warn", "# phonehome: message not found in its flow")]]
    try:
        found = inspect(flow, index)
    except Exception as e:  # noqa: BLE001 - a view shows its failure, it never raises
        failure = visible(f"# phonehome: the audit failed: {type(e).__name__}: {e}")
        return [[("error", failure[:500])]]
    if found is None:
        return [[("text", "# phonehome does not audit this flow (out of scope, a message "
                          "from the server, or phonehome is not running)")]]
    record, annotations = found
    return view_lines(record, annotations)


def _has_findings(flow: Any, http_message: Any) -> bool:
    request = getattr(flow, "request", None)
    meta = getattr(flow, "metadata", {}).get("phonehome") or {}
    return http_message is not None and http_message is request and bool(meta.get("findings"))


def make_view(inspect: Inspect) -> Any:
    """The view object this mitmproxy version takes."""
    if hasattr(contentviews, "Contentview"):
        return _make_contentview(inspect)
    return _make_legacy_view(inspect)


def _make_contentview(inspect: Inspect) -> Any:
    class PhonehomeContentview(contentviews.Contentview):
        name = NAME
        syntax_highlight = "yaml"

        def prettify(self, data: bytes, metadata: Any) -> str:
            return view_text(lines_for(inspect, metadata.flow, metadata.websocket_message))

        def render_priority(self, data: bytes, metadata: Any) -> float:
            return _AUTO_PRIORITY if _has_findings(metadata.flow, metadata.http_message) else -1

    return PhonehomeContentview()


def _make_legacy_view(inspect: Inspect) -> Any:
    from mitmproxy.contentviews.base import View

    class PhonehomeView(View):
        name = NAME

        def __call__(self, data: bytes, *, flow: Any = None, websocket_message: Any = None,
                     **unknown: Any) -> tuple[str, Any]:
            return "phonehome audit", iter(lines_for(inspect, flow, websocket_message))

        def render_priority(self, data: bytes, *, flow: Any = None, http_message: Any = None,
                            **unknown: Any) -> float:
            return _AUTO_PRIORITY if _has_findings(flow, http_message) else -1

    return PhonehomeView()


def register(inspect: Inspect) -> Any:
    """Add the view, replacing an earlier one of the same name (a reloaded script)."""
    view = make_view(inspect)
    if hasattr(contentviews, "registry"):
        contentviews.registry.register(view)
        return view
    old = contentviews.get(NAME)
    if old is not None:
        contentviews.remove(old)
    contentviews.add(view)
    return view


def unregister(view: Any) -> None:
    """Take the view out where mitmproxy can (11); 12 replaces it on the next register."""
    if not hasattr(contentviews, "registry") and view in contentviews.views:
        contentviews.remove(view)
