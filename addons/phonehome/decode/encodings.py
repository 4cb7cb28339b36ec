"""Content-Encoding: gzip, deflate (zlib or raw), br, zstd, identity and chains of them.

Every decoder streams with a hard output cap (see `decompress`).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

from .limits import Context

__all__ = ["decompress", "split_codings", "SUPPORTED_CODINGS"]

_IN_CHUNK = 64 * 1024
_OUT_CHUNK = 256 * 1024
_GZIP_MAGIC = b"\x1f\x8b"

try:  # brotli ships with mitmproxy
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

_ZstdDecompressor: type | None = None
_zstandard = None
try:  # Python 3.14 stdlib
    from compression.zstd import ZstdDecompressor as _ZstdDecompressor  # type: ignore
except ImportError:
    try:  # mitmproxy 12 ships the backport
        from backports.zstd import ZstdDecompressor as _ZstdDecompressor  # type: ignore
    except ImportError:
        try:  # mitmproxy 11 ships zstandard
            import zstandard as _zstandard  # type: ignore
        except ImportError:  # pragma: no cover - depends on the environment
            pass


class _Result:
    """Output of one decoding layer."""

    __slots__ = ("data", "problem", "over")

    def __init__(self, data: bytes, problem: str | None = None, over: bool = False) -> None:
        self.data = data
        self.problem = problem
        self.over = over


def _zlib(data: bytes, cap: int, wbits: int, name: str) -> _Result:
    out = bytearray()
    d = zlib.decompressobj(wbits)
    pos = 0
    pending = b""
    try:
        while True:
            if not pending and pos < len(data):
                pending = data[pos : pos + _IN_CHUNK]
                pos += _IN_CHUNK
            before = (len(pending), len(out))
            out += d.decompress(pending, cap - len(out) + 1)
            if len(out) > cap:
                return _Result(bytes(out[:cap]), over=True)
            pending = d.unconsumed_tail
            if d.eof:
                rest = d.unused_data + data[pos:]
                if name == "gzip" and rest.startswith(_GZIP_MAGIC):
                    d, data, pos, pending = zlib.decompressobj(wbits), rest, 0, b""
                    continue  # next gzip member
                problem = None
                if rest.strip(b"\0\r\n\t "):
                    problem = f"{name}: {len(rest)} bytes of trailing garbage ignored"
                return _Result(bytes(out), problem)
            if not pending and pos >= len(data):
                return _Result(bytes(out), f"{name}: truncated stream")
            if (len(pending), len(out)) == before and pos >= len(data):
                return _Result(bytes(out), f"{name}: stream makes no progress")
    except zlib.error as e:
        return _Result(bytes(out), f"{name}: {e}")


def _gzip(data: bytes, cap: int) -> _Result:
    if not data.startswith(_GZIP_MAGIC):
        return _Result(b"", "gzip: not a gzip stream")
    return _zlib(data, cap, 31, "gzip")


def _deflate(data: bytes, cap: int) -> _Result:
    # RFC 9110 says zlib-wrapped; many clients send raw deflate. The zlib header
    # is recognisable: CM=8 and a header checksum divisible by 31.
    if len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        return _zlib(data, cap, 15, "deflate")
    return _zlib(data, cap, -15, "deflate")


def _brotli_decode(data: bytes, cap: int) -> _Result:
    if _brotli is None:
        return _Result(data, "br: brotli module not available; body left compressed")
    d = _brotli.Decompressor()
    out = bytearray()
    try:
        if hasattr(d, "can_accept_more_data"):  # Brotli >= 1.2: bounded output
            pos = 0
            while True:
                if d.can_accept_more_data():
                    if pos >= len(data):
                        break
                    piece = d.process(data[pos : pos + _IN_CHUNK], output_buffer_limit=_OUT_CHUNK)
                    pos += _IN_CHUNK
                else:
                    piece = d.process(b"", output_buffer_limit=_OUT_CHUNK)
                out += piece
                if len(out) > cap:
                    return _Result(bytes(out[:cap]), over=True)
                if d.is_finished():
                    break
        else:  # older Brotli: unbounded per call, so feed one byte at a time
            for i in range(len(data)):
                out += d.process(data[i : i + 1])
                if len(out) > cap:
                    return _Result(bytes(out[:cap]), over=True)
                if d.is_finished():
                    break
    except _brotli.error as e:
        return _Result(bytes(out), f"br: {e or 'invalid stream'}")
    if not d.is_finished():
        return _Result(bytes(out), "br: truncated stream")
    return _Result(bytes(out))


def _zstd(data: bytes, cap: int) -> _Result:
    if _ZstdDecompressor is not None:
        return _zstd_stdlib(data, cap)
    if _zstandard is not None:
        return _zstd_zstandard(data, cap)
    return _Result(data, "zstd: no zstd module available; body left compressed")  # pragma: no cover


def _zstd_stdlib(data: bytes, cap: int) -> _Result:
    out = bytearray()
    d = _ZstdDecompressor()
    pending = data
    try:
        while True:
            out += d.decompress(pending, cap - len(out) + 1)
            if len(out) > cap:
                return _Result(bytes(out[:cap]), over=True)
            pending = b""
            if d.eof:
                rest = d.unused_data
                if not rest:
                    return _Result(bytes(out))
                d, pending = _ZstdDecompressor(), rest  # next frame
            elif d.needs_input:
                return _Result(bytes(out), "zstd: truncated stream")
    except Exception as e:  # ZstdError; the class lives in whichever module loaded
        return _Result(bytes(out), f"zstd: {e}")


def _zstd_zstandard(data: bytes, cap: int) -> _Result:
    out = bytearray()
    try:
        dctx = _zstandard.ZstdDecompressor()
        with dctx.stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
            while True:
                piece = reader.read(min(_OUT_CHUNK, cap - len(out) + 1))
                if not piece:
                    break
                out += piece
                if len(out) > cap:
                    return _Result(bytes(out[:cap]), over=True)
    except Exception as e:  # zstandard.ZstdError
        return _Result(bytes(out), f"zstd: {e}")
    if data and not out:
        # zstandard reports a cut-off frame as a clean end of input
        return _Result(bytes(out), "zstd: truncated stream or empty frame")
    return _Result(bytes(out))


_DECODERS: dict[str, Callable[[bytes, int], _Result]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli_decode,
    "zstd": _zstd,
}
SUPPORTED_CODINGS = ("identity", *_DECODERS)


def split_codings(header: str) -> list[str]:
    """ "gzip, br" -> ["gzip", "br"] in the order they were applied."""
    return [c.strip().lower() for c in header.split(",") if c.strip()]


def decompress(body: bytes, content_encoding: str, ctx: Context, cap: int | None = None) -> bytes:
    """Undo every Content-Encoding layer, last applied first, within the size limit.

    Problems become notes or truncation entries on `ctx`; whatever was
    decoded so far is returned. `cap` defaults to max_decompressed_bytes.

    Every decoder streams with a hard output cap, so a decompression bomb never
    allocates much past `max_decompressed_bytes`: zlib through `max_length`,
    brotli through `output_buffer_limit` (Brotli >= 1.2) or one input byte at a
    time (older Brotli), zstd through `max_length` (compression.zstd /
    backports.zstd) or `stream_reader().read(n)` (zstandard).
    """
    if cap is None:
        cap = ctx.limits.max_decompressed_bytes
    data = body
    for coding in reversed(split_codings(content_encoding)):
        if coding == "identity":
            continue
        decoder = _DECODERS.get(coding)
        if decoder is None:
            ctx.note(f"unknown content-encoding {coding!r}: body left encoded")
            break
        result = decoder(data, cap)
        if result.problem and not result.data:
            # nothing came out: often a mislabelled, uncompressed body
            ctx.note(f"{result.problem}; body used as sent")
            break
        if result.problem:  # some came out, the rest of the stream was not read
            ctx.note(result.problem)
            ctx.unreadable(result.problem)
        if result.over:
            ctx.size_hit()
        data = result.data
    if len(data) > cap:
        ctx.size_hit("body size")
        data = data[:cap]
    return data
