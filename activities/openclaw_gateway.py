"""The agent gateway spoken in OpenClaw's WebSocket protocol, as the original system speaks to
its gateway (docs/schedules.md, "Entrypoints"). One connection per run:

1. the gateway's URL with `http` made `ws` (`https` → `wss`; a ws(s) URL as it is);
2. the gateway opens with an event `connect.challenge`; the client answers with a request
   `connect` (protocol 3, a backend client, `auth.token`); the gateway's response is hello-ok
   (or, not ok, the authentication failed);
3. a request `agent` with the word as `message`, agent `main`, a session key of its own and the
   run's idempotency key;
4. the gateway acknowledges (`status: accepted`, with its run id), may stream chat events (only
   those of this session count: the gateway broadcasts every session's), and ends with a
   response `status: ok` whose `result.payloads[0].text` is the answer — or `status: error`, a
   response that is not ok, or a chat event `error` / `aborted`.

Frames are JSON objects `{type: "req", id, method, params}`, `{type: "res", id, ok, payload |
error}` and `{type: "event", event, payload}`.

Failures the gateway decided (authentication refused, request refused, an unexpected answer)
raise `GatewayRefused`, which is not retried; everything else — no connection, a connection
closed before the answer, the agent's own error, the time running out — raises `GatewayFailed`,
which the activity's retry policy retries (with the same idempotency key).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

PROTOCOL_VERSION = 3
CLIENT_ID = "gateway-client"  # the client id the original's backend client announces
HANDSHAKE_SECONDS = 10.0
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a chat stream's frames carry the text so far; answers are cut later
CONNECT_REQUEST_ID, AGENT_REQUEST_ID = "1", "2"


class GatewayRefused(Exception):
    """The gateway refused: authentication, the request, or an answer that is not one."""


class GatewayFailed(Exception):
    """The call did not complete: worth another attempt."""


@dataclass(frozen=True)
class AgentCall:
    url: str
    token: str
    message: str
    session_key: str
    idempotency_key: str
    outbound_headers: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 120.0
    client_version: str = "0"


@dataclass(frozen=True)
class AgentReply:
    text: str
    run_id: str = ""
    streamed: str = ""  # what the chat deltas of this session carried (not the answer)


def websocket_url(url: str) -> str:
    """`http…` → `ws…`, as the original does it; a ws(s) URL stays as it is."""
    return "ws" + url[len("http") :] if url.startswith("http") else url


def _frame(raw: str | bytes) -> dict[str, Any]:
    try:
        frame = json.loads(raw)
    except ValueError:
        raise GatewayFailed("the gateway sent a frame that is not JSON") from None
    if not isinstance(frame, dict):
        raise GatewayFailed("the gateway sent a frame that is not a JSON object")
    return frame


def _error_message(frame: dict[str, Any], default: str) -> str:
    error = frame.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else default


def _answer_text(payload: dict[str, Any]) -> str:
    result = payload.get("result")
    payloads = result.get("payloads") if isinstance(result, dict) else None
    first = payloads[0] if isinstance(payloads, list) and payloads else None
    text = first.get("text") if isinstance(first, dict) else None
    return text if isinstance(text, str) else ""


def _chat_text(payload: dict[str, Any]) -> str:
    message = payload.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    first = content[0] if isinstance(content, list) and content else None
    text = first.get("text") if isinstance(first, dict) else None
    return text if isinstance(text, str) else ""


async def run_agent(call: AgentCall) -> AgentReply:
    """One agent call; the whole of it (connection included) within `call.timeout_seconds`."""
    try:
        async with asyncio.timeout(call.timeout_seconds):
            return await _run(call)
    except TimeoutError:
        raise GatewayFailed(f"no answer within {call.timeout_seconds:g} s") from None


async def _run(call: AgentCall) -> AgentReply:
    url = websocket_url(call.url)
    try:
        connection = await connect(url, open_timeout=HANDSHAKE_SECONDS, max_size=MAX_FRAME_BYTES)
    except InvalidURI as exc:
        raise GatewayRefused(f"not a WebSocket URL: {exc}") from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise GatewayFailed(f"could not connect: {type(exc).__name__}: {exc}") from None
    async with connection as ws:
        try:
            async with asyncio.timeout(HANDSHAKE_SECONDS):
                await _handshake(ws, call)
        except TimeoutError:
            raise GatewayFailed(f"no hello from the gateway within {HANDSHAKE_SECONDS:g} s") from None
        params: dict[str, Any] = {
            "message": call.message,
            "agentId": "main",
            "sessionKey": call.session_key,
            "idempotencyKey": call.idempotency_key,
        }
        if call.outbound_headers:
            params["outboundHeaders"] = call.outbound_headers
        await ws.send(json.dumps({"type": "req", "id": AGENT_REQUEST_ID, "method": "agent", "params": params}))
        return await _answer(ws, call)


async def _handshake(ws, call: AgentCall) -> None:
    """challenge → connect (with the token) → hello-ok."""
    try:
        async for raw in ws:
            frame = _frame(raw)
            if frame.get("type") == "event" and frame.get("event") == "connect.challenge":
                client = {"id": CLIENT_ID, "version": call.client_version, "platform": "python", "mode": "backend"}
                connect_params = {
                    "minProtocol": PROTOCOL_VERSION,
                    "maxProtocol": PROTOCOL_VERSION,
                    "client": client,
                    "auth": {"token": call.token},
                }
                await ws.send(
                    json.dumps({"type": "req", "id": CONNECT_REQUEST_ID, "method": "connect", "params": connect_params})
                )
            elif frame.get("type") == "res":
                if not frame.get("ok"):
                    raise GatewayRefused(f"authentication failed: {_error_message(frame, 'unknown reason')}")
                return  # hello-ok
            # anything else before the hello (ticks, health) is not for us
    except ConnectionClosed:
        pass
    raise GatewayFailed("the gateway closed the connection during the handshake")


async def _answer(ws, call: AgentCall) -> AgentReply:
    run_id, streamed = "", ""
    try:
        async for raw in ws:
            frame = _frame(raw)
            kind = frame.get("type")
            raw_payload = frame.get("payload")
            payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
            if kind == "res" and frame.get("id") == AGENT_REQUEST_ID:
                if not frame.get("ok"):
                    raise GatewayRefused(f"the agent call was refused: {_error_message(frame, 'no reason given')}")
                status = payload.get("status")
                if status == "accepted":
                    run_id = str(payload.get("runId") or "")
                    continue
                if status == "ok":
                    text = _answer_text(payload)
                    if not text:
                        raise GatewayRefused(
                            f"the gateway answered ok without text (run {payload.get('runId') or run_id or '?'})"
                        )
                    return AgentReply(text=text, run_id=str(payload.get("runId") or run_id), streamed=streamed)
                if status == "error":
                    raise GatewayFailed(f"the agent failed: {payload.get('summary') or 'no summary'}")
                raise GatewayRefused(f"unexpected answer status {status!r}")
            if kind == "event" and frame.get("event") == "chat" and payload.get("sessionKey") == call.session_key:
                state = payload.get("state")
                if state == "delta":
                    streamed = _chat_text(payload) or streamed
                elif state in ("error", "aborted"):
                    raise GatewayFailed(f"the agent's run {state}: {payload.get('errorMessage') or 'no message'}")
            # other sessions' chat, agent status events, ticks: not an answer
    except ConnectionClosed:
        pass
    raise GatewayFailed("the gateway closed the connection before the agent's answer")
