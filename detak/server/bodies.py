"""Request bodies read with limits (docs/sync.md §2): refused with 413 *before* they are read
whole — by ``Content-Length`` first, then by counting while streaming — and gzip decoded with
a cap on the decoded size and on the ratio (a gzip bomb is refused, not inflated).

>>> import gzip
>>> gunzip_limited(gzip.compress(b"{}"), 100)
b'{}'
>>> gunzip_limited(gzip.compress(b"0" * 10_000), 100)
Traceback (most recent call last):
...
detak.server.errors.ApiError: the decoded body is larger than 100 bytes
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from detak.server.errors import ApiError

MAX_JSON = 8 << 20
MAX_RATIO = 100


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")


def check_declared_length(request: Request, limit: int) -> None:
    """413 if the declared ``Content-Length`` is over ``limit`` (nothing read)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if n > limit:
            raise _too_large(limit)


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body (as sent), at most ``limit`` bytes, else 413 as soon as it is known."""
    check_declared_length(request, limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip_limited(data: bytes, limit: int, ratio: int = MAX_RATIO) -> bytes:
    """Decode gzip ``data``; 413 past ``limit`` decoded bytes or ``ratio`` × its size."""
    cap = min(limit, max(len(data), 1) * ratio)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, cap + 1)
    except zlib.error:
        raise ApiError(400, "bad_request", "the body is not valid gzip") from None
    if len(out) > cap or d.unconsumed_tail:
        raise ApiError(413, "body_too_large", f"the decoded body is larger than {cap} bytes")
    return out


def decode_json_body(request: Request, raw: bytes, limit: int = MAX_JSON) -> bytes:
    """The JSON bytes of ``raw`` after its ``Content-Encoding`` (identity or gzip; else 415)."""
    enc = request.headers.get("content-encoding", "identity").strip().lower()
    if enc in ("", "identity"):
        return raw
    if enc == "gzip":
        return gunzip_limited(raw, limit)
    raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or identity")
