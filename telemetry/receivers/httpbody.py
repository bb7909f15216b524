"""Request bodies for the HTTP receivers: read within a limit, decompressed within the same limit.

The limit applies to what the body expands to, so a gzip bomb is stopped while it is being expanded:
``zlib.decompressobj(...).decompress(data, max_length)`` never produces more than the limit plus one
byte, whatever the ratio. The raw body is held to the limit too (a declared Content-Length over it is
refused before a byte is read), so one request holds at most twice the limit.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class BodyError(Exception):
    """A body that cannot be used: ``status`` is the HTTP answer, ``reason`` the parse-error label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def too_large(limit: int, what: str) -> BodyError:
    return BodyError(413, "too_large", f"too_large: {what} exceeds the limit of {limit} bytes")


def read_raw(stream: BinaryIO, content_length: str | None, chunked: bool, limit: int) -> bytes:
    """The body as sent, at most ``limit`` bytes; a body over it is refused, unread when it says so."""
    if chunked:
        return _read_chunked(stream, limit)
    if content_length is None:
        # Without a length or chunking an HTTP/1.1 request has no body.
        return b""
    # ASCII digits only (RFC 9110): int() would also take "+5", "1_0" and other scripts' digits.
    if not (content_length.isascii() and content_length.strip().isdigit()):
        raise BodyError(400, "bad_content_length", f"bad_content_length: {content_length!r}")
    length = int(content_length)
    if length > limit:
        raise too_large(limit, f"Content-Length {length}")
    body = stream.read(length)
    if len(body) != length:
        raise BodyError(400, "truncated_body", f"truncated_body: {len(body)} of {length} bytes arrived")
    return body


def _read_chunked(stream: BinaryIO, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        size_text = line.split(b";", 1)[0].strip()
        # Hex digits only (RFC 9112 chunk-size): int(..., 16) would also take "-1", "+1", "0x1" and "1_0".
        if not size_text or size_text.lstrip(_HEX_DIGITS):
            raise BodyError(400, "bad_chunking", f"bad_chunking: chunk size line {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            # Trailers, if any, end with an empty line.
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise too_large(limit, "chunked body")
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(3) not in (b"\r\n", b"\n"):
            raise BodyError(400, "bad_chunking", "bad_chunking: a chunk is shorter than its size says")
        parts.append(chunk)


def decode_content(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after ``Content-Encoding`` (identity, gzip, deflate), at most ``limit`` bytes."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return raw
    if coding in ("gzip", "x-gzip"):
        return _inflate(raw, _GZIP_WBITS, limit, "gzip")
    if coding == "deflate":
        return _inflate(raw, _ZLIB_WBITS, limit, "deflate")
    raise BodyError(415, "unsupported_encoding", f"unsupported_encoding: Content-Encoding {encoding!r}")


def _inflate(raw: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out: list[bytes] = []
    produced = 0
    rest = raw
    # gzip allows several members one after the other; each is inflated within what is left of the limit.
    while rest:
        inflater = zlib.decompressobj(wbits)
        try:
            piece = inflater.decompress(rest, limit - produced + 1)
        except zlib.error as error:
            raise BodyError(400, f"bad_{coding}", f"bad_{coding}: {error}") from None
        produced += len(piece)
        if produced > limit:
            raise too_large(limit, f"the {coding}-decoded body")
        if not inflater.eof:
            raise BodyError(400, f"bad_{coding}", f"bad_{coding}: the compressed body is truncated")
        out.append(piece)
        rest = inflater.unused_data if wbits == _GZIP_WBITS else b""
    return b"".join(out)
