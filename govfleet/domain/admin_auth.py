"""Admin authorization of the guardian's admin actions: the request bodies, the authorization
tokens and their verification (EIP-712 signatures; what is signed: `govfleet.domain.admin_signing`).

The *authorization* is one compact token ``<nonce>.<expiry unix seconds>.<0x signature>``:
plain ASCII, safe inside a JSON string, a shell argument and an HTTP body. The nonce is 8 to 64
characters of ``[A-Za-z0-9_-]``. ``sign_authorization`` makes one from a private key;
``govfleet sign`` from a key file; any wallet can too (see docs/admin-actions.md).

Verification (:func:`verify_admin_action`) rejects, with :class:`AuthorizationError` and one of
these codes, in this order for each token:

- ``malformed``: not a token, bad nonce / expiry / signature encoding, unrecoverable or
  high-s signature, or no authorization at all (and, in :func:`parse_admin_body`, a request
  body that does not have the documented shape);
- ``expired``: the expiry is at or before ``now``, or further than ``max_age_seconds``
  (default 900 s) after ``now``;
- ``foreign``: the recovered signer is not in ``admins``. A signature over a different domain,
  action, guardian, nonce, expiry, reason or governance approval recovers to a different
  (random) address;
- ``replayed``: the nonce is in ``used_nonces``, or appears twice in the same call;

and then, for the whole call, ``quorum``: fewer than ``quorum`` distinct admin signers. One bad
token rejects the whole call: nothing is half-applied.

Pure and deterministic (no I/O, no clock, no randomness; the caller passes ``now``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from govfleet.domain.admin_signing import (
    ACTIONS,
    ADDRESS_RE,
    NONCE_RE,
    GovernanceApproval,
    SigningDomain,
    as_utc,
    legacy_digest,
    legacy_message,
    recover_digest_signer,
    signing_digest,
    typed_data,
    unix_seconds,
)
from govfleet.domain.timestamps import iso_utc

DEFAULT_MAX_AGE_SECONDS = 900
MAX_REASON_LENGTH = 2000
MAX_TOKENS = 16
MAX_TOKEN_TEXT = 8 * 1024  # characters of `authorization` text in one request

_EXPIRES_RE = re.compile(r"^[0-9]{1,11}$")  # up to year 5138: always a valid datetime
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_SEPARATORS = re.compile(r"[\s,]+")

ERROR_CODES = ("malformed", "expired", "replayed", "foreign", "quorum")
Scheme = Literal["eip712", "eip191"]


class VerifiedSignature(BaseModel):
    """One accepted authorization: who signed, with which nonce, valid until when."""

    model_config = ConfigDict(frozen=True)

    signer: str  # lower-case 0x address
    nonce: str
    expires_at: datetime
    approval: str | None = None  # the governance approval's reference, when signed over one


class AuthorizationError(ValueError):
    """An admin action's authorization was rejected. ``code`` is one of ERROR_CODES;
    ``message`` says exactly what was wrong."""

    def __init__(self, code: str, message: str, verified: list[VerifiedSignature] | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown authorization error code {code!r}")
        self.code = code
        self.message = message
        # `quorum`: the genuine signatures that were too few (a refused action spends them).
        self.verified = list(verified or [])
        super().__init__(message)

    def __reduce__(self):  # keep code and message when pickled
        return (type(self), (self.code, self.message))

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def parse_authorizations(value: str | Iterable[str] | None) -> list[str]:
    """Tokens from an ``authorization`` field: one string holding one or more tokens
    separated by whitespace or commas, or a list of such strings."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise AuthorizationError("malformed", f"authorization must be a string, got {type(part).__name__}")
        out += [t for t in _SEPARATORS.split(part) if t]
    return out


def _short(value: object, limit: int = 24) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= limit else text[: limit - 4] + "…")


# The documented bodies of the admin actions (signal, update and HTTP alike). `governance_verified`
# is still accepted in a resume and means nothing: the approval is `governance_approval`, signed.
_BODY_FIELDS = {
    "pause": ("reason", "authorization"),
    "resume": ("authorization", "governance_approval", "governance_verified", "reason"),
    "complete_forensic_audit": ("report", "authorization"),
}


