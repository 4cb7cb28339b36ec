"""Form and multipart bodies; query, header, cookie and url leaves."""

from __future__ import annotations

import hashlib

import pytest

from builders import make_observation
from phonehome.decode import DecodeLimits, decode
from phonehome.model import Observation


def obs(body: bytes = b"", ct: str = "", **kw) -> Observation:
    return make_observation(body, ct, **kw)


def triples(p, source="body"):
    return [(leaf.location, leaf.path, leaf.value) for leaf in p.leaves if leaf.source == source]


FORM = "application/x-www-form-urlencoded"

# (id, body, content type, expected kind, expected (location, path, value) triples)
FORMS = [
    ("simple", b"uid=42&os=mac", FORM, "form",
     [("$.uid", ("uid",), "42"), ("$.os", ("os",), "mac")]),
    ("percent and plus", b"q=a+b%20c&e=jane%40example.org", FORM, "form",
     [("$.q", ("q",), "a b c"), ("$.e", ("e",), "jane@example.org")]),
    ("repeated field", b"a=1&b=2&a=3", FORM, "form",
     [("$.a[0]", ("a", 0), "1"), ("$.a[1]", ("a", 1), "3"), ("$.b", ("b",), "2")]),
    ("blank value and odd key", b"empty=&x-y=1", FORM, "form",
     [("$.empty", ("empty",), ""), ("$['x-y']", ("x-y",), "1")]),
    ("form sniffed when undeclared", b"a=1&b=two", "", "form",
     [("$.a", ("a",), "1"), ("$.b", ("b",), "two")]),
    ("form sniffed under text/plain", b"a=1&b=two", "text/plain", "form",
     [("$.a", ("a",), "1"), ("$.b", ("b",), "two")]),
    ("prose is not a form", b"x = y is an equation", "", "text",
     [("$", (), "x = y is an equation")]),
    ("invalid percent-UTF-8", b"n=%ff%fe", FORM, "form", [("$.n", ("n",), "\ufffd\ufffd")]),
]


@pytest.mark.parametrize(
    "body,ct,kind,expected", [r[1:] for r in FORMS], ids=[r[0] for r in FORMS]
)
def test_form(body, ct, kind, expected):
    p = decode(obs(body, ct))
    assert p.kind == kind
    assert triples(p) == expected


def multipart(*parts: tuple[dict[str, str], bytes], boundary: str = "XyZ") -> bytes:
    out = b""
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode()
        out += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"
        out += body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def disp(name: str, filename: str | None = None, ct: str | None = None) -> dict[str, str]:
    value = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    headers = {"Content-Disposition": value}
    if ct:
        headers["Content-Type"] = ct
    return headers


LOG = b"2024-05-01 crash in module x\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(40))

MULTIPART = [
    (
        "fields and JSON file",
        multipart((disp("user"), b"jane"), (disp("meta", "m.json", "application/json"),
                                            b'{"os": "mac", "ids": [7]}')),
        "multipart/form-data; boundary=XyZ",
        {"user": "jane", "meta": {"filename": "m.json", "content_type": "application/json",
                                  "size": 25, "sha256": hashlib.sha256(b'{"os": "mac", "ids": [7]}')
                                  .hexdigest(), "content": {"os": "mac", "ids": [7]}}},
        ["$.user", "$.meta.filename", "$.meta.content_type", "$.meta.size", "$.meta.sha256",
         "$.meta.content.os", "$.meta.content.ids[0]"],
    ),
    (
        "text and binary files",
        multipart((disp("log", "crash.log", "text/plain"), LOG),
                  (disp("shot", "s.png", "image/png"), PNG)),
        'multipart/form-data; boundary="XyZ"',
        {"log": {"filename": "crash.log", "content_type": "text/plain", "size": len(LOG),
                 "sha256": hashlib.sha256(LOG).hexdigest(), "content": LOG.decode()},
         "shot": {"filename": "s.png", "content_type": "image/png", "size": len(PNG),
                  "sha256": hashlib.sha256(PNG).hexdigest()}},
        ["$.log.filename", "$.log.content_type", "$.log.size", "$.log.sha256", "$.log.content",
         "$.shot.filename", "$.shot.content_type", "$.shot.size", "$.shot.sha256"],
    ),
    (
        "boundary sniffed, repeated field",
        multipart((disp("a"), b"1"), (disp("a"), b"2"), boundary="b0undary"),
        "multipart/form-data",
        {"a": ["1", "2"]},
        ["$.a[0]", "$.a[1]"],
    ),
    (
        "unterminated body keeps parts",
        multipart((disp("a"), b"1"), (disp("b"), b"2"))[:-9],
        "multipart/form-data; boundary=XyZ",
        {"a": "1", "b": "2"},
        ["$.a", "$.b"],
    ),
]


