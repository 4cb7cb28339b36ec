"""Reading mitmproxy flow files (.mitm) fast, one flow at a time.

An audit needs only what a rule filter reads, so a plain HTTP flow is parsed by index
over one buffer; anything unusual goes through mitmproxy's own code and errors.
"""

from __future__ import annotations

import io
import types
import typing
from dataclasses import fields
from typing import Any, BinaryIO

from mitmproxy import connection, http, version
from mitmproxy.flow import Error, Flow
from mitmproxy.io import compat, tnetstring

__all__ = ["loads", "read_flow", "read_frame", "flow_from_frame", "new_request"]

_MAX_PREFIX_DIGITS = 12
"""mitmproxy refuses longer length prefixes at the top level."""

# tnetstring type tags, and the bytes of a length prefix
_BYTES, _STR, _INT, _FLOAT = ord(","), ord(";"), ord("#"), ord("^")
_BOOL, _NULL, _LIST, _DICT = ord("!"), ord("~"), ord("]"), ord("}")
_COLON, _ZERO, _NINE = ord(":"), ord("0"), ord("9")


def _span(buffer: bytes, position: int, end: int) -> tuple[int, int, int]:
    """(start, stop, following) of the value whose length prefix starts at `position`,
    for any prefix mitmproxy's `tnetstring.split` takes: it parses it with int(),
    which allows signs, spaces and "_", and slices a negative length from `end`."""
    colon = buffer.find(b":", position, end)
    if colon < 0:
        raise ValueError("not a tnetstring: missing length prefix")
    length = int(buffer[position:colon])
    start = colon + 1
    if length >= 0:
        return start, start + length, start + length + 1
    stop = end + length
    return start, stop, start if length == -1 else stop + 1


def _pop(buffer: bytes, position: int, end: int) -> tuple[Any, int]:
    """The value whose length prefix starts at `position` in `buffer[:end]`, and where
    the value after it starts: mitmproxy's `tnetstring.pop`, by index."""
    # Most prefixes in a flow have one or two digits: read those without find() and int().
    if position + 2 < end and buffer[position + 1] == _COLON and _ZERO <= buffer[position] <= _NINE:
        start = position + 2
        stop = start + buffer[position] - _ZERO
        following = stop + 1
    elif (position + 3 < end and buffer[position + 2] == _COLON
          and _ZERO <= buffer[position] <= _NINE and _ZERO <= buffer[position + 1] <= _NINE):
        start = position + 3
        stop = start + (buffer[position] - _ZERO) * 10 + buffer[position + 1] - _ZERO
        following = stop + 1
    else:
        start, stop, following = _span(buffer, position, end)
    if not start <= stop < end:
        raise ValueError("not a tnetstring: invalid length prefix")
    tag = buffer[stop]
    if tag == _STR:
        return buffer[start:stop].decode(), following
    if tag == _BYTES:
        return buffer[start:stop], following
    if tag == _DICT:
        return _dict(buffer, start, stop), following
    if tag == _LIST:
        return _list(buffer, start, stop), following
    if tag == _INT:
        return int(buffer[start:stop]), following
    if tag == _FLOAT:
        return float(buffer[start:stop]), following
    if tag == _NULL:
        if stop > start:
            raise ValueError("not a tnetstring: invalid null literal")
        return None, following
    if tag == _BOOL:
        word = buffer[start:stop]
        if word == b"true":
            return True, following
        if word == b"false":
            return False, following
        raise ValueError("not a tnetstring: invalid boolean literal")
    raise ValueError(f"unknown type tag: {tag}")


def _dict(buffer: bytes, start: int, stop: int) -> dict[Any, Any]:
    items = {}
    while start < stop:
        key, start = _pop(buffer, start, stop)
        items[key], start = _pop(buffer, start, stop)
    return items


def _list(buffer: bytes, start: int, stop: int) -> list[Any]:
    values = []
    while start < stop:
        value, start = _pop(buffer, start, stop)
        values.append(value)
    return values


def loads(data: bytes) -> Any:
    """The first value in `data`, as mitmproxy's `tnetstring.loads` gives it; raises
    where it raises, with the same exception type."""
    return _pop(data, 0, len(data))[0]


