"""Admin authorization for guardian pause/resume: EIP-712 typed-data signatures.

(About 600 lines, kept in one module: encoding, signing and verification must agree byte for
byte on the typed data, and the rejection codes are one ordered list.)

An admin authorizes one action by signing, with an Ethereum wallet's ``eth_signTypedData_v4``
(EIP-712), this typed data (:func:`typed_data`)::

    domain:  EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)
             name, version, chainId, verifyingContract from repo-spec ``cogni_dao``
    message: AdminAction(string action, string guardianId, string reason, string nonce, uint256 expiry)

so that the wallet shows the signer the DAO, the chain, the contract, the action, the guardian,
the reason and the expiry, and a signature made for one DAO, chain, contract or guardian is
refused by any other (it recovers to another address). The guardian id is the workflow id the
request targets (``governance-guardian``, ``governance-guardian-<name>``).

The *authorization* is one compact token ``<nonce>.<expiry unix seconds>.<0x signature>``:
plain ASCII, safe inside a JSON string, a shell argument and an HTTP body. The nonce is 8 to 64
characters of ``[A-Za-z0-9_-]``. :func:`sign_authorization` makes one from a private key;
``govfleet sign`` from a key file; any wallet can too (see docs/admin-actions.md).

Verification (:func:`verify_admin_action`) rejects, with :class:`AuthorizationError` and one of
these codes, in this order for each token:

- ``malformed``: not a token, bad nonce / expiry / signature encoding, unrecoverable or
  high-s signature, or no authorization at all (and, in :func:`parse_admin_body`, a request
  body that does not have the documented shape);
- ``expired``: the expiry is at or before ``now``, or further than ``max_age_seconds``
  (default 900 s) after ``now``;
- ``foreign``: the recovered signer is not in ``admins``. A signature over a different domain,
  action, guardian, nonce, expiry or reason recovers to a different (random) address;
- ``replayed``: the nonce is in ``used_nonces``, or appears twice in the same call;

and then, for the whole call, ``quorum``: fewer than ``quorum`` distinct admin signers. One bad
token rejects the whole call: nothing is half-applied.

Pure and deterministic (no I/O, no clock, no randomness; the caller passes ``now``), and
importable inside Temporal's workflow sandbox: the EIP-712 hashing is written here against
keccak (checked against eth-account's ``encode_typed_data`` by the tests) and recovery uses
libsecp256k1 through coincurve, about 0.1 ms per signature (``bench/admin_auth_bench.py``).

Runs of the guardian that started before EIP-712 verified EIP-191 (``personal_sign``) tokens
over a text message; ``scheme="eip191"`` keeps that verification for them while they are
replayed (see docs/patches.md, ``guardian-admin-eip712``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import coincurve
from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, field_validator

from govfleet.domain.timestamps import iso_utc

ACTIONS = ("pause", "resume")
DEFAULT_MAX_AGE_SECONDS = 900
MAX_REASON_LENGTH = 2000
MAX_TOKENS = 16
MAX_TOKEN_TEXT = 8 * 1024  # characters of `authorization` text in one request
SIGNING_VERSION = "1"

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_EXPIRES_RE = re.compile(r"^[0-9]{1,11}$")  # up to year 5138: always a valid datetime
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SEPARATORS = re.compile(r"[\s,]+")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

ERROR_CODES = ("malformed", "expired", "replayed", "foreign", "quorum")
Scheme = Literal["eip712", "eip191"]

PRIMARY_TYPE = "AdminAction"
MESSAGE_TYPES = [
    {"name": "action", "type": "string"},
    {"name": "guardianId", "type": "string"},
    {"name": "reason", "type": "string"},
    {"name": "nonce", "type": "string"},
    {"name": "expiry", "type": "uint256"},
]
_DOMAIN_FIELDS = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
]


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


class SigningDomain(BaseModel):
    """The EIP-712 domain of admin signatures: repo-spec ``cogni_dao`` (``name``, ``version``,
    ``chain_id``, ``dao_contract``). Fields left unset are left out of the domain."""

    model_config = ConfigDict(frozen=True)

    name: str = "cogni"
    version: str = SIGNING_VERSION
    chain_id: int | None = None
    verifying_contract: str | None = None

    @field_validator("chain_id", mode="before")
    @classmethod
    def _chain_id(cls, v: Any) -> Any:
        # repo-specs write it as a number or as a string ("8453").
        if isinstance(v, str) and v.strip().isdigit():
            return int(v.strip())
        return v

    @field_validator("chain_id")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError(f"chain_id must not be negative, got {v}")
        return v

    @field_validator("verifying_contract")
    @classmethod
    def _contract(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS_RE.match(v):
            raise ValueError(f"verifying_contract {v!r} is not an address (0x followed by 40 hex digits)")
        return None if v is None else v.lower()

    def eip712(self) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """The ``EIP712Domain`` type and the domain value, with the unset fields left out."""
        values = {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }
        types = [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS if values[n] is not None]
        return types, {f["name"]: values[f["name"]] for f in types}

    def describe(self) -> str:
        parts = [f"{self.name!r} version {self.version!r}"]
        if self.chain_id is not None:
            parts.append(f"chain {self.chain_id}")
        if self.verifying_contract is not None:
            parts.append(f"contract {self.verifying_contract}")
        return ", ".join(parts)


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


# --- EIP-712 -----------------------------------------------------------------------------------


def typed_data(
    domain: SigningDomain, *, action: str, guardian_id: str, reason: str, nonce: str, expires_at: datetime
) -> dict[str, Any]:
    """The complete EIP-712 typed data of one admin action, as a wallet's
    ``eth_signTypedData_v4`` takes it (the expiry in whole Unix seconds)."""
    _check_fields(action, guardian_id, nonce, reason)
    domain_types, domain_value = domain.eip712()
    return {
        "types": {"EIP712Domain": domain_types, PRIMARY_TYPE: MESSAGE_TYPES},
        "primaryType": PRIMARY_TYPE,
        "domain": domain_value,
        "message": {
            "action": action,
            "guardianId": guardian_id,
            "reason": reason,
            "nonce": nonce,
            "expiry": _unix(_utc(expires_at, "expires_at")),
        },
    }


def _encode_value(kind: str, value: Any, where: str) -> bytes:
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {type(value).__name__}")
        return keccak(value.encode("utf-8"))
    if kind == "uint256":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
            raise ValueError(f"{where} must be an unsigned 256-bit integer, got {value!r}")
        return value.to_bytes(32, "big")
    if kind == "address":
        if not isinstance(value, str) or not _ADDRESS_RE.match(value):
            raise ValueError(f"{where} must be an address (0x followed by 40 hex digits), got {value!r}")
        return bytes(12) + bytes.fromhex(value[2:])
    raise ValueError(f"{where}: type {kind!r} is not used by admin signatures")


def _hash_struct(name: str, fields: list[dict[str, str]], value: Mapping[str, Any], where: str) -> bytes:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object")
    names = [f["name"] for f in fields]
    if set(value) != set(names) or len(value) != len(names):
        # eth-account would sign an extra key away silently and a missing one as empty: refuse both.
        extra = sorted(set(value) - set(names))
        missing = [n for n in names if n not in value]
        raise ValueError(f"{where} keys must be exactly {', '.join(names)} (extra: {extra}, missing: {missing})")
    members = ",".join(f"{f['type']} {f['name']}" for f in fields)
    type_string = f"{name}({members})"
    encoded = b"".join(_encode_value(f["type"], value[f["name"]], f"{where}.{f['name']}") for f in fields)
    return keccak(keccak(type_string.encode()) + encoded)


def signing_digest(typed: Mapping[str, Any]) -> bytes:
    """The 32-byte EIP-712 digest (``keccak(0x1901 || domainSeparator || hashStruct(message))``)
    of admin-action typed data. The message's keys and types must be exactly ``AdminAction``'s
    and the domain's a subset of name, version, chainId, verifyingContract, in that order."""
    types = typed.get("types")
    if not isinstance(types, Mapping) or typed.get("primaryType") != PRIMARY_TYPE:
        raise ValueError(f"typed data must have primaryType {PRIMARY_TYPE!r} and its types")
    if list(types.get(PRIMARY_TYPE, [])) != MESSAGE_TYPES or set(types) != {"EIP712Domain", PRIMARY_TYPE}:
        raise ValueError(f"the {PRIMARY_TYPE} type must be exactly {MESSAGE_TYPES} (and EIP712Domain)")
    domain_types = list(types["EIP712Domain"])
    allowed = [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS]
    if [f for f in allowed if f in domain_types] != domain_types:
        raise ValueError("EIP712Domain may only list name, version, chainId, verifyingContract, in that order")
    separator = _hash_struct("EIP712Domain", domain_types, typed.get("domain", {}), "domain")
    message = _hash_struct(PRIMARY_TYPE, MESSAGE_TYPES, typed.get("message", {}), "message")
    return keccak(b"\x19\x01" + separator + message)


