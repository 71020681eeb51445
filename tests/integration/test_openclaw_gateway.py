"""The gateway activity in OpenClaw's WebSocket protocol against a stand-in gateway on loopback
(tests/openclaw_standin.py, which follows the original system's client): the handshake with the
token, the agent request, the answer among other sessions' broadcasts, and every way a call ends
— which of them are retried and which are not."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.exceptions import ApplicationError

from activities import openclaw_gateway as openclaw
from activities.governance_run import GovernanceRunActivities
from govfleet.contracts.governance_run import EntrypointInput
from tests.openclaw_standin import openclaw_standin

TOKEN = "t" * 40


def entrypoint(**changes: Any) -> EntrypointInput:
    data: dict[str, Any] = dict(
        run_id="governance:community-2027-05-04T06:00:00Z",
        schedule_id="governance:community",
        charter="COMMUNITY",
        title="Community — 2027-05-04",
        scheduled_at=datetime(2027, 5, 4, 6, 0).astimezone(),
        idempotency_key="governance:community:2027-05-04T06:00:00Z",
        agent_url="${OPENCLAW_GATEWAY_URL}",
        entrypoint="GOVERN",
        agent_token="${OPENCLAW_GATEWAY_TOKEN}",
        agent_protocol="openclaw",
    )
    data.update(changes)
    return EntrypointInput(**data)


def activities() -> GovernanceRunActivities:
    return GovernanceRunActivities(cast(Any, SimpleNamespace(http=None)))  # OpenClaw needs no HTTP client


async def test_a_run_speaks_the_originals_protocol_to_the_gateway_the_environment_names(monkeypatch):
    async with openclaw_standin(TOKEN) as gateway:
        monkeypatch.setenv("OPENCLAW_GATEWAY_URL", gateway.url)  # http://…, as the original writes it
        monkeypatch.setenv("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        out = await activities().entrypoint_gateway(entrypoint())
    # The answer is the final response's text, not another session's broadcast nor the deltas.
    assert out.brief == gateway.answer and out.detail == "agent gateway answered (run oc-run-7)"
    (connect,) = gateway.connects
    assert (connect["type"], connect["id"], connect["method"]) == ("req", "1", "connect")
    params = connect["params"]
    assert (params["minProtocol"], params["maxProtocol"], params["auth"]) == (3, 3, {"token": TOKEN})
    assert (params["client"]["id"], params["client"]["mode"]) == ("gateway-client", "backend")
    (agent,) = gateway.agent_calls
    assert (agent["type"], agent["id"], agent["method"]) == ("req", "2", "agent")
    assert agent["params"] == {
        "message": "GOVERN",
        "agentId": "main",
        "sessionKey": "agent:main:cogni_system:governance:community-2027-05-04T06:00:00Z",
        "idempotencyKey": "governance:community:2027-05-04T06:00:00Z",
        # The tenant's tool allowlist too (none stored in this database: no tools).
        "outboundHeaders": {
            "x-cogni-run-id": "governance:community-2027-05-04T06:00:00Z",
            "x-cogni-tool-allowlist": "",
        },
    }


@pytest.mark.parametrize(
    ("scenario", "message", "retried"),
    [
        ("auth", "authentication failed: unauthorized: gateway token mismatch", False),
        ("rejected", "the agent call was refused: invalid agent params", False),
        ("empty", "the gateway answered ok without text (run oc-run-7)", False),
        ("error", "the agent failed: model quota", True),
        ("aborted", "the agent's run aborted: run aborted by the operator", True),
        ("close", "the gateway closed the connection before the agent's answer", True),
        ("garbage", "the gateway sent a frame that is not JSON", True),
    ],
)
async def test_every_ending_of_a_call(monkeypatch, scenario, message, retried):
    async with openclaw_standin(TOKEN, scenario=scenario) as gateway:
        monkeypatch.setenv("OPENCLAW_GATEWAY_URL", gateway.url)
        monkeypatch.setenv("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        with pytest.raises(ApplicationError) as info:
            await activities().entrypoint_gateway(entrypoint())
    assert str(info.value) == f"agent gateway {gateway.url}: {message}"
    assert info.value.non_retryable is not retried


async def test_a_wrong_token_is_refused_and_a_missing_one_never_leaves_the_worker(monkeypatch):
    async with openclaw_standin(TOKEN) as gateway:
        monkeypatch.setenv("OPENCLAW_GATEWAY_URL", gateway.url)
        monkeypatch.setenv("OPENCLAW_GATEWAY_TOKEN", "not-the-token")
        with pytest.raises(ApplicationError, match="authentication failed") as wrong:
            await activities().entrypoint_gateway(entrypoint())
        assert wrong.value.non_retryable and gateway.agent_calls == []
        monkeypatch.delenv("OPENCLAW_GATEWAY_TOKEN")
        with pytest.raises(ApplicationError, match=r"token \$\{OPENCLAW_GATEWAY_TOKEN\} is not set") as unset:
            await activities().entrypoint_gateway(entrypoint())
        assert unset.value.non_retryable and gateway.connections == 1
        monkeypatch.delenv("OPENCLAW_GATEWAY_URL")
        with pytest.raises(ApplicationError, match=r"URL \$\{OPENCLAW_GATEWAY_URL\} is not set"):
            await activities().entrypoint_gateway(entrypoint())


async def test_a_silent_gateway_runs_out_of_time_and_nobody_listening_is_retried():
    async with openclaw_standin(TOKEN, scenario="silent") as gateway:
        call = openclaw.AgentCall(
            url=gateway.url,
            token=TOKEN,
            message="GOVERN",
            session_key="agent:main:cogni_system:r",
            idempotency_key="k",
            timeout_seconds=1.0,
        )
        with pytest.raises(openclaw.GatewayFailed, match=r"no answer within 1 s"):
            await openclaw.run_agent(call)
    # The same URL once the server is gone: nothing listens there.
    with pytest.raises(openclaw.GatewayFailed, match="could not connect"):
        await openclaw.run_agent(call)


def test_the_url_is_made_a_websocket_url_as_the_original_does():
    assert openclaw.websocket_url("http://gw:3333") == "ws://gw:3333"
    assert openclaw.websocket_url("https://gw.example/ws") == "wss://gw.example/ws"
    assert openclaw.websocket_url("wss://gw.example") == "wss://gw.example"
