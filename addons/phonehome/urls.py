"""Splitting URLs and authorities from untrusted text, without ever raising.

urllib's `urlsplit()` raises on a stray `[` or `]` and `.port` on a bad port,
and the audited app writes every byte of its Host header and path. These
helpers keep the text as it came and split it the way `urlsplit` would.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl

__all__ = ["UrlParts", "split_authority", "split_url", "query_pairs", "url_path", "url_query"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_MAX_PORT = 65535


class UrlParts(NamedTuple):
    scheme: str
    netloc: str
    path: str
    query: str
    fragment: str

    @property
    def host(self) -> str:
        return split_authority(self.netloc)[0]

    @property
    def port(self) -> int | None:
        return split_authority(self.netloc)[1]


def split_url(url: str) -> UrlParts:
    """`scheme://netloc/path?query#fragment`, split as `urlsplit` does for any URL
    it accepts, and split the same way (no checks) for the ones it refuses."""
    text = url if isinstance(url, str) else str(url)
    scheme = ""
    match = _SCHEME.match(text)
    if match:
        scheme, text = match.group()[:-1].lower(), text[match.end():]
    netloc = ""
    if text.startswith("//"):
        end = len(text)
        for stop in "/?#":
            found = text.find(stop, 2)
            if 0 <= found < end:
                end = found
        netloc, text = text[2:end], text[end:]
    text, _, fragment = text.partition("#")
    path, _, query = text.partition("?")
    return UrlParts(scheme, netloc, path, query, fragment)


def split_authority(authority: str) -> tuple[str, int | None]:
    """(host, port) of `user@host:port` or `[v6]:port`; the port is None unless it is a
    number from 0 to 65535. The host keeps its case and anything odd in it."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("[") and "]" in hostport:
        close = hostport.index("]")
        host, rest = hostport[1:close], hostport[close + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon or not port_text.isascii() or not port_text.isdigit() or ":" in host:
            host, port_text = hostport, ""
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else None
    return host, port if port is not None and port <= _MAX_PORT else None


def url_path(url: str) -> str:
    return split_url(url).path


def url_query(url: str) -> str:
    return split_url(url).query


def query_pairs(query: str, max_pairs: int | None = None) -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string, blanks kept, as mitmproxy's
    `Request.query` gives them (percent-decoded, bad UTF-8 surrogate-escaped)."""
    return parse_qsl(query, keep_blank_values=True, errors="surrogateescape",
                     max_num_fields=None)[:max_pairs]