def _split_signature(signature: bytes) -> tuple[int, int, int]:
    if len(signature) != 65:
        raise ValueError(f"signature is {len(signature)} bytes, expected 65")
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise ValueError(f"v is {signature[64]}, expected 27 or 28 (or 0 or 1)")
    if not (1 <= r < _SECP256K1_N and 1 <= s < _SECP256K1_N):
        raise ValueError("r or s is outside [1, n-1]")
    return r, s, v


def recover_digest_signer(digest: bytes, signature: bytes, *, low_s: bool = True) -> str:
    """The lower-case 0x address whose key made ``signature`` (65 bytes r||s||v, v in 0, 1,
    27, 28) over the 32-byte ``digest``. ValueError when it cannot be recovered. With
    ``low_s`` (EIP-2, what every wallet produces), an s in the upper half is refused, so a
    signature has exactly one valid encoding."""
    r, s, v = _split_signature(signature)
    if low_s and s > _SECP256K1_N // 2:
        raise ValueError("s is in the upper half of the curve order (EIP-2); sign again with a wallet")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]), digest, hasher=None
        )
    except Exception as exc:  # libsecp256k1 refuses: no point on the curve for this r
        raise ValueError(f"no public key recovers from this signature ({exc})") from None
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


def _private_key(private_key: str | bytes) -> coincurve.PrivateKey:
    try:
        raw = private_key if isinstance(private_key, bytes) else bytes.fromhex(private_key.removeprefix("0x"))
        if len(raw) != 32 or not 1 <= int.from_bytes(raw, "big") < _SECP256K1_N:
            raise ValueError("a private key is 32 bytes, between 1 and the curve order")
        return coincurve.PrivateKey(raw)
    except Exception as exc:
        raise ValueError(f"invalid private key: {exc}") from None


