"""JSON and base64-JSON inside string fields, and strings that only look like them."""

from __future__ import annotations

import base64
import json

import pytest

from builders import make_observation
from phonehome.decode import DecodeLimits, decode
from phonehome.model import Observation


def obs(body: bytes = b"", ct: str = "application/json", **kw) -> Observation:
    return make_observation(body, ct, **kw)


def b64(doc, urlsafe: bool = False, pad: bool = True) -> str:
    raw = json.dumps(doc).encode()
    text = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return text if pad else text.rstrip("=")


USER = {"user": {"email": "jane@example.org"}}

# (id, value of $.data, expected extra leaves (location, path, value, via))
NESTED = [
    ("json string", json.dumps(USER),
     [("$.data.user.email", ("data", "user", "email"), "jane@example.org", ("json",))]),
    ("json array string", '[{"id": 7}]', [("$.data[0].id", ("data", 0, "id"), 7, ("json",))]),
    ("base64 json", b64(USER),
     [("$.data.user.email", ("data", "user", "email"), "jane@example.org", ("base64", "json"))]),
    ("urlsafe base64 without padding", b64({"k": "~~??~~>>"}, urlsafe=True, pad=False),
     [("$.data.k", ("data", "k"), "~~??~~>>", ("base64", "json"))]),
    ("base64 array", b64([1, 2]),
     [("$.data[0]", ("data", 0), 1, ("base64", "json")),
      ("$.data[1]", ("data", 1), 2, ("base64", "json"))]),
    ("json inside base64 inside json", json.dumps({"inner": b64(USER)}),
     [("$.data.inner", ("data", "inner"), b64(USER), ("json",)),
      ("$.data.inner.user.email", ("data", "inner", "user", "email"), "jane@example.org",
       ("json", "base64", "json"))]),
    # look-alikes: nothing beyond the string itself
    ("hex id", "deadbeef", []),
    ("word", "Hello", []),
    ("base64 of text", base64.b64encode(b"this is not json").decode(), []),
    ("uuid", "5c1f0c1e-7a2b-4f7e-9d0e-000000000001", []),
    ("random token", "eW91IHNoYWxsIG5vdCBwYXNz", []),
    ("e-word", "eyeglasses", []),
    ("W-word", "Wy", []),
    ("braces but not JSON", "{not json}", []),
    ("json scalar string", '"quoted"', []),
    ("empty object", "{}", []),
    ("base64 of a JSON number", base64.b64encode(b"12345").decode(), []),
    ("base64 of broken JSON", base64.b64encode(b'{"a": ').decode(), []),
    ("jwt-like", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", []),
]


@pytest.mark.parametrize("value,extra", [r[1:] for r in NESTED], ids=[r[0] for r in NESTED])
def test_nested_strings(value, extra):
    p = decode(obs(json.dumps({"data": value}).encode()))
    got = [(lf.location, lf.path, lf.value, lf.via) for lf in p.leaves]
    assert got[0] == ("$.data", ("data",), value, ())  # the original string is kept
    assert got[1:] == extra
    assert p.tree == {"data": value}  # the tree is what was on the wire
    assert p.notes == [] and p.truncated == []


def _wrap(doc, layers: int) -> str:
    text = json.dumps(doc)
    for _ in range(layers - 1):
        text = json.dumps({"n": text})
    return text


@pytest.mark.parametrize(
    "max_nested,layers,decoded",
    [(3, 1, 1), (3, 3, 3), (3, 4, 3), (0, 1, 0), (1, 2, 1), (5, 5, 5)],
)
def test_nesting_is_bounded_by_max_nested(max_nested, layers, decoded):
    p = decode(obs(json.dumps({"d": _wrap({"v": 1}, layers)}).encode()),
               DecodeLimits(max_nested=max_nested))
    deepest = max(len(leaf.via) for leaf in p.leaves)
    assert deepest == decoded
    assert any(leaf.value == 1 for leaf in p.leaves) == (decoded == layers)


def test_nested_values_count_toward_limits_but_tree_is_untouched():
    inner = json.dumps({f"k{i}": i for i in range(50)})
    p = decode(obs(json.dumps({"a": inner, "b": 1}).encode()), DecodeLimits(max_leaves=10))
    assert len(p.leaves) == 10
    assert p.truncated == ["more than 10 leaves"]
    assert p.tree == {"a": inner}  # walk stopped inside $.a; $.b was never reached


def test_nested_depth_counts_from_the_outer_path():
    inner = json.dumps({"x": {"y": {"z": 1}}})
    p = decode(obs(json.dumps({"a": {"b": inner}}).encode()), DecodeLimits(max_depth=4))
    assert [leaf.location for leaf in p.leaves] == ["$.a.b"]
    assert p.truncated == ["nesting deeper than 4"]


@pytest.mark.parametrize(
    "field,expected",
    [
        ("query", ("query:d.user.email", ("d", "user", "email"), "query")),
        ("header", ("header:X-Ctx.user.email", ("X-Ctx", "user", "email"), "header")),
        ("cookie", ("cookie:c.user.email", ("c", "user", "email"), "cookie")),
    ],
)
def test_nested_in_request_metadata(field, expected):
    value = b64(USER)
    kw = {
        "query": dict(query=[("d", value)]),
        "header": dict(headers=[("X-Ctx", value)]),
        "cookie": dict(cookies=[("c", value)]),
    }[field]
    p = decode(obs(**kw))
    leaf = p.leaves[-1]
    assert (leaf.location, leaf.path, leaf.source) == expected
    assert leaf.value == "jane@example.org" and leaf.via == ("base64", "json")


def test_text_body_holding_base64_json():
    p = decode(obs(b64(USER).encode(), "text/plain"))
    assert p.kind == "text"
    assert [(lf.location, lf.via) for lf in p.leaves] == [
        ("$", ()), ("$.user.email", ("base64", "json"))
    ]
