"""Strict JSON request bodies for the write endpoints (see docs/security.md, "Input limits").

``parse_json`` refuses, with a 4xx ApiError naming the problem and never echoing more than a
short slice of the input: bytes that are not UTF-8, nesting deeper than ``max_depth`` (checked on
the bytes BEFORE the decoder runs, so a deeply nested body can never exhaust the C stack),
duplicate object keys, and strings holding a NUL or a lone surrogate. ``read_json`` does the same
for a request, after checking that it says it is JSON (415 otherwise). The body's size was
already bounded by the ASGI wrapper in ``govfleet/api/edge.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from govfleet.api.errors import ApiError

MAX_JSON_DEPTH = 32
# A JSON string, possessive so that an unterminated one costs linear time, not quadratic.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether the nesting of ``raw`` goes deeper than ``limit`` (brackets inside strings don't count)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for c in _STRING.sub(b"", raw).translate(None, _NOT_BRACKET):
        depth += 1 if c in b"[{" else -1
        if depth > limit:
            return True
    return False


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _bad_text(value: Any) -> str | None:
    """The path of the first string (key or value) holding a NUL or a lone surrogate, if any."""
    stack: list[tuple[str, Any]] = [("body", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v or any("\ud800" <= ch <= "\udfff" for ch in v):
                return path
        elif isinstance(v, dict):
            for k, item in v.items():
                if "\x00" in k or any("\ud800" <= ch <= "\udfff" for ch in k):
                    return f"{path} (a key)"
                stack.append((f"{path}.{k[:40]}", item))
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(v))
    return None


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The decoded body, or ApiError (400 for bytes that are not JSON, 422 for JSON we refuse)."""
    if json_depth_exceeds(raw, max_depth):
        raise ApiError(400, "body_too_deep", f"the JSON body is nested deeper than {max_depth} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, "invalid_json", f"the body is not UTF-8 (byte {err.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_object)
    except _DuplicateKey as err:
        raise ApiError(422, "duplicate_key", f"the JSON body repeats the key {str(err)[:40]!r}") from None
    except (ValueError, RecursionError) as err:
        message = err.msg if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {message}") from None
    where = _bad_text(value)
    if where is not None:
        raise ApiError(422, "invalid_text", f"{where}: text must not hold a NUL or a lone surrogate")
    return value


def json_content_type(content_type: str | None) -> bool:
    """``application/json`` (any case, optionally with ``charset=utf-8``)."""
    if not content_type:
        return False
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


async def read_json(request: Request, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The request's JSON body (``parse_json``), or 415 when it is not sent as JSON."""
    content_type = request.headers.get("content-type")
    if not json_content_type(content_type):
        shown = repr(content_type[:60]) if content_type else "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be sent as Content-Type: application/json (got {shown})",
        )
    return parse_json(await request.body(), max_depth=max_depth)


def json_request_body(schema_ref: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a body that a route reads with ``read_json``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
        }
    }
