"""Payment confirmation signatures: Stripe-style header, tolerance window, rotation, constant-time."""

from __future__ import annotations

import pytest

from govfleet.domain.payment_signature import (
    PaymentSignatureError,
    parse_signature_header,
    sign_payment,
    verify_payment,
)

BODY = b'{"client_payment_id":"p-1","user_id":"alice","amount_usd_cents":1000}'
NOW = 1_800_000_000


def test_a_signed_body_verifies_and_returns_its_timestamp():
    header = sign_payment("s3cret", BODY, NOW - 10)
    assert header.startswith(f"t={NOW - 10},v1=")
    assert verify_payment(header, BODY, ["s3cret"], now=NOW) == NOW - 10


@pytest.mark.parametrize(
    ("header", "body", "secrets", "now", "code"),
    [
        (None, BODY, ["s3cret"], NOW, "missing"),
        ("", BODY, ["s3cret"], NOW, "missing"),
        ("v1=abc", BODY, ["s3cret"], NOW, "malformed"),
        ("t=abc,v1=abc", BODY, ["s3cret"], NOW, "malformed"),
        ("t=1,v1", BODY, ["s3cret"], NOW, "malformed"),
        ("t=" + "1" * 2000, BODY, ["s3cret"], NOW, "malformed"),
        (sign_payment("s3cret", BODY, NOW - 301), BODY, ["s3cret"], NOW, "expired"),
        (sign_payment("s3cret", BODY, NOW + 301), BODY, ["s3cret"], NOW, "expired"),
        (sign_payment("other", BODY, NOW), BODY, ["s3cret"], NOW, "mismatch"),
        (sign_payment("s3cret", BODY, NOW), BODY + b" ", ["s3cret"], NOW, "mismatch"),
        (sign_payment("s3cret", BODY, NOW), BODY, [], NOW, "not_configured"),
        (sign_payment("s3cret", BODY, NOW), BODY, [""], NOW, "not_configured"),
    ],
)
def test_untrustworthy_signatures_are_refused_with_a_code(header, body, secrets, now, code):
    with pytest.raises(PaymentSignatureError) as err:
        verify_payment(header, body, secrets, now=now)
    assert err.value.code == code


def test_the_timestamp_is_signed_too():
    t, (sig,) = parse_signature_header(sign_payment("s3cret", BODY, NOW))
    with pytest.raises(PaymentSignatureError, match="does not match"):
        verify_payment(f"t={t + 1},v1={sig}", BODY, ["s3cret"], now=NOW)


def test_two_secrets_during_rotation_and_several_signatures_in_one_header():
    old, new = sign_payment("old", BODY, NOW), sign_payment("new", BODY, NOW)
    assert verify_payment(old, BODY, ["new", "old"], now=NOW) == NOW
    assert verify_payment(new, BODY, ["new", "old"], now=NOW) == NOW
    both = f"t={NOW},v1={old.split('v1=')[1]},v1={new.split('v1=')[1]}"
    assert verify_payment(both, BODY, ["new"], now=NOW) == NOW
    with pytest.raises(PaymentSignatureError):
        verify_payment(old, BODY, ["new"], now=NOW)
