"""JSON and JSON-lines bodies: leaves, locations, limits and hostile documents."""

from __future__ import annotations

import json
import time

import pytest

from builders import make_observation
from phonehome.decode import DecodeLimits, decode
from phonehome.model import Leaf, Observation


def obs(body: bytes, ct: str = "application/json") -> Observation:
    return make_observation(body, ct)


def body_leaves(p) -> list[tuple[str, object]]:
    return [(leaf.location, leaf.value) for leaf in p.leaves if leaf.source == "body"]


WEBEX = {
    "metrics": [
        {
            "eventPayload": {"event": {"name": "client.call.join", "canProceed": True}},
            "type": ["diagnostic-event"],
        }
    ]
}

# (id, body, expected (location, value) pairs in order)
LEAVES = [
    (
        "webex telemetry",
        json.dumps(WEBEX),
        [
            ("$.metrics[0].eventPayload.event.name", "client.call.join"),
            ("$.metrics[0].eventPayload.event.canProceed", True),
            ("$.metrics[0].type[0]", "diagnostic-event"),
        ],
    ),
    ("bracket keys", '{"content-type": 1, "a b": 2, "it\'s": 3, "x\\\\y": 4}',
     [("$['content-type']", 1), ("$['a b']", 2), ("$['it\\'s']", 3), ("$['x\\\\y']", 4)]),
    ("digit and unicode keys", '{"1": {"2": "x"}, "名": 5, "": 6}',
     [("$.1.2", "x"), ("$['名']", 5), ("$['']", 6)]),
    ("scalars", '{"i": -1, "f": 2.5, "t": true, "f2": false, "n": null, "s": ""}',
     [("$.i", -1), ("$.f", 2.5), ("$.t", True), ("$.f2", False), ("$.n", None), ("$.s", "")]),
    ("root array", '[1, [2, {"a": 3}]]', [("$[0]", 1), ("$[1][0]", 2), ("$[1][1].a", 3)]),
    ("root scalar", '"just a string"', [("$", "just a string")]),
    ("root number", "42", [("$", 42)]),
    ("empty containers", '{"a": {}, "b": [], "c": [[]]}', []),
    ("whitespace and BOM", '\ufeff  {"a": 1}  ', [("$.a", 1)]),
]


@pytest.mark.parametrize("body,expected", [r[1:] for r in LEAVES], ids=[r[0] for r in LEAVES])
def test_json_leaves(body, expected):
    p = decode(obs(body.encode("utf-8")))
    assert p.kind == "json"
    assert body_leaves(p) == expected
    assert p.truncated == [] and p.notes == []


def test_leaf_path_matches_location():
    p = decode(obs(json.dumps(WEBEX).encode()))
    leaf = p.leaves[0]
    assert leaf == Leaf(
        "$.metrics[0].eventPayload.event.name",
        ("metrics", 0, "eventPayload", "event", "name"),
        "client.call.join",
        "body",
        (),
    )
    assert leaf.key == "name"
    assert p.tree == WEBEX


# (id, body, content type, kind, tree, note substring or None)
SNIFF = [
    ("json undeclared", b'{"a":1}', "", "json", {"a": 1}, None),
    ("json as text/plain", b'{"a":1}', "text/plain;charset=UTF-8", "json", {"a": 1}, None),
    ("json as octet-stream", b"[1]", "application/octet-stream", "json", [1], None),
    ("json as protobuf", b'{"a":1}', "application/x-protobuf", "json", {"a": 1},
     "but body is JSON"),
    ("vendor +json", b'{"a":1}', "application/vnd.api+json", "json", {"a": 1}, None),
    ("cut JSON keeps prefix", b'{"a": 1, "b": [2, 3', "application/json", "json",
     {"a": 1, "b": [2, 3]}, "declared application/json but body is not JSON"),
    ("text under JSON type", b"hello there", "application/json", "text", "hello there",
     "declared application/json but body is not JSON"),
    ("binary under JSON type", bytes(range(256)) * 4, "application/json", "binary", None,
     "declared application/json but body is not JSON"),
    ("brace garbage under JSON", b"{\x00\xff\xfe garbage", "application/json", "binary", None,
     "declared application/json but body is not JSON"),
    ("invalid UTF-8 in a string", b'{"a": "x\xffy"}', "application/json", "json",
     {"a": "x\ufffdy"}, "invalid UTF-8 at byte 8"),
    ("lines under JSON type", b'{"a":1}\n{"b":2}\n', "application/json", "ndjson",
     [{"a": 1}, {"b": 2}], "body is JSON lines"),
    ("infinity and huge ints survive", b'{"x": 1e999, "y": [1, 2', "application/json", "json",
     {"x": "1e999", "y": [1, 2]}, "not JSON"),
]


@pytest.mark.parametrize(
    "body,ct,kind,tree,note", [r[1:] for r in SNIFF], ids=[r[0] for r in SNIFF]
)
def test_json_detection(body, ct, kind, tree, note):
    p = decode(obs(body, ct))
    assert p.kind == kind
    assert p.tree == tree
    if note is None:
        assert p.notes == []
    else:
        assert any(note in n for n in p.notes), p.notes
    json.dumps(p.tree, allow_nan=False)  # JSON-safe


