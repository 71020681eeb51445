"""The signed admin actions over HTTP (`POST /guardian/pause`, `/guardian/resume`): verified here,
then sent to the guardian as an update (see docs/admin-actions.md, "Over HTTP", and
govfleet/api/admin_gate.py for what is counted, limited and remembered).

Every refusal, here or by the guardian, is counted for the client's address and for the
request's verified signers; a refusal from an address or by a signer over its limit is a 429. A
request the guardian already refused is answered as it was then, without reaching it again. A
request whose action is carried out is never limited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel

from govfleet.api import gateway
from govfleet.api.admin_gate import Refusal, refusal_key, signer_key
from govfleet.api.body import read_json
from govfleet.api.context import ApiContext, api_context, client_address
from govfleet.api.errors import ApiError
from govfleet.domain.admin_auth import AuthorizationError, VerifiedSignature, parse_admin_body, verify_admin_action

M = TypeVar("M", bound=BaseModel)
# The error type of the guardian's refused `pause` / `resume` updates (govfleet/contracts/guardian.py).
GUARDIAN_REFUSAL = "AdminRejected"


async def carry_out(request: Request, action: str, update: str, out: type[M]) -> M:
    """Verify an admin request, send it to the guardian, answer its result or the refusal."""
    ctx = api_context(request)
    gate = ctx.admin_gate
    source = client_address(request)
    spec = ctx.config.spec
    guardian = spec.guardian_by_id(ctx.guardian_id) or spec.guardian  # the guardian this request targets
    now = datetime.now(UTC)  # signature expiry is wall-clock time, as in the guardian
    signers: tuple[str, ...] = ()
    try:
        body = await read_json(request)
        try:
            fields = parse_admin_body(action, body)
        except AuthorizationError as err:  # the body's shape: invalid input
            raise ApiError(422, "rejected", err.message, {"action": action, "code": err.code}) from None
        key = refusal_key(action, ctx.guardian_id, fields)
        earlier = gate.refusal_for(key, now)
        if earlier is not None:  # refused by the guardian before: the same answer, from here
            signers = earlier.signers
            raise ApiError(earlier.status, earlier.code, earlier.message, earlier.details)
        try:
            verified = verify_admin_action(
                fields["authorization"],
                domain=spec.cogni_dao.signing_domain(),
                action=action,
                guardian_id=ctx.guardian_id,
                reason=fields["reason"],
                now=now,
                admins=list(guardian.admins),
                max_age_seconds=guardian.signature_max_age_seconds,
                approval=fields.get("governance_approval"),
            )
            signers = tuple(sorted({v.signer for v in verified}))
            replayed = gate.replayed([v.nonce for v in verified], now)
            if replayed is not None:
                raise AuthorizationError(
                    "replayed", f"nonce {replayed} was already used (or is in use right now); sign a new authorization"
                )
        except AuthorizationError as err:  # the signatures
            raise ApiError(403, "rejected", err.message, {"action": action, "code": err.code}) from None
        return await _send(ctx, update, body, out, verified, key, signers, now)
    except ApiError as err:
        if not _is_refusal(err):
            raise  # the guardian did not answer (503), or answered out of shape (502): not a refusal
        raise _counted(ctx, err, action=action, source=source, signers=signers, now=now) from None


async def _send(
    ctx: ApiContext,
    update: str,
    body: dict,
    out: type[M],
    verified: list[VerifiedSignature],
    key: str,
    signers: tuple[str, ...],
    now: datetime,
) -> M:
    """Send a verified request to the guardian; its nonces are held meanwhile, and a refusal is
    remembered until the signatures expire."""
    gate = ctx.admin_gate
    nonces = {v.nonce: v.expires_at for v in verified}
    gate.hold(nonces)
    accepted = False
    try:
        result = await gateway.update_guardian(ctx, update, body, out)
        accepted = True
        return result
    except ApiError as err:
        if _is_refusal(err):
            refusal = Refusal(
                status=err.status,
                code=err.code,
                message=err.message,
                details=err.details,
                signers=signers,
                expires_at=min(nonces.values()),
            )
            gate.remember_refusal(key, refusal, now)
        raise
    finally:
        gate.release(nonces, used=accepted)


def _is_refusal(err: ApiError) -> bool:
    """A refusal of the request: any 4xx before the guardian, and the guardian's own refusals
    (its update failed with `AdminRejected`)."""
    if err.code == "rejected" and isinstance(err.details, dict) and "type" in err.details:
        return err.details["type"] == GUARDIAN_REFUSAL
    return 400 <= err.status < 500


def _counted(
    ctx: ApiContext, err: ApiError, *, action: str, source: str, signers: tuple[str, ...], now: datetime
) -> ApiError:
    """Count a refusal; the error to answer: the refusal itself, or 429 when the address or a
    signer was already over its limit."""
    gate = ctx.admin_gate
    keys = (source, *map(signer_key, signers))
    retry_after = gate.retry_after(*keys)
    limited_by = gate.limited_key(*keys)
    code = err.details.get("code", err.code) if isinstance(err.details, dict) else err.code
    gate.reject(
        guardian_id=ctx.guardian_id,
        source=source,
        action=action,
        code=code,
        message=err.message,
        now=now,
        limited=retry_after is not None,
        signers=signers,
    )
    if retry_after is None:
        return err
    who = f"from {source}" if limited_by == source else f"signed by {str(limited_by).removeprefix('signer ')}"
    return ApiError(
        429,
        "too_many_requests",
        f"too many rejected admin requests {who}; this one was rejected too ({code}): retry after {retry_after} s",
        {"action": action, "code": code, "retry_after_seconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )
