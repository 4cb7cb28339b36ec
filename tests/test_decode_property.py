"""Property: decode() never raises and always respects its limits."""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonehome.decode import DecodeLimits, decode
from phonehome.model import Observation

KINDS = {"json", "ndjson", "form", "multipart", "protobuf", "text", "binary", "empty"}
SOURCES = {"body", "query", "header", "cookie", "url"}

CONTENT_TYPES = st.sampled_from([
    "", "application/json", "application/x-ndjson", "application/x-sentry-envelope",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
    "multipart/form-data", "application/x-protobuf", "application/grpc",
    "application/grpc-web-text", "text/plain", "text/html; charset=latin-1",
    "application/octet-stream", "image/png", "application/vnd.x+json", ";;;", "\x00/\xff",
])
ENCODINGS = st.sampled_from([
    "", "identity", "gzip", "deflate", "br", "zstd", "gzip, br", "br, gzip, deflate",
    "x-gzip", "compress", "gzip,,", " , ",
])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@st.composite
def bodies(draw):
    kind = draw(st.sampled_from(["bytes", "json", "json-cut", "deep", "compressed"]))
    if kind == "bytes":
        return draw(st.binary(max_size=3000))
    if kind in ("json", "json-cut"):
        raw = json.dumps(draw(json_values)).encode()
        if kind == "json-cut":
            raw = raw[: draw(st.integers(0, len(raw)))]
        return raw
    if kind == "deep":
        depth = draw(st.integers(1, 3000))
        opener = draw(st.sampled_from([b"[", b'{"a":', b'{"a":[']))
        return opener * depth + draw(st.binary(max_size=20))
    inner = draw(st.binary(max_size=2000)) if draw(st.booleans()) else json.dumps(
        draw(json_values)).encode()
    codec = draw(st.sampled_from([gzip.compress, zlib.compress, brotli.compress]))
    data = codec(inner)
    return data[: draw(st.integers(0, len(data)))]


def _depth(tree) -> int:
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list) and node:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in node)
    return deepest


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies(),
    ct=CONTENT_TYPES,
    ce=ENCODINGS,
    headers=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=40)), max_size=4),
    query=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=40)), max_size=4),
    limits=st.builds(
        DecodeLimits,
        max_decompressed_bytes=st.integers(0, 5000),
        max_depth=st.integers(0, 80),
        max_leaves=st.integers(0, 200),
        max_nested=st.integers(0, 4),
        max_text_leaf=st.integers(0, 100),
    ),
)
def test_decode_never_raises_and_respects_limits(body, ct, ce, headers, query, limits):
    o = Observation(
        id="p", timestamp=0.0, method="POST", url="https://h/p?x=1", scheme="https", host="h",
        port=443, path="/p", headers=headers, query=query, body=body, content_type=ct,
        content_encoding=ce,
    )
    p = decode(o, limits)
    assert p.kind in KINDS
    assert p.size == len(body)
    assert p.decoded_size <= limits.max_decompressed_bytes
    assert len(p.leaves) <= limits.max_leaves
    for leaf in p.leaves:
        assert leaf.source in SOURCES
        assert len(leaf.path) <= max(limits.max_depth, 1)
        if isinstance(leaf.value, str):
            assert len(leaf.value) <= limits.max_text_leaf
    assert _depth(p.tree) <= limits.max_depth
    json.dumps(p.tree, allow_nan=False)
    assert not any(n.startswith("decode:") for n in p.notes), p.notes  # no internal errors


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_valid_json_roundtrips_into_the_tree(value):
    body = json.dumps(value).encode()
    p = decode(Observation(id="p", timestamp=0.0, method="POST", url="", scheme="https",
                           host="h", port=443, path="/", body=body,
                           content_type="application/json"))
    assert p.kind == "json"
    assert p.tree == value
    assert p.truncated == [] or any("characters cut" in t for t in p.truncated)