def sign_digest(private_key: str | bytes, digest: bytes) -> bytes:
    """65 bytes r||s||v (v 27 or 28, low s) over a 32-byte digest."""
    sig = _private_key(private_key).sign_recoverable(digest, hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def sign_authorization(
    private_key: str | bytes,
    *,
    domain: SigningDomain,
    action: str,
    guardian_id: str,
    reason: str,
    expires_at: datetime,
    nonce: str,
) -> str:
    """An authorization token ``<nonce>.<expiry unix>.<0x signature>`` signed with
    ``private_key`` (32 bytes, or hex with or without 0x) over the EIP-712 typed data."""
    typed = typed_data(
        domain, action=action, guardian_id=guardian_id, reason=reason, nonce=nonce, expires_at=expires_at
    )
    signature = sign_digest(private_key, signing_digest(typed))
    return f"{nonce}.{typed['message']['expiry']}.0x{signature.hex()}"


def address_of(private_key: str | bytes) -> str:
    """The lower-case 0x address of a private key."""
    public = _private_key(private_key).public_key.format(compressed=False)[1:]
    return "0x" + keccak(public)[-20:].hex()


# --- EIP-191 (runs that started before EIP-712) --------------------------------------------------

LEGACY_HEADER = "governance-fleet admin authorization"


def legacy_message(*, action: str, guardian_id: str, nonce: str, expires_at: datetime, reason: str) -> str:
    """The text EIP-191 tokens signed (``personal_sign``) before admin signatures were EIP-712."""
    _check_fields(action, guardian_id, nonce, reason)
    ts = _unix(_utc(expires_at, "expires_at"))
    iso = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "\n".join(
        [
            LEGACY_HEADER,
            f"action: {action}",
            f"guardian: {guardian_id}",
            f"nonce: {nonce}",
            f"expires: {iso} ({ts})",
            f"reason: {reason}",
        ]
    )


def legacy_digest(message: str) -> bytes:
    body = message.encode("utf-8")
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(body)).encode("ascii") + body)


def _warm_up() -> None:
    """eth-hash picks its keccak backend lazily, on first use. Doing one recovery now, at import
    time, makes that import happen while this module is being imported (passed through the
    workflow sandbox), not later inside a workflow, where the sandbox would refuse it."""
    key = (1).to_bytes(32, "big")  # private key 0x00...01: a well-known throwaway key
    digest = keccak(b"govfleet admin auth self-check")
    if recover_digest_signer(digest, sign_digest(key, digest)) != "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf":
        raise RuntimeError("secp256k1 recovery self-check failed")


_warm_up()


# --- requests and verification ---------------------------------------------------------------


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


# The documented bodies of pause and resume (signal, update and HTTP alike).
_BODY_FIELDS = {"pause": ("reason", "authorization"), "resume": ("authorization", "governance_verified", "reason")}


def parse_admin_body(action: str, body: Any) -> dict[str, Any]:
    """The request body of ``action`` checked field by field, as a dict with every field
    (``reason``, ``authorization`` as a list of tokens, and for a resume
    ``governance_verified``), or AuthorizationError ``malformed`` naming the first problem.
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
    return out


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
) -> list[VerifiedSignature]:
    """Verify authorization tokens for ``action`` on ``guardian_id`` with ``reason``.

    Returns one VerifiedSignature per token (in order) when every token is valid and at least
    ``quorum`` distinct admins signed; raises AuthorizationError otherwise. Deterministic: safe
    to call inside a workflow with ``now=workflow.now()``.
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
        if scheme == "eip712":
            typed = typed_data(
                domain, action=action, guardian_id=guardian_id, reason=reason, nonce=nonce, expires_at=expires_at
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
            raise AuthorizationError(
                "foreign",
                f"{where} (nonce {nonce}) recovers to {signer}, which is not an admin of {guardian_id} "
                f"for this message ({signed_for}action {action!r}, reason {_short(reason, 60)}); a signature "
                "made for another DAO, chain, guardian, action, reason, nonce or expiry, or by another key, "
                "is foreign",
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