# NDJSON: (id, body, content type, expected (location, value, path) triples)
NDJSON = [
    (
        "sentry envelope",
        b'{"event_id":"9ec79c33","dsn":"https://k@o.ingest.sentry.io/1"}\n'
        b'{"type":"event","length":41}\n'
        b'{"user":{"email":"jane@example.org"}}\n',
        "application/x-sentry-envelope",
        [
            ("$[0].event_id", "9ec79c33", (0, "event_id")),
            ("$[0].dsn", "https://k@o.ingest.sentry.io/1", (0, "dsn")),
            ("$[1].type", "event", (1, "type")),
            ("$[1].length", 41, (1, "length")),
            ("$[2].user.email", "jane@example.org", (2, "user", "email")),
        ],
    ),
    ("x-ndjson with blank line and CRLF", b'{"a":1}\r\n\r\n{"b":2}', "application/x-ndjson",
     [("$[0].a", 1, (0, "a")), ("$[1]", None, (1,)), ("$[2].b", 2, (2, "b"))]),
    ("undeclared lines are sniffed", b'{"a":1}\n{"b":2}\n', "",
     [("$[0].a", 1, (0, "a")), ("$[1].b", 2, (1, "b"))]),
    ("non-JSON line kept as text", b'{"a":1}\nnot json\n', "application/x-ndjson",
     [("$[0].a", 1, (0, "a")), ("$[1]", "not json", (1,))]),
]


@pytest.mark.parametrize(
    "body,ct,expected", [r[1:] for r in NDJSON], ids=[r[0] for r in NDJSON]
)
def test_ndjson(body, ct, expected):
    p = decode(obs(body, ct))
    assert p.kind == "ndjson"
    got = [(leaf.location, leaf.value, leaf.path) for leaf in p.leaves if leaf.source == "body"]
    assert got == expected


def _deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"k":1,"a":' * depth + b"2" + b"}" * depth


def _tree_depth(tree) -> int:
    depth = 0
    while isinstance(tree, (list, dict)) and tree:
        tree = tree[0] if isinstance(tree, list) else tree["a"]
        depth += 1
    return depth


@pytest.mark.parametrize("depth", [65, 1_000, 1_025, 10_000, 100_000])
@pytest.mark.parametrize("kind", ["list", "object"])
def test_deep_nesting_is_cut_without_recursion(depth, kind):
    p = decode(obs(_deep(depth, kind)))
    assert p.kind == "json"
    assert p.truncated == ["nesting deeper than 64"]
    assert all(len(leaf.path) <= 64 for leaf in p.leaves)
    assert _tree_depth(p.tree) == 64  # pruned: safe for recursive consumers
    if kind == "object":  # the "k" leaves above the cut are kept
        assert len(p.leaves) == 64
        assert p.leaves[1].location == "$.a.k"


@pytest.mark.parametrize("depth", [10, 64])
def test_nesting_within_limit_is_complete(depth):
    p = decode(obs(_deep(depth, "list")))
    assert p.truncated == []
    assert [len(leaf.path) for leaf in p.leaves] == [depth]


def test_custom_depth_limit():
    p = decode(obs(b'{"a": {"b": {"c": 1}}, "d": 2}'), DecodeLimits(max_depth=2))
    assert body_leaves(p) == [("$.d", 2)]
    assert p.truncated == ["nesting deeper than 2"]
    assert p.tree == {"a": {"b": None}, "d": 2}


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "cut"])
def test_million_keys_bounded_by_leaf_limit(valid):
    body = json.dumps({f"k{i}": i for i in range(1_000_000)}, separators=(",", ":")).encode()
    if not valid:
        body = body[:-5]
    started = time.perf_counter()
    p = decode(obs(body))
    elapsed = time.perf_counter() - started
    assert len(p.leaves) == 20_000
    assert "more than 20000 leaves" in p.truncated
    assert p.leaves[0].location == "$.k0" and p.leaves[-1].location == "$.k19999"
    assert len(p.tree) == 20_000
    print(f"1,000,000 keys: {elapsed:.3f}s")  # informative; machine is noisy


def test_leaf_limit_prunes_tree_consistently():
    doc = {"a": [1, 2, 3], "b": {"c": 4, "d": 5}, "e": 6}
    p = decode(obs(json.dumps(doc).encode()), DecodeLimits(max_leaves=4))
    assert body_leaves(p) == [("$.a[0]", 1), ("$.a[1]", 2), ("$.a[2]", 3), ("$.b.c", 4)]
    assert p.tree == {"a": [1, 2, 3], "b": {"c": 4}}
    assert p.truncated == ["more than 4 leaves"]


def test_long_string_is_cut_in_the_leaf_only():
    p = decode(obs(json.dumps({"s": "x" * 100}).encode()), DecodeLimits(max_text_leaf=10))
    assert body_leaves(p) == [("$.s", "x" * 10)]
    assert p.tree == {"s": "x" * 100}
    assert p.truncated == ["string longer than 10 characters cut (first at $.s)"]
