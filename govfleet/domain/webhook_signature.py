"""HMAC signatures of outgoing notification webhooks. Pure.

The generic webhook (repo-spec ``guardian.notifications.webhook``) is a POST of a JSON
body with these headers:

- ``X-Govfleet-Idempotency-Key``: the notification's idempotency key; a receiver that
  has seen it already must ignore the request (deliveries are at least once);
- ``X-Govfleet-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the
  shared secret. Receivers check it with :func:`verify_signature` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "X-Govfleet-Signature"
IDEMPOTENCY_HEADER = "X-Govfleet-Idempotency-Key"
PREFIX = "sha256="


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("webhook secret must not be empty")
    return key


def canonical_body(payload: dict[str, Any]) -> bytes:
    """The body bytes sent: compact JSON with sorted keys, UTF-8 (the same for every
    retry of one notification)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def sign_body(secret: str | bytes, body: bytes) -> str:
    """The ``X-Govfleet-Signature`` header value for ``body``."""
    return PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret``."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign_body(secret, body), header.strip())
