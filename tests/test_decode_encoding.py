"""Content-Encoding: every coding, chains, broken streams and bombs."""

from __future__ import annotations

import functools
import gzip
import json
import zlib

import brotli
import pytest

from builders import make_observation
from phonehome.decode import DecodeLimits, decode
from phonehome.model import Observation

MiB = 1 << 20
CAP = DecodeLimits().max_decompressed_bytes
DOC = {"metrics": [{"event": {"name": "client.call.join", "n": i}} for i in range(3)]}
RAW = json.dumps(DOC).encode()


def obs(body: bytes, ce: str = "", ct: str = "application/json") -> Observation:
    return make_observation(body, ct, content_encoding=ce)


def zlib_wrapped(data: bytes) -> bytes:
    return zlib.compress(data)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zstd_frames(chunks) -> bytes:
    """zstd-compress an iterable of chunks with whichever zstd module is installed."""
    try:
        from backports.zstd import ZstdCompressor

        c = ZstdCompressor(level=1)
        return b"".join([c.compress(chunk) for chunk in chunks] + [c.flush()])
    except ImportError:
        import zstandard

        c = zstandard.ZstdCompressor(level=1).compressobj()
        return b"".join([c.compress(chunk) for chunk in chunks] + [c.flush()])


def zstd(data: bytes) -> bytes:
    return zstd_frames([data])


