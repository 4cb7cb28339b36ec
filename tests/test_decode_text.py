"""Text, binary and empty bodies, and content-type sniffing between them."""

from __future__ import annotations

import hashlib
import os

import pytest

from builders import make_observation
from phonehome.decode import DecodeLimits, decode
from phonehome.model import Observation


def obs(body: bytes, ct: str = "") -> Observation:
    return make_observation(body, ct)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))

# (id, body, content type, kind, tree, note substring or None)
CASES = [
    ("empty", b"", "application/json", "empty", None, None),
    ("empty undeclared", b"", "", "empty", None, None),
    ("plain text", "héllo wörld\n".encode(), "text/plain; charset=utf-8", "text",
     "héllo wörld\n", None),
    ("undeclared printable", b"user jane signed in", "", "text", "user jane signed in", None),
    ("octet-stream printable", b"abc def", "application/octet-stream", "text", "abc def", None),
    ("xml", b"<a><b>1</b></a>", "application/xml", "text", "<a><b>1</b></a>", None),
    ("text/* with invalid UTF-8", b"abc\xff\xfedef", "text/plain", "text", "abc\ufffd\ufffddef",
     "invalid UTF-8 at byte 3"),
    ("undeclared invalid UTF-8", b"abc\xffdef", "", "binary", None, None),
    ("control characters", b"abc\x00\x01def", "", "binary", None, None),
    ("png", PNG, "image/png", "binary", None, None),
    ("png undeclared", PNG, "", "binary", None, None),
    ("random bytes", os.urandom(3000), "application/octet-stream", "binary", None, None),
    ("utf-8 BOM text", "\ufeffhi".encode(), "", "text", "hi", None),
]


@pytest.mark.parametrize(
    "body,ct,kind,tree,note", [r[1:] for r in CASES], ids=[r[0] for r in CASES]
)
def test_text_binary_empty(body, ct, kind, tree, note):
    p = decode(obs(body, ct))
    assert p.kind == kind
    assert p.tree == tree
    assert p.size == len(body) == p.decoded_size
    assert p.sha256 == hashlib.sha256(body).hexdigest()
    leaves = [(leaf.location, leaf.value) for leaf in p.leaves]
    assert leaves == ([("$", tree)] if kind == "text" else [])
    if note:
        assert any(note in n for n in p.notes), p.notes


def test_long_text_leaf_is_cut():
    p = decode(obs(b"a" * 70_000, "text/plain"))
    assert p.leaves[0].value == "a" * 65_536
    assert p.truncated == ["string longer than 65536 characters cut (first at $)"]


def test_text_limit_is_configurable():
    p = decode(obs(b"abcdef", "text/plain"), DecodeLimits(max_text_leaf=3))
    assert [leaf.value for leaf in p.leaves] == ["abc"]
