"""Schema-less protobuf and gRPC framing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import struct

import pytest

from builders import make_observation
from phonehome.decode import DecodeLimits, decode
from phonehome.model import Observation


def obs(body: bytes, ct: str = "application/x-protobuf", **kw) -> Observation:
    return make_observation(body, ct, **kw)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def vf(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def ld(num: int, payload: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def f32(num: int, value: int) -> bytes:
    return varint(num << 3 | 5) + struct.pack("<I", value)


def f64(num: int, value: int) -> bytes:
    return varint(num << 3 | 1) + struct.pack("<Q", value)


INNER = ld(1, b"jane@example.org") + vf(2, 300)

# (id, body, tree, leaves (location, path, value))
MESSAGES = [
    ("varints", vf(1, 150) + vf(2, 0) + vf(3, 2**63), {"1": 150, "2": 0, "3": 2**63},
     [("$.1", ("1",), 150), ("$.2", ("2",), 0), ("$.3", ("3",), 2**63)]),
    ("fixed", f32(1, 7) + f64(2, 2**40), {"1": 7, "2": 2**40},
     [("$.1", ("1",), 7), ("$.2", ("2",), 2**40)]),
    ("string", ld(5, "héllo".encode()), {"5": "héllo"}, [("$.5", ("5",), "héllo")]),
    ("nested message", ld(1, INNER) + vf(4, 1),
     {"1": {"1": "jane@example.org", "2": 300}, "4": 1},
     [("$.1.1", ("1", "1"), "jane@example.org"), ("$.1.2", ("1", "2"), 300),
      ("$.4", ("4",), 1)]),
    ("repeated", vf(3, 1) + ld(1, INNER) + vf(3, 2) + ld(1, INNER),
     {"3": [1, 2], "1": [{"1": "jane@example.org", "2": 300}] * 2},
     [("$.3[0]", ("3", 0), 1), ("$.3[1]", ("3", 1), 2),  # grouped by field, first-seen order
      ("$.1[0].1", ("1", 0, "1"), "jane@example.org"), ("$.1[0].2", ("1", 0, "2"), 300),
      ("$.1[1].1", ("1", 1, "1"), "jane@example.org"), ("$.1[1].2", ("1", 1, "2"), 300)]),
    ("bytes", ld(7, b"\xff\xfe\x00\x01"), {"7": {"size": 4, "hex": "fffe0001"}},
     [("$.7.size", ("7", "size"), 4), ("$.7.hex", ("7", "hex"), "fffe0001")]),
    ("big bytes", ld(7, b"\xff" * 300),
     {"7": {"size": 300, "sha256": hashlib.sha256(b"\xff" * 300).hexdigest()}},
     [("$.7.size", ("7", "size"), 300),
      ("$.7.sha256", ("7", "sha256"), hashlib.sha256(b"\xff" * 300).hexdigest())]),
    ("empty string", ld(2, b""), {"2": ""}, [("$.2", ("2",), "")]),
    ("printable text is not a message", ld(1, b"hello world, text with ( and *"),
     {"1": "hello world, text with ( and *"}, [("$.1", ("1",), "hello world, text with ( and *")]),
    ("large field number", vf(536870911, 1), {"536870911": 1},
     [("$.536870911", ("536870911",), 1)]),
]


@pytest.mark.parametrize(
    "body,tree,leaves", [r[1:] for r in MESSAGES], ids=[r[0] for r in MESSAGES]
)
def test_protobuf_messages(body, tree, leaves):
    for ct in ("application/x-protobuf", "application/protobuf"):
        p = decode(obs(body, ct))
        assert p.kind == "protobuf"
        assert p.tree == tree
        assert [(lf.location, lf.path, lf.value) for lf in p.leaves] == leaves
        assert p.notes == [] and p.truncated == []


# (id, body, tree, note substring)
BROKEN = [
    ("cut varint keeps earlier fields", vf(1, 5) + b"\x10\xff", {"1": 5},
     "invalid wire data at byte 2"),
    ("length past the end", vf(1, 5) + varint(2 << 3 | 2) + varint(50) + b"abc", {"1": 5},
     "invalid wire data"),
    ("field number zero", vf(1, 5) + b"\x00\x01", {"1": 5}, "invalid wire data"),
    ("group wire type", vf(1, 5) + varint(2 << 3 | 3), {"1": 5}, "invalid wire data"),
]


@pytest.mark.parametrize("body,tree,note", [r[1:] for r in BROKEN], ids=[r[0] for r in BROKEN])
def test_protobuf_broken_keeps_prefix(body, tree, note):
    p = decode(obs(body))
    assert p.kind == "protobuf"
    assert p.tree == tree
    assert any(note in n for n in p.notes), p.notes


@pytest.mark.parametrize("seed", range(8))
def test_protobuf_garbage(seed):
    body = os.urandom(4000) if seed else b"\x07" * 4000  # \x07: wire type 7, invalid at once
    p = decode(obs(body))
    assert p.kind in ("protobuf", "binary")
    if p.kind == "binary":
        assert any("is not protobuf" in n for n in p.notes)
    assert len(p.leaves) <= 20_000


def test_deeply_nested_protobuf_is_cut():
    msg = vf(1, 1)
    for _ in range(200):
        msg = ld(1, msg)
    p = decode(obs(msg))
    assert p.kind == "protobuf"
    assert all(len(leaf.path) <= 64 for leaf in p.leaves)


def test_protobuf_field_flood_is_bounded():
    body = vf(1, 1) * 100_000
    p = decode(obs(body), DecodeLimits(max_leaves=1000))
    assert len(p.leaves) == 1000
    assert p.truncated


def frame(msg: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(msg).to_bytes(4, "big") + msg


GRPC = [
    ("one frame", frame(INNER), "application/grpc", {}, {"1": "jane@example.org", "2": 300}, None),
    ("two frames", frame(vf(1, 1)) + frame(vf(1, 2)), "application/grpc+proto", {},
     [{"1": 1}, {"1": 2}], None),
    ("gzip frame", frame(gzip.compress(INNER), 1), "application/grpc",
     {"headers": [("grpc-encoding", "gzip")]}, {"1": "jane@example.org", "2": 300},
     "grpc frame 0 compressed (gzip)"),
    ("compressed, unknown encoding", frame(b"\x01\x02\x03", 1), "application/grpc", {},
     {"compressed": True, "size": 3,
      "sha256": hashlib.sha256(b"\x01\x02\x03").hexdigest()},
     "no grpc-encoding"),
    ("grpc-web", frame(INNER), "application/grpc-web+proto", {},
     {"1": "jane@example.org", "2": 300}, None),
    ("grpc-web-text", base64.b64encode(frame(INNER)), "application/grpc-web-text",
     {}, {"1": "jane@example.org", "2": 300}, None),
    ("truncated frame", frame(INNER)[:-3], "application/grpc", {},
     {"1": "jane@example.org"}, "grpc: frame 0 truncated"),
    ("unframed body", INNER, "application/grpc", {}, {"1": "jane@example.org", "2": 300},
     "not gRPC-framed"),
]


@pytest.mark.parametrize(
    "body,ct,kw,tree,note", [r[1:] for r in GRPC], ids=[r[0] for r in GRPC]
)
def test_grpc(body, ct, kw, tree, note):
    p = decode(obs(body, ct, **kw))
    assert p.kind == "protobuf"
    assert p.tree == tree
    if note:
        assert any(note in n for n in p.notes), p.notes


def test_grpc_leaves_of_several_frames():
    p = decode(obs(frame(vf(1, 1)) + frame(vf(2, 2)), "application/grpc"))
    got = [(lf.location, lf.path) for lf in p.leaves]
    assert got == [("$[0].1", (0, "1")), ("$[1].2", (1, "2"))]