def parse_admin_body(action: str, body: Any) -> dict[str, Any]:
    """The request body of ``action`` checked field by field, as a dict with every field
    (``reason``, ``authorization`` as a list of tokens; for a resume ``governance_approval``, a
    `GovernanceApproval` or None, and ``governance_verified``; for the forensic audit's completion
    ``report``, which is also its signed ``reason``), or AuthorizationError ``malformed`` naming
    the first problem.
    The same check for the HTTP endpoints and the guardian's signals and updates, so all three
    answer the same code and message for the same body."""
    if action not in _BODY_FIELDS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    fields = _BODY_FIELDS[action]

    def bad(problem: str) -> AuthorizationError:
        return AuthorizationError("malformed", f"malformed {action} body: {problem}")

    if not isinstance(body, dict):
        kind = "null" if body is None else type(body).__name__
        raise bad(f"it must be a JSON object with {', '.join(fields)}, got {kind}")
    unknown = [k for k in body if k not in fields]
    if unknown:
        names = ", ".join(_short(k) for k in unknown[:3]) + (
            f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        )
        raise bad(f"unknown field {names} (the fields are {', '.join(fields)})")
    if action == "complete_forensic_audit":
        report = body.get("report", "")
        if not isinstance(report, str) or not report.strip():
            raise bad("report is required: a reference to the forensic audit's report (a URL or a document id)")
        body = {**body, "reason": report}
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise bad(f"reason must be a string, got {type(reason).__name__}")
    if len(reason) > MAX_REASON_LENGTH:
        raise bad(f"reason is {len(reason)} characters long, at most {MAX_REASON_LENGTH} allowed")
    if action == "pause" and not reason.strip():
        raise bad("reason is required for a pause (it is signed, and shown in the audit log)")
    authorization = body.get("authorization")
    if authorization is None or authorization == "" or authorization == []:
        raise bad("authorization is required (an EIP-712 admin authorization from `govfleet sign`)")
    items = [authorization] if isinstance(authorization, str) else authorization
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise bad("authorization must be a string or a list of strings")
    if sum(len(t) for t in items) > MAX_TOKEN_TEXT:
        raise bad(f"authorization is longer than {MAX_TOKEN_TEXT} characters")
    tokens = parse_authorizations(items)
    if not tokens:
        raise bad("authorization is required (an EIP-712 admin authorization from `govfleet sign`)")
    if len(tokens) > MAX_TOKENS:
        raise bad(f"authorization holds {len(tokens)} tokens, at most {MAX_TOKENS} allowed")
    out: dict[str, Any] = {"reason": reason, "authorization": tokens}
    if action == "resume":
        verified = body.get("governance_verified", False)
        if not isinstance(verified, bool):
            raise bad(f"governance_verified must be true or false, got {type(verified).__name__}")
        out["governance_verified"] = verified
        out["governance_approval"] = _approval(body.get("governance_approval"), bad)
    if action == "complete_forensic_audit":
        out["report"] = reason
    return out


def _approval(value: Any, bad: Callable[[str], AuthorizationError]) -> GovernanceApproval | None:
    if value is None:
        return None
    if isinstance(value, GovernanceApproval):
        return value
    if not isinstance(value, dict):
        raise bad(f"governance_approval must be an object with reference and url, got {type(value).__name__}")
    try:
        return GovernanceApproval.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "governance_approval"
        raise bad(f"governance_approval.{where}: {first['msg']}") from None


def _parse_token(token: str, index: int) -> tuple[str, int, bytes]:
    where = f"authorization #{index + 1}"
    if not isinstance(token, str):
        raise AuthorizationError("malformed", f"{where} must be a string, got {type(token).__name__}")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise AuthorizationError(
            "malformed",
            f"{where} {_short(token)} is not of the form <nonce>.<expiry unix seconds>.<0x signature>",
        )
    nonce, expires, signature = parts
    if not NONCE_RE.match(nonce):
        raise AuthorizationError(
            "malformed", f"{where}: nonce {_short(nonce)} is not 8 to 64 characters of [A-Za-z0-9_-]"
        )
    if not _EXPIRES_RE.match(expires):
        raise AuthorizationError("malformed", f"{where}: expiry {_short(expires)} is not Unix seconds")
    if not _SIGNATURE_RE.match(signature):
        raise AuthorizationError(
            "malformed", f"{where}: signature {_short(signature)} is not 0x followed by 130 hex digits (65 bytes)"
        )
    return nonce, int(expires), bytes.fromhex(signature[2:])


