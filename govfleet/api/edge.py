"""The API's outermost layer: limits every request must pass before the application sees it
(see docs/security.md, "Input limits").

`EdgeLimits` is a plain ASGI wrapper around the FastAPI app, outside it on purpose: inside,
Starlette's error middleware would turn a refusal raised while reading the body into a 500. It
answers, in the API's one error format and without calling the app:

- 431 `headers_too_large` when the request's headers (names and values) add up to more than
  `MAX_HEADER_BYTES` (the server bounds only a header block that arrives in pieces);
- 413 `body_too_large` for a body over `max_body_bytes`: at once when `Content-Length` says so
  (the body is never read), else as soon as the streamed (chunked) bytes pass the limit;
- 422 `invalid_query` for a query string whose decoded values hold a control character (NUL
  included) or bytes that are not UTF-8: such a value can only be an attack or a mistake, and
  PostgreSQL would refuse a NUL deep inside a handler.

A body within the limit is read here (it is small) and handed to the app whole. Every answer,
the app's and the edge's, carries `SECURITY_HEADERS` unless the route set its own value (the
`/gov` page sets a Content-Security-Policy that lets its own inline script and style run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024  # every body the API takes is a few hundred bytes
MAX_HEADER_BYTES = 16 * 1024  # a bearer token and a few standard headers need well under 1 KiB
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
# JSON answers need nothing from a browser: no script, no style, no frame, no referrer.
API_CONTENT_SECURITY_POLICY = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", API_CONTENT_SECURITY_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers without CSP level 2
)


def with_security_headers(send: Send) -> Send:
    """`send`, adding each of `SECURITY_HEADERS` the response does not set itself."""

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {bytes(name).lower() for name, _ in headers}
            headers += [header for header in SECURITY_HEADERS if header[0] not in present]
            message = {**message, "headers": headers}
        await send(message)

    return secured


async def send_error(send: Send, status: int, code: str, message: str, details: Any = None) -> None:
    """One error response in the API's format, sent straight to the server; the connection is
    closed afterwards (an unread body must not be taken for the next request)."""
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def query_problem(query_string: bytes) -> str | None:
    """What is wrong with a raw query string, if anything (see the module docstring)."""
    if not query_string:
        return None
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        for raw, what in ((name, "name"), (value, "value")):
            decoded = unquote_to_bytes(raw.replace(b"+", b" "))
            shown = name.decode("ascii", "replace")[:40]
            if _CONTROL.search(decoded):
                return f"query parameter {shown!r}: its {what} holds a control character (such as NUL)"
            try:
                decoded.decode("utf-8")
            except UnicodeDecodeError:
                return f"query parameter {shown!r}: its {what} is not UTF-8"
    return None


class EdgeLimits:
    """The ASGI wrapper described in the module docstring. Attribute access falls through to
    the wrapped app, so `EdgeLimits(app).state` is the app's state."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def _too_large(self, send: Send, seen: str) -> Awaitable[None]:
        return send_error(
            send,
            413,
            "body_too_large",
            f"the request body is larger than the {self.max_body_bytes}-byte limit ({seen})",
            {"limit_bytes": self.max_body_bytes},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        headers = scope.get("headers", [])
        header_bytes = sum(len(k) + len(v) for k, v in headers)
        if header_bytes > MAX_HEADER_BYTES:
            await send_error(
                send,
                431,
                "headers_too_large",
                f"the request headers are {header_bytes} bytes, more than the {MAX_HEADER_BYTES} allowed",
            )
            return
        problem = query_problem(scope.get("query_string", b""))
        if problem is not None:
            await send_error(send, 422, "invalid_query", problem)
            return
        length = None
        for key, value in headers:
            if key == b"content-length":
                length = int(value) if value.isdigit() else None  # the server already refused bad ones
        if length is not None and length > self.max_body_bytes:
            await self._too_large(send, f"Content-Length: {length}")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send, f"more than {self.max_body_bytes} bytes streamed")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the server's disconnect notice

        await self.app(scope, replay, send)
