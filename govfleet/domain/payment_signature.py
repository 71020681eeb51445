"""Signatures of payment confirmations (see docs/ledger.md, "Authentication").

The payment backend signs every confirmation it sends, the way payment providers sign their
webhooks: header ``Govfleet-Payment-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 over ``"<t>." + raw body`` with a shared secret. The receiver accepts the request
when the timestamp is within the tolerance window and any ``v1`` matches any configured secret
(two secrets are configured while one is being rotated). Comparison is constant-time. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "Govfleet-Payment-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 1024


class PaymentSignatureError(ValueError):
    """A confirmation whose signature must not be trusted. ``code`` is one of: missing,
    malformed, expired, mismatch, not_configured."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    if not secret:
        raise PaymentSignatureError("not_configured", "the payment signing secret is empty")
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_payment(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` signed at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},{SCHEME}={_digest(secret, timestamp, body)}"


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """``(timestamp, [v1 signatures])`` of a header value; PaymentSignatureError when malformed."""
    if len(header) > MAX_HEADER_LENGTH:
        raise PaymentSignatureError("malformed", f"{SIGNATURE_HEADER} is longer than {MAX_HEADER_LENGTH} characters")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise PaymentSignatureError("malformed", f"{SIGNATURE_HEADER} must look like t=<unix seconds>,v1=<hex>")
        if key == "t":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise PaymentSignatureError("malformed", f"{SIGNATURE_HEADER}: t must be unix seconds")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise PaymentSignatureError("malformed", f"{SIGNATURE_HEADER} needs t=<unix seconds> and {SCHEME}=<hex>")
    return timestamp, signatures


def verify_payment(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """The signed timestamp when ``header`` is a valid signature of ``body``, else PaymentSignatureError."""
    usable = [s for s in secrets if s]
    if not usable:
        raise PaymentSignatureError("not_configured", "no payment signing secret is configured on this server")
    if not header:
        raise PaymentSignatureError("missing", f"the request has no {SIGNATURE_HEADER} header")
    timestamp, signatures = parse_signature_header(header)
    if abs(now - timestamp) > tolerance_seconds:
        raise PaymentSignatureError(
            "expired",
            f"the signature's timestamp is {abs(now - timestamp)} s away from now (tolerance {tolerance_seconds} s)",
        )
    expected = [_digest(secret, timestamp, body) for secret in usable]
    matched = False
    for given in signatures:
        for want in expected:  # every comparison runs: no early exit that times the secret count
            matched |= hmac.compare_digest(given.encode(), want.encode())
    if not matched:
        raise PaymentSignatureError("mismatch", "the signature does not match the body under any configured secret")
    return timestamp
