"""Schemathesis hooks, loaded by the `st` CLI through SCHEMATHESIS_HOOKS (see
tests/payment_signing.py, `schemathesis_env`): the generated value of a payment confirmation's
signature header is replaced by a valid signature (PAYMENT_SIGNING_SECRET over exactly the bytes
sent), so generated requests reach the endpoint's validation instead of stopping at the signature
check. Cases without the header are left without it."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import schemathesis

from govfleet.domain.payment_signature import SIGNATURE_HEADER, sign_payment
from tests.payment_signing import PAY_PATH


def _wire_body(case: Any) -> bytes:
    """The body the transport would send for `case`, as bytes."""
    serialized = case.as_transport_kwargs(base_url="http://127.0.0.1")
    if "json" in serialized:
        return json.dumps(serialized["json"]).encode()
    data = serialized.get("data")
    if data is None:
        return b""
    return data if isinstance(data, bytes) else str(data).encode()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    secret = os.environ.get("PAYMENT_SIGNING_SECRET")
    if not secret or case.operation.path != PAY_PATH or case.method.upper() != "POST":
        return
    if SIGNATURE_HEADER not in (case.headers or {}):
        return  # a case testing the missing signature: it must stay missing (and be refused)
    body = _wire_body(case)
    kwargs["data"] = body  # sent as is, so the signature covers exactly these bytes
    case.headers = {**(case.headers or {}), SIGNATURE_HEADER: sign_payment(secret, body, int(time.time()))}
