"""A signals answer as held in a snapshot: its bytes, its gzip, its tag, and how each
request picks among them (If-None-Match, Accept-Encoding) without touching the bytes."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.responses import Response

# Below this an answer is sent as it is: gzip saves little on a few hundred bytes and
# its header and a client's inflate cost more than the bytes saved.
GZIP_MIN_BYTES = 4096
# Level 6 (zlib's default) of an 81 KB answer: 1.4 ms once per snapshot, to 13-16 %.
GZIP_LEVEL = 6
# Revalidate every time: a 304 costs no body, and "now" must never be reused from a
# cache without asking. Private: an answer is for the key that asked.
CACHE_CONTROL = "private, no-cache"
# Columns that are a pure function of the clock: `as_of`, and seconds counted from a
# start the same row carries (opened_at, seated_at, bill_requested_at) to read time. An
# ended clock's value changes only with its end (paid_at, cleared_at), which is hashed.
# The marts' yml marks each of them `meta: {clock: true}`; tests/api checks the two agree.
CLOCK_COLUMNS = frozenset(
    {"as_of", "elapsed_seconds", "occupied_seconds", "occupancy_seconds", "time_to_pay_seconds"}
)
_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    gzipped: bytes | None
    etag: str


def _without_clocks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clocks(v) for k, v in value.items() if k not in CLOCK_COLUMNS}
    if isinstance(value, list):
        return [_without_clocks(v) for v in value]
    return value


def data_tag(answer: dict[str, Any]) -> str:
    """A weak tag over what the answer says, not when: `as_of`, `span` (a window's span
    ends at read time) and running clocks are left out, so it holds while nothing
    landed. Weak: two answers with one tag are equivalent, not byte-equal."""
    data = {k: _without_clocks(v) for k, v in answer.items() if k not in ("as_of", "span")}
    digest = hashlib.blake2b(orjson.dumps(data), digest_size=12).hexdigest()
    return f'W/"{digest}"'


def render(answer: dict[str, Any]) -> Rendered:
    """Serialise, tag and compress once per snapshot: each reader only picks."""
    body = orjson.dumps(answer)
    gzipped = (
        gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        if len(body) >= GZIP_MIN_BYTES
        else None
    )
    return Rendered(body, gzipped, data_tag(answer))


def none_match(header: str, etag: str) -> bool:
    """RFC 9110 13.1.2 for GET: `*` or any listed tag equal under weak comparison."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")[1:-1]
    pos = 0
    while pos < len(header):
        match = _TAG.match(header, pos)
        if match is None:
            return False  # not a list of entity-tags: as if absent (no 304)
        if match[1] == opaque:
            return True
        pos = match.end()
    return False


def accepts_gzip(header: str | None) -> bool:
    """Accept-Encoding names gzip (or x-gzip, or `*` without naming it) with q > 0."""
    if not header:
        return False
    star: bool | None = None
    for part in header.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return bool(star)


def respond(headers: Headers, rendered: Rendered) -> Response:
    """304 with the tag when the client holds it; else the body, gzipped if it asked."""
    out = {"ETag": rendered.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    condition = headers.get("if-none-match")
    if condition is not None and none_match(condition, rendered.etag):
        return Response(status_code=304, headers=out)
    if rendered.gzipped is not None and accepts_gzip(headers.get("accept-encoding")):
        out["Content-Encoding"] = "gzip"
        return Response(rendered.gzipped, media_type="application/json", headers=out)
    return Response(rendered.body, media_type="application/json", headers=out)
