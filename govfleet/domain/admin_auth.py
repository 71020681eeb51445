"""Admin authorization for guardian pause/resume: EIP-191 (personal_sign) signatures.

An admin authorizes one action by signing, with an Ethereum wallet's ``personal_sign``
(EIP-191 version 0x45, ``eth_account.messages.encode_defunct``), the canonical message
returned by :func:`canonical_message`, for example::

    governance-fleet admin authorization
    action: pause
    guardian: governance-guardian
    nonce: 6f1c0e2a9b7d4c31a8e5f0b2c4d6e8fa
    expires: 2025-11-16T10:10:00Z (1763287800)
    reason: Manual intervention required

Field order is fixed, lines are separated by ``\\n`` (no trailing newline), the expiry is
UTC with whole seconds (both ISO 8601 and Unix seconds), and the reason is the request's
reason verbatim and always the last field (so it may contain anything, even newlines).

The *authorization* is one compact token ``<nonce>.<expires unix seconds>.<0x signature>``,
e.g. ``6f1c0e2a9b7d4c31a8e5f0b2c4d6e8fa.1763287800.0x<130 hex digits>``: plain ASCII,
safe inside a JSON string, a shell argument and an HTTP body. The nonce is 8 to 64
characters of ``[A-Za-z0-9_-]``. :func:`sign_authorization` makes one from a private
key; ``govfleet sign`` does it from a key file; any wallet can too (sign the canonical
message with personal_sign and join nonce, expiry and signature with dots).

Verification (:func:`verify_admin_action`) rejects, with :class:`AuthorizationError`
and one of these codes, in this order for each token:

- ``malformed``: not a token, bad nonce / expiry / signature encoding, unrecoverable
  signature, or no authorization at all;
- ``expired``: the expiry is at or before ``now``, or further than ``max_age_seconds``
  (default 900 s) after ``now``;
- ``foreign``: the recovered signer is not in ``admins``. A signature over a different
  action, guardian, nonce, expiry or reason recovers to a different (random) address, so
  a token replayed against another action or guardian is rejected as ``foreign``;
- ``replayed``: the nonce is in ``used_nonces``, or appears twice in the same call;

and then, for the whole call:

- ``quorum``: fewer than ``quorum`` distinct admin signers.

One bad token rejects the whole call: nothing is half-applied.

Pure and deterministic (no I/O, no clock, no randomness; the caller passes ``now``). Inside a
workflow call only ``verify_admin_action``, ``canonical_message``, ``recover_signer`` and
``parse_authorizations``: recovery uses eth-keys and eth-utils directly because eth-account
imports inside its functions, which the workflow sandbox refuses (checked by
``tests/integration/test_admin_auth_sandbox.py``). One verification costs about 8 ms of CPU,
so never verify in a query. The caller records every returned nonce until its expiry
(``prune_used_nonces``) and carries them across continue-as-new. A resume without a reason
signs ``""``. See docs/admin-actions.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from eth_keys.backends.native.ecdsa import ecdsa_raw_recover
from eth_keys.constants import SECPK1_N
from eth_keys.exceptions import BadSignature
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict

from govfleet.domain.eth import Account, encode_defunct
from govfleet.domain.timestamps import iso_utc

ACTIONS = ("pause", "resume")
MESSAGE_HEADER = "governance-fleet admin authorization"
DEFAULT_MAX_AGE_SECONDS = 900

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_EXPIRES_RE = re.compile(r"^[0-9]{1,11}$")  # up to year 5138: always a valid datetime
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SEPARATORS = re.compile(r"[\s,]+")

ERROR_CODES = ("malformed", "expired", "replayed", "foreign", "quorum")


def recover_signer(message: str, signature: bytes) -> str:
    """The lower-case 0x address whose key made ``signature`` (65 bytes r||s||v, v in
    0, 1, 27, 28) over ``message`` with EIP-191 personal_sign. Raises BadSignature.

    Same result as ``Account.recover_message(encode_defunct(text=message), signature=...)``
    (tests check it), but written against eth-keys' pure-Python ECDSA recovery and
    keccak directly: eth-account's path imports modules inside functions on every
    call, which Temporal's workflow sandbox refuses even after they were loaded."""
    if len(signature) != 65:
        raise BadSignature(f"signature is {len(signature)} bytes, expected 65")
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise BadSignature(f"v is {signature[64]}, expected 27 or 28 (or 0 or 1)")
    if not (1 <= r < SECPK1_N and 1 <= s < SECPK1_N):
        raise BadSignature("r or s is outside [1, n-1]")
    body = message.encode("utf-8")
    digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(body)).encode("ascii") + body)
    public_key = ecdsa_raw_recover(digest, (v, r, s))
    return "0x" + keccak(public_key)[-20:].hex()


