"""A stand-in OpenClaw gateway on loopback: a real WebSocket server that speaks the gateway side of
the protocol the original system's client speaks (docs/schedules.md, "Entrypoints"), in the
order that client and its tests expect:

- on connect: an unrelated event (a tick), then `connect.challenge`;
- the `connect` request must carry protocol 3 (min and max), a backend client and the token;
  the answer is `res ok` with a hello-ok payload, or `res` not ok when the token is wrong;
- the `agent` request is acknowledged (`status: accepted`, a run id), then the gateway streams
  what a real one broadcasts — another session's chat delta, an agent lifecycle event, this
  session's chat deltas (the accumulated text so far), the chat `final` signal — and ends with
  `res ok` `{status: "ok", result: {payloads: [{text}], meta}}`.

`scenario` replaces the ending: "auth" (wrong-token answer whatever the token), "rejected"
(`res` not ok for the agent request), "error" (`status: error` with a summary), "aborted" (this
session's chat `aborted`), "empty" (ok without payloads), "close" (the connection closes after
the acknowledgement), "silent" (acknowledged, then nothing), "garbage" (a frame that is not JSON).
Every connect and agent request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@dataclass
class StandIn:
    token: str
    answer: str = "# Governance\n\nThe agent ran.\n"
    scenario: str = "ok"
    url: str = ""
    connects: list[dict[str, Any]] = field(default_factory=list)
    agent_calls: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            await ws.send(json.dumps({"type": "event", "event": "tick", "payload": {"ts": 1}}))
            await ws.send(json.dumps({"type": "event", "event": "connect.challenge", "payload": {"nonce": "n-1"}}))
            connect = json.loads(await ws.recv())
            self.connects.append(connect)
            params = connect.get("params") or {}
            authentic = (
                connect.get("type") == "req"
                and connect.get("method") == "connect"
                and params.get("minProtocol") == 3
                and params.get("maxProtocol") == 3
                and (params.get("client") or {}).get("mode") == "backend"
                and (params.get("auth") or {}).get("token") == self.token
                and self.scenario != "auth"
            )
            if not authentic:
                error = {"code": 401, "message": "unauthorized: gateway token mismatch"}
                await ws.send(json.dumps({"type": "res", "id": connect.get("id"), "ok": False, "error": error}))
                return
            hello = {"type": "hello-ok", "protocol": 3, "server": {"version": "stand-in"}}
            await ws.send(json.dumps({"type": "res", "id": connect["id"], "ok": True, "payload": hello}))
            request = json.loads(await ws.recv())
            self.agent_calls.append(request)
            await self._answer(ws, request)
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async def _answer(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        rid, params = request.get("id"), request.get("params") or {}
        session = params.get("sessionKey")

        async def send(frame: dict[str, Any]) -> None:
            await ws.send(json.dumps(frame))

        def chat(session_key: str, state: str, text: str = "", **extra: Any) -> dict[str, Any]:
            message = {"role": "assistant", "content": [{"type": "text", "text": text}]}
            payload = {"sessionKey": session_key, "state": state, "message": message, **extra}
            return {"type": "event", "event": "chat", "payload": payload}

        if self.scenario == "rejected":
            await send(
                {"type": "res", "id": rid, "ok": False, "error": {"code": 400, "message": "invalid agent params"}}
            )
            return
        await send({"type": "res", "id": rid, "ok": True, "payload": {"status": "accepted", "runId": "oc-run-7"}})
        if self.scenario == "close":
            await ws.close()
            return
        if self.scenario == "silent":
            return
        if self.scenario == "garbage":
            await ws.send("this is not a frame")
            return
        # What a gateway broadcasts to every connected client while the agent works.
        await send(chat("agent:main:someone-else:thread-9", "delta", "not yours"))
        await send(chat("agent:main:someone-else:thread-9", "error", errorMessage="not yours either"))
        lifecycle = {"sessionKey": session, "stream": "lifecycle", "data": {"phase": "start"}}
        await send({"type": "event", "event": "agent", "payload": lifecycle})
        if self.scenario == "aborted":
            await send(chat(session, "aborted", errorMessage="run aborted by the operator"))
            return
        half = self.answer[: len(self.answer) // 2]
        await send(chat(session, "delta", half))
        await send(chat(session, "delta", self.answer))
        await send(chat(session, "final", self.answer))
        if self.scenario == "error":
            await send({"type": "res", "id": rid, "ok": True, "payload": {"status": "error", "summary": "model quota"}})
            return
        payloads = [] if self.scenario == "empty" else [{"text": self.answer}]
        result = {"payloads": payloads, "meta": {"agentMeta": {"model": "stand-in"}}}
        await send(
            {"type": "res", "id": rid, "ok": True, "payload": {"status": "ok", "runId": "oc-run-7", "result": result}}
        )


@asynccontextmanager
async def openclaw_standin(token: str, **kwargs: Any):
    """The stand-in, listening on 127.0.0.1; `url` is http://… as the original's
    OPENCLAW_GATEWAY_URL is written (the client makes it ws://…)."""
    gateway = StandIn(token=token, **kwargs)
    async with serve(gateway._handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        gateway.url = f"http://127.0.0.1:{port}"
        yield gateway
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
