"""Signing payment confirmations in tests, the way the payment backend does (docs/ledger.md,
"Authentication"): one test secret, headers for a body, and what the schemathesis CLI needs to
sign the requests it generates (`schemathesis_env`, which loads tests/schemathesis_hooks.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from govfleet.domain.payment_signature import SIGNATURE_HEADER, sign_payment

REPO_ROOT = Path(__file__).resolve().parent.parent

PAY_PATH = "/api/v1/payments/credits/confirm"
TEST_SECRET = "test-payment-signing-secret-0123456789"  # test-only; real ones come from the environment
PREVIOUS_SECRET = "test-previous-signing-secret-9876543210"


def signing_environ(secret: str = TEST_SECRET) -> dict[str, str]:
    """The server settings that make it accept confirmations signed with `secret`."""
    return {"PAYMENT_SIGNING_SECRET": secret}


def body_bytes(payment: dict[str, Any]) -> bytes:
    return json.dumps(payment, separators=(",", ":")).encode()


def signed_headers(body: bytes, secret: str = TEST_SECRET, *, at: int | None = None) -> dict[str, str]:
    """Content type and signature headers for `body`, signed at `at` (default: now)."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_payment(secret, body, int(time.time()) if at is None else at),
    }


def signed(payment: dict[str, Any], secret: str = TEST_SECRET, **kw: Any) -> dict[str, Any]:
    """`httpx` keyword arguments for a signed POST of `payment`: `http.post(PAY_PATH, **signed(p))`."""
    body = body_bytes(payment)
    return {"content": body, "headers": signed_headers(body, secret, **kw)}


def schemathesis_env(secret: str = TEST_SECRET) -> dict[str, str]:
    """Environment for the `st` process: its `before_call` hook signs every payment confirmation
    over the exact bytes it sends (the server must be configured with the same secret)."""
    return {
        "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
        "PYTHONPATH": str(REPO_ROOT),
        "PAYMENT_SIGNING_SECRET": secret,
    }