@functools.cache
def zlib_bomb(wbits: int, mib: int = 1024) -> bytes:
    """`mib` MiB of zeros. Full flushes make every 1 MiB block compress to the same
    bytes, so the 1 GiB stream is built by repetition in milliseconds. It has no
    trailer: decoding stops at the cap long before one would be read."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(MiB)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    return first + block * (mib - 1)


@functools.cache
def brotli_bomb() -> bytes:
    c = brotli.Compressor(quality=1)
    zeros = bytes(MiB)
    return b"".join([c.process(zeros) for _ in range(1024)] + [c.finish()])


@functools.cache
def zstd_bomb() -> bytes:
    return zstd_frames(bytes(MiB) for _ in range(1024))


GZ = gzip.compress(RAW)

# (id, body, content-encoding, expected decoded JSON or None, note substring or None)
ROUNDTRIP = [
    ("identity", RAW, "identity", DOC, None),
    ("none", RAW, "", DOC, None),
    ("gzip", GZ, "gzip", DOC, None),
    ("x-gzip", GZ, "x-gzip", DOC, None),
    ("gzip upper case", GZ, "GZIP", DOC, None),
    ("gzip two members", gzip.compress(RAW[:10]) + gzip.compress(RAW[10:]), "gzip", DOC, None),
    ("deflate zlib", zlib_wrapped(RAW), "deflate", DOC, None),
    ("deflate raw", raw_deflate(RAW), "deflate", DOC, None),
    ("br", brotli.compress(RAW), "br", DOC, None),
    ("zstd", zstd(RAW), "zstd", DOC, None),
    ("zstd two frames", zstd(RAW[:7]) + zstd(RAW[7:]), "zstd", DOC, None),
    ("chain gzip, br", brotli.compress(gzip.compress(RAW)), "gzip, br", DOC, None),
    ("chain deflate,zstd", zstd(zlib_wrapped(RAW)), "deflate,zstd", DOC, None),
    ("chain with identity", gzip.compress(RAW), "identity, gzip", DOC, None),
    ("mislabelled gzip", RAW, "gzip", DOC, "not a gzip stream; body used as sent"),
    ("mislabelled br", RAW, "br", DOC, "body used as sent"),
    ("mislabelled zstd", RAW, "zstd", DOC, "body used as sent"),
    ("unknown coding", RAW, "compress", DOC, "unknown content-encoding 'compress'"),
    ("gzip trailing garbage", GZ + b"garbage!", "gzip", DOC, "trailing garbage"),
]


@pytest.mark.parametrize(
    "body,ce,expected,note", [r[1:] for r in ROUNDTRIP], ids=[r[0] for r in ROUNDTRIP]
)
def test_content_encoding_roundtrip(body, ce, expected, note):
    p = decode(obs(body, ce))
    assert p.kind == "json"
    assert p.tree == expected
    assert p.size == len(body)
    assert p.decoded_size == len(RAW)
    assert p.truncated == []
    if note is None:
        assert p.notes == []
    else:
        assert any(note in n for n in p.notes), p.notes


# (id, body, content-encoding, note substring): streams cut short or corrupted
BROKEN = [
    ("gzip truncated", GZ[: len(GZ) // 2], "gzip", "gzip: truncated stream"),
    ("gzip no trailer", GZ[:-8], "gzip", "gzip: truncated stream"),
    ("deflate truncated", zlib_wrapped(RAW)[:40], "deflate", "deflate: truncated stream"),
    ("br truncated", brotli.compress(RAW)[:30], "br", "br: truncated stream"),
    ("zstd truncated", zstd(RAW)[:40], "zstd", "zstd"),
    ("gzip corrupt", GZ[:20] + b"\xff" * 30 + GZ[50:], "gzip", "gzip:"),
    ("br garbage", b"\xff\xff\xff\xff garbage", "br", "br:"),
    ("zstd garbage", b"\x28\xb5\x2f\xfd garbage", "zstd", "zstd"),
    ("deflate garbage", b"\x07\x07\x07garbage", "deflate", "deflate:"),
]


@pytest.mark.parametrize("body,ce,note", [r[1:] for r in BROKEN], ids=[r[0] for r in BROKEN])
def test_broken_streams_keep_what_decoded(body, ce, note):
    p = decode(obs(body, ce))
    assert any(note in n for n in p.notes), p.notes
    assert p.size == len(body)
    assert p.truncated == []
    # what came out is a prefix of the original document, or the body as sent
    assert p.decoded_size <= len(RAW) or p.decoded_size == len(body)


def test_truncated_gzip_keeps_leading_values():
    body = gzip.compress(json.dumps({"a": "first", "b": "x" * 5000, "c": 3}).encode())
    p = decode(obs(body[: len(body) - 20], "gzip"))
    assert "gzip: truncated stream" in p.notes
    assert p.kind == "json"
    assert p.tree["a"] == "first"
    assert {leaf.location for leaf in p.leaves} >= {"$.a"}


BOMBS = [
    ("gzip 1 GiB", lambda: zlib_bomb(31), "gzip"),
    ("deflate 1 GiB", lambda: zlib_bomb(15), "deflate"),
    ("raw deflate 1 GiB", lambda: zlib_bomb(-15), "deflate"),
    ("br 1 GiB", brotli_bomb, "br"),
    ("zstd 1 GiB", zstd_bomb, "zstd"),
    ("gzip inside br", lambda: brotli.compress(zlib_bomb(31, 64)), "gzip, br"),
]


@pytest.mark.parametrize("make,ce", [r[1:] for r in BOMBS], ids=[r[0] for r in BOMBS])
def test_bombs_stop_at_the_cap(make, ce):
    body = make()
    p = decode(obs(body, ce))
    assert p.decoded_size == CAP
    assert p.truncated[0] == "decompressed size over 16 MiB"
    assert p.kind == "binary"  # 16 MiB of zeros
    assert p.tree is None


@pytest.mark.parametrize("ce", ["gzip", "br", "zstd", "deflate"])
def test_small_cap_is_respected(ce):
    body = {"gzip": gzip.compress, "br": brotli.compress, "zstd": zstd, "deflate": zlib_wrapped}[
        ce
    ](b"a" * 100_000)
    p = decode(obs(body, ce, "text/plain"), DecodeLimits(max_decompressed_bytes=1000))
    assert p.decoded_size == 1000
    assert p.truncated == ["decompressed size over 1000 bytes"]
    assert p.tree == "a" * 1000


def test_huge_identity_body_is_cut_to_the_cap():
    body = b"x" * (20 * MiB)
    p = decode(obs(body, "", "text/plain"))
    assert p.size == 20 * MiB
    assert p.decoded_size == CAP
    assert "body size over 16 MiB" in p.truncated
    assert p.kind == "text"
    body_leaves = [leaf for leaf in p.leaves if leaf.source == "body"]
    assert len(body_leaves) == 1 and len(body_leaves[0].value) == 64 * 1024


def test_sha256_and_size_are_of_the_raw_body():
    import hashlib

    p = decode(obs(GZ, "gzip"))
    assert p.sha256 == hashlib.sha256(GZ).hexdigest()
    assert (p.size, p.decoded_size) == (len(GZ), len(RAW))
