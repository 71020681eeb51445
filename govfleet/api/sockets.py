"""What every server of ours does with its sockets before an application sees a byte (see
docs/security.md, "Sockets"). uvicorn's h11 protocol bounds the size of a header block and closes a
keep-alive connection idle after a response, but nothing else: a connection that sends nothing, a
header block or a body that trickles in a byte at a time, and any number of them at once, each hold a
socket for as long as the client likes. `GuardedH11Protocol` adds, per connection:

- a **header timeout**: a request's headers complete within `header_seconds` of the connection
  opening or of the request's first byte; otherwise 408 (when part of a request arrived) or a plain
  close (when nothing did), and the connection is closed;
- a **body timeout**: the body complete within `body_seconds` of the end of its headers; otherwise
  408 (while no answer was started) and the connection is closed, and the application is told the
  client went away;
- the **keep-alive idle timeout**: uvicorn's own `timeout_keep_alive`, set to `keep_alive_seconds`;
- a **connection cap**: past `max_connections` open connections, a new one is answered 503 with
  `Retry-After` at once and closed (after a short drain, so that a client whose request already
  arrived reads the answer instead of a reset);
- **one way to read a body**: a request carrying both `Content-Length` and `Transfer-Encoding` is
  refused with 400 and the connection closed (h11 would read it as chunked, and a proxy that trusts
  `Content-Length` would see a different request boundary: request smuggling).

Refusals are written in the API's error format; the connection is always closed after them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from govfleet.api.edge import SECURITY_HEADERS
from govfleet.settings import Settings

log = logging.getLogger("govfleet.api")

DRAIN_SECONDS = 1.0  # how long a refused connection is read (and the bytes dropped) before it is closed
BUSY_LOG_EVERY_SECONDS = 10.0  # connections refused past the cap are logged at most this often


@dataclass(frozen=True)
class SocketLimits:
    """The bounds of the module docstring. The defaults suit the API: every body it takes is a
    few hundred bytes, so a client that needs more than 10 s for its headers or body is not one
    of ours."""

    header_seconds: float = 10.0
    body_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 1000
    retry_after_seconds: int = 5  # told to clients refused past the cap

    def __post_init__(self) -> None:
        for name in ("header_seconds", "body_seconds", "keep_alive_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, got {getattr(self, name)}")
        if self.max_connections < 1 or self.retry_after_seconds < 1:
            raise ValueError("max_connections and retry_after_seconds must be at least 1")


def limits_from(settings: Settings) -> SocketLimits:
    """The API's limits as the environment sets them (API_MAX_CONNECTIONS, API_*_SECONDS)."""
    return SocketLimits(
        header_seconds=settings.API_HEADER_TIMEOUT_SECONDS,
        body_seconds=settings.API_BODY_TIMEOUT_SECONDS,
        keep_alive_seconds=settings.API_KEEP_ALIVE_SECONDS,
        max_connections=settings.API_MAX_CONNECTIONS,
    )


def error_answer(status: int, code: str, message: str, *, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 response in the API's error format, ending the connection."""
    body = json.dumps({"error": {"code": code, "message": message[:500], "details": None}}).encode()
    reason = {400: b"Bad Request", 408: b"Request Timeout", 503: b"Service Unavailable"}.get(status, b"Error")
    head = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
        *(name + b": " + value for name, value in SECURITY_HEADERS),
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _OneFraming(h11.Connection):
    """h11, refusing a request whose body length is stated twice; keeps the reason of the last
    refusal (h11's own included) for the 400 it is answered with."""

    refusal: str | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refusal = f"the request is not valid HTTP/1.1: {exc}"
            raise
        if isinstance(event, h11.Request):
            names = {name.lower() for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                self.refusal = (
                    "the request has both Content-Length and Transfer-Encoding: its length is ambiguous; "
                    "send one of them"
                )
                raise h11.RemoteProtocolError(self.refusal, error_status_hint=400)
        return event


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the bounds of the module docstring; `limits` is set on a
    subclass per server (`protocol_for`)."""

    limits: ClassVar[SocketLimits] = SocketLimits()
    _busy_refused: ClassVar[int] = 0
    _busy_logged_at: ClassVar[float] = float("-inf")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        max_incomplete = self.config.h11_max_incomplete_event_size
        self.conn = _OneFraming(h11.SERVER, max_incomplete) if max_incomplete is not None else _OneFraming(h11.SERVER)
        self._phase: str | None = None  # "headers", "body", "app" (the request is in), "idle" (keep-alive)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    # -- the connection's life ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse_busy()
            return
        self._enter("headers")

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the drain ends
        super().data_received(data)
        self._follow(after_response=False)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(after_response=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 refused (and to one with two framings), in our format."""
        reason = getattr(self.conn, "refusal", None) or msg
        self._close_with(error_answer(400, "bad_request", reason))

    # -- read deadlines -----------------------------------------------------------------------

    def _follow(self, *, after_response: bool) -> None:
        """The phase the request is in, from h11's view of the client's side."""
        if self.transport.is_closing():
            self._cancel()
            return
        their = self.conn.their_state
        if their is h11.IDLE:
            # After a response uvicorn's keep-alive timer runs until the next byte; a byte
            # starts the next request's header deadline.
            self._enter("idle" if after_response else "headers")
        elif their is h11.SEND_BODY:
            self._enter("body")
        else:
            self._enter("app")

    def _enter(self, phase: str) -> None:
        if phase == self._phase:
            return  # a deadline runs from the start of its phase, not from the last byte
        self._cancel()
        self._phase = phase
        seconds = {"headers": self.limits.header_seconds, "body": self.limits.body_seconds}.get(phase)
        if seconds is not None:
            self._deadline = self.loop.call_later(seconds, self._timed_out, phase)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        answer = b""
        if phase == "headers" and self.conn.trailing_data[0]:
            answer = error_answer(
                408,
                "request_timeout",
                f"the request headers did not arrive within {self.limits.header_seconds:g} s",
            )
        elif phase == "body" and (self.cycle is None or not self.cycle.response_started):
            answer = error_answer(
                408, "request_timeout", f"the request body did not arrive within {self.limits.body_seconds:g} s"
            )
        if self.cycle is not None and not self.cycle.response_complete:
            # The application stops waiting for the body: its next receive() is a disconnect,
            # and nothing it sends is written any more.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self._close_with(answer)

    def _close_with(self, answer: bytes) -> None:
        if answer:
            self.transport.write(answer)
        self.transport.close()

    # -- the cap ------------------------------------------------------------------------------

    def _refuse_busy(self) -> None:
        self._refused = True
        limit = self.limits.max_connections
        self.transport.write(
            error_answer(
                503,
                "too_many_connections",
                f"the server holds its limit of {limit} open connections; retry after "
                f"{self.limits.retry_after_seconds} s",
                retry_after=self.limits.retry_after_seconds,
            )
        )
        # Closing at once would reset a connection whose request is already in our receive
        # buffer, and the client could lose the answer: end our side, drop what arrives, close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)
        cls = type(self)
        cls._busy_refused += 1
        now = time.monotonic()
        if now - cls._busy_logged_at >= BUSY_LOG_EVERY_SECONDS:
            log.warning("connections refused past the cap of %d open connections: %d so far", limit, cls._busy_refused)
            cls._busy_logged_at = now


def protocol_for(limits: SocketLimits) -> type[GuardedH11Protocol]:
    """The protocol class one server uses (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