def _warm_up() -> None:
    """eth-hash picks its keccak backend lazily, on first use. Doing one recovery now, at
    import time, makes that import happen while this module is being imported (passed
    through the workflow sandbox), not later inside a workflow, where the sandbox would
    refuse it."""
    signer = recover_signer(
        MESSAGE_HEADER,
        bytes.fromhex(
            "57f92941aa1d6acd1e61bce0e62152d0a3ab303cca5c348ac315f452caaaaf76"
            "0cab6ad2c7f3b3500ca1e2f0df8014de65bf18cfa6f23aee3a2d2705b4aba2b51b"
        ),
    )
    # Private key 0x00...01 (a well-known throwaway key) signed the header.
    if signer != "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf":
        raise RuntimeError(f"EIP-191 recovery self-check failed: got {signer}")


_warm_up()


class AuthorizationError(ValueError):
    """An admin action's authorization was rejected. ``code`` is one of ERROR_CODES;
    ``message`` says exactly what was wrong."""

    def __init__(self, code: str, message: str):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown authorization error code {code!r}")
        self.code = code
        self.message = message
        super().__init__(message)

    def __reduce__(self):  # keep code and message when pickled
        return (type(self), (self.code, self.message))

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class VerifiedSignature(BaseModel):
    """One accepted authorization: who signed, with which nonce, valid until when."""

    model_config = ConfigDict(frozen=True)

    signer: str  # lower-case 0x address
    nonce: str
    expires_at: datetime


