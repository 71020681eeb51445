"""docs/ledger.md states figures the code computes: the overflow bound of the default per-purchase
maximum and the signature of its signing example. Changing either without the other fails here."""

from __future__ import annotations

import re
from decimal import Decimal

from govfleet.domain.billing import (
    BIGINT_MAX,
    CREDITS_PER_CENT,
    DEFAULT_MAX_PURCHASE_USD_CENTS,
    DEFAULT_REVENUE_SHARE,
    min_purchases_to_overflow,
    plan_purchase,
)
from govfleet.domain.payment_signature import sign_payment
from govfleet.settings import load_settings
from tests.conftest import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
PROSE = " ".join(DOC.split())  # line breaks in paragraphs do not matter


def test_the_default_maximum_is_ten_thousand_dollars_and_documented():
    assert load_settings({}).PAYMENT_MAX_USD_CENTS == DEFAULT_MAX_PURCHASE_USD_CENTS == 1_000_000
    assert "default **1,000,000 cents = $10,000**" in PROSE


def test_the_overflow_bound_in_the_doc_is_the_computed_one():
    worst = min_purchases_to_overflow(DEFAULT_MAX_PURCHASE_USD_CENTS, Decimal(1))
    usual = min_purchases_to_overflow(DEFAULT_MAX_PURCHASE_USD_CENTS, DEFAULT_REVENUE_SHARE)
    assert (worst, usual) == (92_233_721, 122_978_294) and worst is not None
    assert f"**{worst:,} purchases**" in PROSE and f"**{usual:,} purchases**" in PROSE
    assert f"**${worst * DEFAULT_MAX_PURCHASE_USD_CENTS // 100:,}**" in PROSE


def test_the_bound_is_tight():
    """`n - 1` maximum-size purchases still fit; the `n`-th would overflow."""
    for share in (Decimal(1), DEFAULT_REVENUE_SHARE, Decimal("0.01")):
        n = min_purchases_to_overflow(DEFAULT_MAX_PURCHASE_USD_CENTS, share)
        bonus = plan_purchase(DEFAULT_MAX_PURCHASE_USD_CENTS, share).bonus_credits
        assert n is not None and (n - 1) * bonus <= BIGINT_MAX < n * bonus
    assert min_purchases_to_overflow(DEFAULT_MAX_PURCHASE_USD_CENTS, Decimal(0)) is None
    # From a balance near the limit, fewer are needed: exactly reaching the limit is no overflow.
    assert min_purchases_to_overflow(1, Decimal(1), balance=BIGINT_MAX - CREDITS_PER_CENT) == 2
    assert min_purchases_to_overflow(1, Decimal(1), balance=BIGINT_MAX - CREDITS_PER_CENT + 1) == 1


def test_the_documented_signing_example_gives_the_documented_signature():
    body = re.search(r"^body='(.*)'$", DOC, re.MULTILINE)
    secret = re.search(r'-hmac "([^"]+)"', DOC)
    timestamp = re.search(r"^t=(\d+)", DOC, re.MULTILINE)
    assert body and secret and timestamp
    header = sign_payment(secret.group(1), body.group(1).encode(), int(timestamp.group(1)))
    assert f"# sig = {header.split('v1=')[1]}" in DOC