def verify_admin_action(
    authorizations: list[str] | str,
    *,
    domain: SigningDomain,
    action: str,
    guardian_id: str,
    reason: str,
    now: datetime,
    admins: list[str],
    used_nonces: set[str] | frozenset[str] = frozenset(),
    quorum: int = 1,
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
    scheme: Scheme = "eip712",
    approval: GovernanceApproval | None = None,
) -> list[VerifiedSignature]:
    """Verify authorization tokens for ``action`` on ``guardian_id`` with ``reason`` (and, for a
    resume that carries one, the governance ``approval``: every token must be signed over it).

    Returns one VerifiedSignature per token (in order) when every token is valid and at least
    ``quorum`` distinct admins signed; raises AuthorizationError otherwise (``quorum`` carries
    the genuine signatures it found). Deterministic: safe to call inside a workflow with
    ``now=workflow.now()``.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not isinstance(reason, str):
        raise ValueError(f"reason must be a string, got {type(reason).__name__}")
    if quorum < 1:
        raise ValueError(f"quorum must be at least 1, got {quorum}")
    now = as_utc(now, "now")
    admin_set = set()
    for a in admins:
        if not isinstance(a, str) or not ADDRESS_RE.match(a):
            raise ValueError(f"admin {a!r} is not an Ethereum address (0x followed by 40 hex digits)")
        admin_set.add(a.lower())
    if isinstance(authorizations, str):
        authorizations = parse_authorizations(authorizations)
    if not authorizations:
        raise AuthorizationError("malformed", f"no authorization given for {action} of {guardian_id}")

    now_ts = now.timestamp()
    seen_nonces: set[str] = set()
    verified: list[VerifiedSignature] = []
    for i, token in enumerate(authorizations):
        where = f"authorization #{i + 1}"
        nonce, expires_ts, signature = _parse_token(token, i)
        expires_at = datetime.fromtimestamp(expires_ts, UTC)
        if expires_ts <= now_ts:
            raise AuthorizationError(
                "expired",
                f"{where} (nonce {nonce}) expired at {iso_utc(expires_at)}, "
                f"{now_ts - expires_ts:.0f} s ago; sign a new one",
            )
        if expires_ts - now_ts > max_age_seconds:
            raise AuthorizationError(
                "expired",
                f"{where} (nonce {nonce}) expires {expires_ts - now_ts:.0f} s from now, more than the "
                f"{max_age_seconds} s allowed; sign one with a shorter expiry",
            )
        if scheme == "eip712":
            typed = typed_data(
                domain,
                action=action,
                guardian_id=guardian_id,
                reason=reason,
                nonce=nonce,
                expires_at=expires_at,
                approval=approval,
            )
            digest = signing_digest(typed)
        else:
            text = legacy_message(
                action=action, guardian_id=guardian_id, reason=reason, nonce=nonce, expires_at=expires_at
            )
            digest = legacy_digest(text)
        try:
            signer = recover_digest_signer(digest, signature, low_s=scheme == "eip712")
        except ValueError as exc:  # invalid v, r or s
            raise AuthorizationError(
                "malformed", f"{where} (nonce {nonce}): signature cannot be recovered: {exc}"
            ) from None
        if signer not in admin_set:
            signed_for = f"domain {domain.describe()}, " if scheme == "eip712" else ""
            if approval is not None:
                signed_for += f"governance approval {_short(approval.reference, 60)}, "
            raise AuthorizationError(
                "foreign",
                f"{where} (nonce {nonce}) recovers to {signer}, which is not an admin of {guardian_id} "
                f"for this message ({signed_for}action {action!r}, reason {_short(reason, 60)}); a signature "
                "made for another DAO, chain, guardian, action, reason, nonce or expiry, or by another key, "
                "is foreign (after an emergency pause, each admin signs the resume over the governance approval)",
            )
        if nonce in used_nonces:
            raise AuthorizationError("replayed", f"{where}: nonce {nonce} was already used; sign a new authorization")
        if nonce in seen_nonces:
            raise AuthorizationError("replayed", f"{where}: nonce {nonce} appears twice in this request")
        seen_nonces.add(nonce)
        verified.append(
            VerifiedSignature(
                signer=signer,
                nonce=nonce,
                expires_at=expires_at,
                approval=approval.reference if approval is not None else None,
            )
        )

    signers = sorted({v.signer for v in verified})
    if len(signers) < quorum:
        dup = (
            f" ({len(verified)} signatures from {len(signers)} admin{'s' if len(signers) != 1 else ''})"
            if len(verified) != len(signers)
            else ""
        )
        raise AuthorizationError(
            "quorum",
            f"{action} of {guardian_id} needs {quorum} distinct admin signatures, got {len(signers)}"
            f"{dup}: {', '.join(signers)}",
            verified,
        )
    return verified


def prune_used_nonces(nonces: dict[str, datetime], now: datetime) -> dict[str, datetime]:
    """Keep only nonces whose expiry is still ahead of ``now`` (a nonce cannot be replayed
    after its expiry, so it need not be remembered): ``{nonce: expires_at}`` in, same out."""
    now = as_utc(now, "now")
    return {n: e for n, e in nonces.items() if as_utc(e, f"expiry of nonce {n}") > now}


def expires_in(now: datetime, seconds: int) -> datetime:
    """``now + seconds``, truncated to whole seconds (what the token carries)."""
    return datetime.fromtimestamp(unix_seconds(as_utc(now, "now") + timedelta(seconds=seconds)), UTC)
