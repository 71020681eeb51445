"""`govfleet.domain.admin_auth` (EIP-712 hashing, recovery through coincurve) runs inside
Temporal's workflow sandbox when passed through, and gives the same verdicts there
(deterministic: `now` is `workflow.now()`)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from govfleet.domain.admin_auth import AuthorizationError, verify_admin_action
    from govfleet.domain.admin_signing import SigningDomain, sign_authorization

# Public Hardhat dev accounts 0 (admin) and 2 (not an admin); test-only keys.
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
ADMINS = ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"]
DOMAIN = SigningDomain(
    name="cogni-demo", chain_id=8453, verifying_contract="0x5fbdb2315678afecb367f032d93f642f64180aa3"
)


class VerifyInput(BaseModel):
    authorizations: list[str]
    used_nonces: list[str] = []


class VerifyResult(BaseModel):
    ok: bool
    signer: str | None = None
    code: str | None = None
    message: str | None = None


@workflow.defn(sandboxed=True)
class VerifyAdminAction:
    @workflow.run
    async def run(self, inp: VerifyInput) -> VerifyResult:
        try:
            out = verify_admin_action(
                inp.authorizations,
                domain=DOMAIN,
                action="pause",
                guardian_id="governance-guardian",
                reason="r",
                now=workflow.now(),
                admins=ADMINS,
                used_nonces=set(inp.used_nonces),
            )
        except AuthorizationError as err:
            return VerifyResult(ok=False, code=err.code, message=err.message)
        return VerifyResult(ok=True, signer=out[0].signer)


async def test_verifies_inside_workflow_sandbox(time_skipping_env, task_queue):
    env = time_skipping_env
    client = env.client
    async with Worker(client, task_queue=task_queue, workflows=[VerifyAdminAction]):
        now = await env.get_current_time()

        async def run(tokens, used=()):
            return await client.execute_workflow(
                VerifyAdminAction.run,
                VerifyInput(authorizations=tokens, used_nonces=list(used)),
                id=f"verify-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )

        def tok(key, nonce):
            return sign_authorization(
                key,
                domain=DOMAIN,
                action="pause",
                guardian_id="governance-guardian",
                reason="r",
                expires_at=now + timedelta(seconds=600),
                nonce=nonce,
            )

        good = await run([tok(KEY0, "sandbox-1")])
        assert good == VerifyResult(ok=True, signer=ADMINS[0])
        foreign = await run([tok(KEY2, "sandbox-2")])
        assert (foreign.ok, foreign.code) == (False, "foreign")
        replayed = await run([tok(KEY0, "sandbox-3")], used=["sandbox-3"])
        assert (replayed.ok, replayed.code) == (False, "replayed")
        nonce, exp, sig = tok(KEY0, "sandbox-4").split(".")
        bad_v = await run([f"{nonce}.{exp}.{sig[:-2]}05"])
        assert (bad_v.ok, bad_v.code) == (False, "malformed")
        expired = await run([f"{nonce}.{int(now.timestamp()) - 1}.{sig}"])
        assert (expired.ok, expired.code) == (False, "expired")