def read_frame(fo: BinaryIO) -> bytes:
    """The next flow's bytes in `fo` (its value and type tag, without the length
    prefix), read exactly as mitmproxy's `tnetstring.load` reads them; nothing is
    parsed. Raises ValueError on anything but a dict."""
    digits = b""
    byte = fo.read(1)
    while byte.isdigit() and len(digits) < _MAX_PREFIX_DIGITS:
        digits += byte
        byte = fo.read(1)
    if not digits or byte != b":":
        raise ValueError("not a tnetstring: missing or invalid length prefix")
    length = int(digits)
    record = fo.read(length + 1)  # the value, then its type tag
    if len(record) <= length:
        raise ValueError("not a tnetstring: the file ends inside a value")
    if record[length] != _DICT:
        raise ValueError("not a flow: not a dict")
    return record


_CONNECTIONS = frozenset(("client_conn", "server_conn"))
_MAX_CONNECTIONS = 256
# Parsed connection states by their bytes: flows on one connection repeat them.
# Shared between flows, so only ever read (see `_flow`); never an old format's.
_connections: dict[bytes, dict[Any, Any]] = {}


def _state(buffer: bytes, stop: int) -> dict[Any, Any]:
    """A flow's state (the dict in `buffer[:stop]`), its connections' states taken
    from `_connections` when the same bytes were parsed before."""
    items: dict[Any, Any] = {}
    start = 0
    while start < stop:
        key, start = _pop(buffer, start, stop)
        if key in _CONNECTIONS:
            following = _plain_end(buffer, start, stop)
            if following:
                raw = buffer[start:following]
                value = _connections.get(raw)
                if value is None:
                    value, start = _pop(buffer, start, stop)
                    if type(value) is dict:
                        if len(_connections) >= _MAX_CONNECTIONS:
                            _connections.clear()
                        _connections[raw] = value
                else:
                    start = following
                items[key] = value
                continue
        items[key], start = _pop(buffer, start, stop)
    if items.get("version") != version.FLOW_FORMAT_VERSION:
        return _dict(buffer, 0, stop)  # migrations change connection states in place
    return items


def _plain_end(buffer: bytes, position: int, end: int) -> int:
    """Where the value at `position` ends, for a plain decimal length prefix; else 0."""
    colon = buffer.find(b":", position, min(end, position + _MAX_PREFIX_DIGITS + 1))
    if colon <= position or not buffer[position:colon].isdigit():
        return 0
    following = colon + 1 + int(buffer[position:colon]) + 1
    return following if following <= end else 0


def _load_state(fo: BinaryIO) -> dict[Any, Any]:
    """The next flow state in `fo`. Raises on anything but a dict."""
    record = read_frame(fo)
    return _state(record, len(record) - 1)


def _accepted(annotation: Any) -> frozenset[type] | None:
    """The exact types a message field may hold for mitmproxy's constructor to keep
    it as it is and its type check to pass; None for a type this does not know."""
    parts = typing.get_args(annotation) if isinstance(annotation, types.UnionType) \
        else (annotation,)
    out: set[type] = set()
    for part in parts:
        if part is float:
            out.update((float, int))
        elif part in (bytes, str, int, http.Headers, type(None)):
            out.add(part)
        else:
            return None
    return frozenset(out)


def _field_types(data: type) -> dict[str, frozenset[type]] | None:
    accepted = {f.name: _accepted(f.type) for f in fields(data)}
    return None if None in accepted.values() else accepted  # type: ignore[return-value]


_REQUEST_FIELDS = _field_types(http.RequestData)
_RESPONSE_FIELDS = _field_types(http.ResponseData)


def _message(kind: Any, data: type, accepted: dict[str, frozenset[type]] | None,
             state: dict[Any, Any], slow: Any = None) -> Any:
    """`kind.from_state(state)` without the per-field type check mitmproxy runs in
    debug mode: the fields' types are checked here, exactly, in one pass. A state
    with other keys or types is left to `slow` (default `from_state`), which
    converts or raises."""
    if slow is None:
        slow = kind.from_state
    if accepted is None or state.keys() != accepted.keys():
        return slow(state)
    values = dict(state)
    values["headers"] = http.Headers(values["headers"])
    if values["trailers"] is not None:
        values["trailers"] = http.Headers(values["trailers"])
    for name, types_ in accepted.items():
        if type(values[name]) not in types_:
            return slow(state)
    message = object.__new__(data)
    message.__dict__.update({name: values[name] for name in accepted})
    out = object.__new__(kind)
    out.data = message
    return out