@pytest.mark.parametrize(
    "body,ct,tree,locations", [r[1:] for r in MULTIPART], ids=[r[0] for r in MULTIPART]
)
def test_multipart(body, ct, tree, locations):
    p = decode(obs(body, ct))
    assert p.kind == "multipart"
    assert p.tree == tree
    assert [loc for loc, _, _ in triples(p)] == locations


def test_multipart_without_boundary_falls_back():
    p = decode(obs(b"just words", "multipart/form-data"))
    assert p.kind == "text"
    assert any("no multipart boundary" in n for n in p.notes)


def test_multipart_unterminated_is_noted():
    body = multipart((disp("a"), b"1"))[:-10]
    p = decode(obs(body, "multipart/form-data; boundary=XyZ"))
    assert any("no closing boundary" in n for n in p.notes)


# --- request metadata --------------------------------------------------------

META = [
    (
        "query from the observation",
        dict(url="https://h/p?uid=1&uid=2", query=[("uid", "1"), ("uid", "2")]),
        [("url", ("url",), "https://h/p?uid=1&uid=2", "url"),
         ("query:uid", ("uid",), "1", "query"), ("query:uid", ("uid",), "2", "query")],
    ),
    (
        "query parsed from the url when missing",
        dict(url="https://h/p?a=x%40y&b="),
        [("url", ("url",), "https://h/p?a=x%40y&b=", "url"),
         ("query:a", ("a",), "x@y", "query"), ("query:b", ("b",), "", "query")],
    ),
    (
        "headers, cookie header split into cookies",
        dict(headers=[("X-Device", "mac-1"), ("Cookie", "sid=abc; theme=dark"),
                      ("User-Agent", "Webex/44")]),
        [("header:X-Device", ("X-Device",), "mac-1", "header"),
         ("header:User-Agent", ("User-Agent",), "Webex/44", "header"),
         ("cookie:sid", ("sid",), "abc", "cookie"), ("cookie:theme", ("theme",), "dark", "cookie")],
    ),
    (
        "captured cookies win over the header",
        dict(headers=[("cookie", "sid=abc")], cookies=[("sid", "abc")]),
        [("cookie:sid", ("sid",), "abc", "cookie")],
    ),
    (
        "quoted cookie and bare word",
        dict(headers=[("Cookie", 'a="q v"; flag')]),
        [("cookie:a", ("a",), "q v", "cookie"), ("cookie:flag", ("flag",), "", "cookie")],
    ),
]


@pytest.mark.parametrize("fields,expected", [r[1:] for r in META], ids=[r[0] for r in META])
def test_request_leaves(fields, expected):
    p = decode(obs(**fields))
    assert [(lf.location, lf.path, lf.value, lf.source) for lf in p.leaves] == expected
    assert p.kind == "empty" and p.tree is None


def test_metadata_counts_toward_leaf_limit():
    headers = [(f"X-H{i}", str(i)) for i in range(10)]
    p = decode(obs(b'{"a": 1}', "application/json", headers=headers), DecodeLimits(max_leaves=5))
    assert len(p.leaves) == 5
    assert p.truncated == ["more than 5 leaves"]
    assert p.tree == {}
