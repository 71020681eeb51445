"""What an admin signs: the EIP-712 typed data of an admin action, its digest, signing with a key
and recovering the signer (see docs/admin-actions.md for the typed data a wallet shows).

An admin authorizes one action by signing, with an Ethereum wallet's ``eth_signTypedData_v4``
(EIP-712), this typed data (:func:`typed_data`)::

    domain:  EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)
             name, version, chainId, verifyingContract from repo-spec ``cogni_dao``
    message: AdminAction(string action, string guardianId, string reason, string nonce, uint256 expiry)
       or:   GovernanceResume(string action, string guardianId, string reason, string nonce,
                              uint256 expiry, string approval, string approvalUrl)

so that the wallet shows the signer the DAO, the chain, the contract, the action, the guardian,
the reason, the expiry — and for a resume after an emergency pause the DAO's decision (a proposal
id or transaction hash, and where to read it) — and a signature made for one DAO, chain,
contract, guardian or decision is refused by any other (it recovers to another address).

Pure and deterministic, and importable inside Temporal's workflow sandbox: the EIP-712 hashing
is written here against keccak (checked against eth-account's ``encode_typed_data`` by the
tests) and recovery uses libsecp256k1 through coincurve, about 0.1 ms per signature.

Runs of the guardian that started before EIP-712 verified EIP-191 (``personal_sign``) tokens
over a text message (``legacy_message``); they keep that verification while they are replayed
(docs/patches.md, ``guardian-admin-eip712``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import coincurve
from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, field_validator

# The actions an admin signs: pause, resume, and the completion of the forensic audit required
# after an emergency pause (its ``reason`` is the reference to the report).
ACTIONS = ("pause", "resume", "complete_forensic_audit")
SIGNING_VERSION = "1"
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

PRIMARY_TYPE = "AdminAction"
MESSAGE_TYPES = [
    {"name": "action", "type": "string"},
    {"name": "guardianId", "type": "string"},
    {"name": "reason", "type": "string"},
    {"name": "nonce", "type": "string"},
    {"name": "expiry", "type": "uint256"},
]
APPROVAL_TYPE = "GovernanceResume"
APPROVAL_MESSAGE_TYPES = [
    *MESSAGE_TYPES,
    {"name": "approval", "type": "string"},
    {"name": "approvalUrl", "type": "string"},
]
_MESSAGE_TYPES_BY_PRIMARY = {PRIMARY_TYPE: MESSAGE_TYPES, APPROVAL_TYPE: APPROVAL_MESSAGE_TYPES}
_DOMAIN_FIELDS = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
]
MAX_APPROVAL_REFERENCE = 200
MAX_APPROVAL_URL = 500
_URL_RE = re.compile(r"^https?://[^\s]+$")


class GovernanceApproval(BaseModel):
    """The DAO's decision that allows a resume after an emergency pause, signed into the resume
    by the quorum: the proposal id or the transaction hash that carried it, and its URL."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    reference: str
    url: str

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str) -> str:
        if not v.strip() or len(v) > MAX_APPROVAL_REFERENCE or not v.isprintable():
            raise ValueError(
                f"reference must be 1 to {MAX_APPROVAL_REFERENCE} printable characters "
                "(a proposal id or a transaction hash)"
            )
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if len(v) > MAX_APPROVAL_URL or not _URL_RE.match(v):
            raise ValueError(f"url must be an http(s) URL of at most {MAX_APPROVAL_URL} characters")
        return v


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
        if v is not None and not ADDRESS_RE.match(v):
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


def as_utc(dt: datetime, name: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. workflow.now()), got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def unix_seconds(dt: datetime) -> int:
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


def typed_data(
    domain: SigningDomain,
    *,
    action: str,
    guardian_id: str,
    reason: str,
    nonce: str,
    expires_at: datetime,
    approval: GovernanceApproval | None = None,
) -> dict[str, Any]:
    """The complete EIP-712 typed data of one admin action, as a wallet's
    ``eth_signTypedData_v4`` takes it (the expiry in whole Unix seconds). With ``approval`` (a
    resume only), the message is a ``GovernanceResume``: the action's fields and the DAO's
    decision (``approval``, ``approvalUrl``), so the wallet shows which decision is signed."""
    _check_fields(action, guardian_id, nonce, reason)
    domain_types, domain_value = domain.eip712()
    message: dict[str, Any] = {
        "action": action,
        "guardianId": guardian_id,
        "reason": reason,
        "nonce": nonce,
        "expiry": unix_seconds(as_utc(expires_at, "expires_at")),
    }
    primary, fields = PRIMARY_TYPE, MESSAGE_TYPES
    if approval is not None:
        if action != "resume":
            raise ValueError(f"a governance approval is signed into a resume only, not a {action}")
        primary, fields = APPROVAL_TYPE, APPROVAL_MESSAGE_TYPES
        message |= {"approval": approval.reference, "approvalUrl": approval.url}
    return {
        "types": {"EIP712Domain": domain_types, primary: fields},
        "primaryType": primary,
        "domain": domain_value,
        "message": message,
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
        if not isinstance(value, str) or not ADDRESS_RE.match(value):
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
    (or ``GovernanceResume``'s) and the domain's a subset of name, version, chainId,
    verifyingContract, in that order."""
    types = typed.get("types")
    primary = typed.get("primaryType")
    if not isinstance(types, Mapping) or primary not in _MESSAGE_TYPES_BY_PRIMARY:
        raise ValueError(f"typed data must have primaryType {PRIMARY_TYPE!r} or {APPROVAL_TYPE!r} and its types")
    fields = _MESSAGE_TYPES_BY_PRIMARY[primary]
    if list(types.get(primary, [])) != fields or set(types) != {"EIP712Domain", primary}:
        raise ValueError(f"the {primary} type must be exactly {fields} (and EIP712Domain)")
    domain_types = list(types["EIP712Domain"])
    allowed = [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS]
    if [f for f in allowed if f in domain_types] != domain_types:
        raise ValueError("EIP712Domain may only list name, version, chainId, verifyingContract, in that order")
    separator = _hash_struct("EIP712Domain", domain_types, typed.get("domain", {}), "domain")
    message = _hash_struct(primary, fields, typed.get("message", {}), "message")
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
    approval: GovernanceApproval | None = None,
) -> str:
    """An authorization token ``<nonce>.<expiry unix>.<0x signature>`` signed with
    ``private_key`` (32 bytes, or hex with or without 0x) over the EIP-712 typed data."""
    typed = typed_data(
        domain,
        action=action,
        guardian_id=guardian_id,
        reason=reason,
        nonce=nonce,
        expires_at=expires_at,
        approval=approval,
    )
    signature = sign_digest(private_key, signing_digest(typed))
    return f"{nonce}.{typed['message']['expiry']}.0x{signature.hex()}"


def address_of(private_key: str | bytes) -> str:
    """The lower-case 0x address of a private key."""
    public = _private_key(private_key).public_key.format(compressed=False)[1:]
    return "0x" + keccak(public)[-20:].hex()


# Runs that started before EIP-712 (EIP-191 text messages).

LEGACY_HEADER = "governance-fleet admin authorization"


def legacy_message(*, action: str, guardian_id: str, nonce: str, expires_at: datetime, reason: str) -> str:
    """The text EIP-191 tokens signed (``personal_sign``) before admin signatures were EIP-712."""
    _check_fields(action, guardian_id, nonce, reason)
    ts = unix_seconds(as_utc(expires_at, "expires_at"))
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