def new_request(fields: dict[str, Any]) -> http.Request:
    """`http.Request(**fields)`, `fields` holding headers and trailers as pairs of bytes;
    without the debug-mode type check when each field has a type it keeps as it is."""
    return _message(http.Request, http.RequestData, _REQUEST_FIELDS, fields,
                    lambda fields: http.Request(**fields))


def _light_http_flow(state: dict[Any, Any]) -> http.HTTPFlow | None:
    """A plain HTTP flow from its (migrated) state, without rebuilding its
    connections' TLS details and certificates; None for any other flow.

    Everything a mitmproxy filter reads is there: the request, the response,
    the error, the connections' addresses and the flow's own flags.
    """
    if state["type"] != "http" or state["websocket"]:
        return None
    client, server = state["client_conn"], state["server_conn"]
    # The connections keep their saved ids (a new one would cost a uuid4 each).
    flow = http.HTTPFlow(
        connection.Client(peername=tuple(client["peername"]), sockname=tuple(client["sockname"]),
                          timestamp_start=client["timestamp_start"], id=client["id"]),
        connection.Server(address=tuple(server["address"]) if server["address"] else None,
                          id=server["id"]),
    )
    flow.id = state["id"]
    flow.request = _message(http.Request, http.RequestData, _REQUEST_FIELDS, state["request"])
    flow.response = _message(http.Response, http.ResponseData, _RESPONSE_FIELDS,
                             state["response"]) if state["response"] else None
    flow.error = Error.from_state(state["error"]) if state["error"] else None
    flow.intercepted = state["intercepted"]
    flow.is_replay = state["is_replay"]
    flow.marked = state["marked"]
    flow.metadata = state["metadata"]
    flow.comment = state["comment"]
    flow.timestamp_created = state["timestamp_created"]
    return flow


def read_flow(fo: BinaryIO) -> Flow:
    """The flow starting at the current position of `fo`, which ends up just past it.

    A plain HTTP flow comes back light (see `_light_http_flow`); any other flow
    as `FlowReader` gives it. Raises what `FlowReader` would raise.

    mitmproxy's FlowReader parses each flow with a pure-Python tnetstring parser
    that copies at every level, then rebuilds the whole flow: connections,
    certificates and all. An audit needs only what a rule filter can read, so a
    plain HTTP flow's state is parsed by index over one buffer, migrated with
    mitmproxy's own `compat.migrate_flow`, and rebuilt with mitmproxy's own
    `Request`/`Response` on connections that carry only their addresses. Anything
    else, and anything unusual, is rebuilt by mitmproxy's own code, so a broken
    file fails with mitmproxy's own exception, word for word.
    """
    start = fo.tell()

    def reread() -> Any:  # mitmproxy's parser says what is wrong, in its words
        fo.seek(start)
        return tnetstring.load(fo)

    try:
        state = _load_state(fo)
    except Exception:  # noqa: BLE001
        state = reread()
    return _flow(state, reread)


def _flow(state: dict[Any, Any], reread: Any) -> Flow:
    # A current flow's connection states may be shared with other flows (`_state`);
    # an older one's were parsed for it alone, and are migrated once: old versions'
    # migrations keep state across flows.
    current = isinstance(state, dict) and state.get("version") == version.FLOW_FORMAT_VERSION
    state = compat.migrate_flow(state)
    try:
        flow = _light_http_flow(state)
    except Exception:  # noqa: BLE001 - a flow mitmproxy can't rebuild either: it says why
        state = compat.migrate_flow(reread())  # from_state consumed part of the state
        flow = None
    else:
        if flow is None and current:
            state = reread()  # from_state may change the state it is given
    return flow if flow is not None else Flow.from_state(state)


def flow_from_frame(frame: bytes) -> Flow:
    """The flow whose bytes `read_frame` returned, as `read_flow` reads it. Raises
    what `read_flow` raises, and LookupError for a flow of an older format,
    whose migration may need the flows before it (read those with `read_flow`)."""
    def reread() -> Any:
        return tnetstring.load(io.BytesIO(b"%d:%s" % (len(frame) - 1, frame)))

    try:
        state = _state(frame, len(frame) - 1)
    except Exception:  # noqa: BLE001
        state = reread()
    if not isinstance(state, dict) or state.get("version") != version.FLOW_FORMAT_VERSION:
        raise LookupError("an older flow format: read it in order")
    return _flow(state, reread)