def _utc(dt: datetime, name: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. workflow.now()), got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def _unix(dt: datetime) -> int:
    return int(dt.timestamp() // 1)


def _check_fields(action: str, guardian_id: str, nonce: str, reason: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not isinstance(guardian_id, str) or not guardian_id or any(c.isspace() for c in guardian_id):
        raise ValueError(f"guardian_id must be a non-empty string without whitespace, got {guardian_id!r}")
    if not isinstance(nonce, str) or not NONCE_RE.match(nonce):
        raise ValueError(f"nonce must be 8 to 64 characters of [A-Za-z0-9_-], got {nonce!r}")
    if not isinstance(reason, str):
        raise ValueError(f"reason must be a string, got {type(reason).__name__}")


def canonical_message(*, action: str, guardian_id: str, nonce: str, expires_at: datetime, reason: str) -> str:
    """The exact text an admin signs (see the module docstring). The expiry is truncated
    to whole seconds, as carried in the token."""
    _check_fields(action, guardian_id, nonce, reason)
    ts = _unix(_utc(expires_at, "expires_at"))
    iso = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "\n".join(
        [
            MESSAGE_HEADER,
            f"action: {action}",
            f"guardian: {guardian_id}",
            f"nonce: {nonce}",
            f"expires: {iso} ({ts})",
            f"reason: {reason}",
        ]
    )


def sign_authorization(
    private_key: str | bytes, *, action: str, guardian_id: str, reason: str, expires_at: datetime, nonce: str
) -> str:
    """An authorization token ``<nonce>.<expires unix>.<0x signature>`` signed with
    ``private_key`` (32 bytes, or hex with or without 0x)."""
    message = canonical_message(
        action=action, guardian_id=guardian_id, nonce=nonce, expires_at=expires_at, reason=reason
    )
    try:
        signed = Account.sign_message(encode_defunct(text=message), private_key)
    except Exception as exc:  # eth-account raises ValueError / ValidationError / binascii errors
        raise ValueError(f"invalid private key: {exc}") from None
    return f"{nonce}.{_unix(_utc(expires_at, 'expires_at'))}.0x{bytes(signed.signature).hex()}"


def address_of(private_key: str | bytes) -> str:
    """The lower-case 0x address of a private key."""
    try:
        return Account.from_key(private_key).address.lower()
    except Exception as exc:
        raise ValueError(f"invalid private key: {exc}") from None


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


def _short(token: str) -> str:
    return token if len(token) <= 24 else token[:20] + "…"


def _parse_token(token: str, index: int) -> tuple[str, int, bytes]:
    where = f"authorization #{index + 1}"
    if not isinstance(token, str):
        raise AuthorizationError("malformed", f"{where} must be a string, got {type(token).__name__}")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise AuthorizationError(
            "malformed",
            f"{where} {_short(token)!r} is not of the form <nonce>.<expires unix seconds>.<0x signature>",
        )
    nonce, expires, signature = parts
    if not NONCE_RE.match(nonce):
        raise AuthorizationError("malformed", f"{where}: nonce {nonce!r} is not 8 to 64 characters of [A-Za-z0-9_-]")
    if not _EXPIRES_RE.match(expires):
        raise AuthorizationError("malformed", f"{where}: expiry {expires!r} is not Unix seconds")
    if not _SIGNATURE_RE.match(signature):
        raise AuthorizationError(
            "malformed", f"{where}: signature {_short(signature)!r} is not 0x followed by 130 hex digits (65 bytes)"
        )
    return nonce, int(expires), bytes.fromhex(signature[2:])


def verify_admin_action(
    authorizations: list[str],
    *,
    action: str,
    guardian_id: str,
    reason: str,
    now: datetime,
    admins: list[str],
    used_nonces: set[str] | frozenset[str],
    quorum: int = 1,
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
) -> list[VerifiedSignature]:
    """Verify authorization tokens for ``action`` on ``guardian_id`` with ``reason``.

    Returns one VerifiedSignature per token (in order) when every token is valid and
    at least ``quorum`` distinct admins signed; raises AuthorizationError otherwise.
    Deterministic: safe to call inside a workflow with ``now=workflow.now()``.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not isinstance(reason, str):
        raise ValueError(f"reason must be a string, got {type(reason).__name__}")
    if quorum < 1:
        raise ValueError(f"quorum must be at least 1, got {quorum}")
    now = _utc(now, "now")
    admin_set = set()
    for a in admins:
        if not isinstance(a, str) or not _ADDRESS_RE.match(a):
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
        message = canonical_message(
            action=action, guardian_id=guardian_id, nonce=nonce, expires_at=expires_at, reason=reason
        )
        try:
            signer = recover_signer(message, signature)
        except BadSignature as exc:  # invalid v, r or s
            raise AuthorizationError(
                "malformed", f"{where} (nonce {nonce}): signature cannot be recovered: {exc}"
            ) from None
        if signer not in admin_set:
            raise AuthorizationError(
                "foreign",
                f"{where} (nonce {nonce}) recovers to {signer}, which is not an admin of {guardian_id} "
                f"for this message (action {action!r}, reason {reason!r}); a signature made for another "
                "action, guardian, reason, nonce or expiry, or by another key, is foreign",
            )
        if nonce in used_nonces:
            raise AuthorizationError("replayed", f"{where}: nonce {nonce} was already used; sign a new authorization")
        if nonce in seen_nonces:
            raise AuthorizationError("replayed", f"{where}: nonce {nonce} appears twice in this request")
        seen_nonces.add(nonce)
        verified.append(VerifiedSignature(signer=signer, nonce=nonce, expires_at=expires_at))

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
        )
    return verified


def prune_used_nonces(nonces: dict[str, datetime], now: datetime) -> dict[str, datetime]:
    """Keep only nonces whose expiry is still ahead of ``now`` (a nonce cannot be replayed
    after its expiry, so it need not be remembered): ``{nonce: expires_at}`` in, same out."""
    now = _utc(now, "now")
    return {n: e for n, e in nonces.items() if _utc(e, f"expiry of nonce {n}") > now}


def expires_in(now: datetime, seconds: int) -> datetime:
    """``now + seconds``, truncated to whole seconds (what the token carries)."""
    return datetime.fromtimestamp(_unix(_utc(now, "now") + timedelta(seconds=seconds)), UTC)
