"""Billing math: exact integer credits, exact revenue share, validation that names what is wrong."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from govfleet.domain.billing import (
    BIGINT_MAX,
    CREDITS_PER_USD,
    MAX_USD_CENTS,
    ConfirmPaymentInput,
    InsufficientCredits,
    InvalidPayment,
    LedgerOverflow,
    charged_balance,
    credited_balance,
    parse_revenue_share,
    plan_purchase,
    revenue_share_bonus,
    usd_cents_to_credits,
)
from govfleet.settings import ConfigError, load_settings

cents = st.integers(min_value=1, max_value=MAX_USD_CENTS)
# Any decimal in [0, 1] with up to 28 fractional digits, given as a string as an operator would.
shares = st.decimals(min_value=0, max_value=1, places=None, allow_nan=False, allow_infinity=False).filter(
    lambda d: d.as_tuple().exponent >= -28
)


def test_a_hundred_dollars_buys_a_billion_credits_and_a_750_million_bonus():
    plan = plan_purchase(10_000, Decimal("0.75"))
    assert plan.user_credits == 1_000_000_000
    assert plan.bonus_credits == 750_000_000
    assert CREDITS_PER_USD == 10_000_000


def test_float_rounding_would_be_wrong_and_is_not_used():
    # 0.29 * 100 == 28.999999999999996 in binary floating point.
    assert math.floor(0.29 * 100) == 28
    assert revenue_share_bonus(100, "0.29") == 29
    assert revenue_share_bonus(1_000_000_000, "0.1") == 100_000_000
    assert revenue_share_bonus(BIGINT_MAX, "1") == BIGINT_MAX
    assert revenue_share_bonus(BIGINT_MAX, "0.75") == (BIGINT_MAX * 3) // 4


@given(cents)
def test_cents_to_credits_is_exact_and_fits_a_bigint(amount: int):
    credits = usd_cents_to_credits(amount)
    assert credits == amount * 100_000
    assert 0 < credits <= BIGINT_MAX


@given(st.integers(min_value=0, max_value=BIGINT_MAX), shares)
def test_bonus_is_the_exact_floor(purchased: int, share: Decimal):
    bonus = revenue_share_bonus(purchased, str(share))
    exact = Fraction(share) * purchased
    # floor, checked without calling floor: bonus <= exact < bonus + 1
    assert bonus <= exact < bonus + 1
    assert 0 <= bonus <= purchased
    assert revenue_share_bonus(purchased, share) == bonus  # Decimal and string agree


@given(cents, shares)
def test_plan_is_monotonic_in_amount_and_share(amount: int, share: Decimal):
    plan = plan_purchase(amount, share)
    if amount < MAX_USD_CENTS:
        assert plan_purchase(amount + 1, share).bonus_credits >= plan.bonus_credits
    assert plan_purchase(amount, Decimal(1)).bonus_credits >= plan.bonus_credits
    assert plan_purchase(amount, Decimal(0)).bonus_credits == 0


@pytest.mark.parametrize("bad", ["-0.01", "1.01", "NaN", "Infinity", "abc", "", -1, 2])
def test_revenue_share_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match="revenue share"):
        parse_revenue_share(bad)


def test_a_float_share_is_refused_not_rounded():
    with pytest.raises(ValueError, match="not a float"):
        parse_revenue_share(0.75)


@pytest.mark.parametrize(
    "value, ok",
    [("0", True), ("1", True), ("0.75", True), ("1.0001", False), ("-1", False), ("nan", False), ("seventy", False)],
)
def test_settings_validate_the_share_at_start_up(value, ok):
    if ok:
        assert Decimal(value) == load_settings({"SYSTEM_TENANT_REVENUE_SHARE": value}).SYSTEM_TENANT_REVENUE_SHARE
    else:
        with pytest.raises(ConfigError, match="SYSTEM_TENANT_REVENUE_SHARE"):
            load_settings({"SYSTEM_TENANT_REVENUE_SHARE": value})


def test_default_share_is_three_quarters():
    assert Decimal("0.75") == load_settings({}).SYSTEM_TENANT_REVENUE_SHARE


@pytest.mark.parametrize("amount", [0, -5])
def test_non_positive_amount_is_refused(amount):
    with pytest.raises(InvalidPayment, match="amount_usd_cents must be positive"):
        usd_cents_to_credits(amount)


@pytest.mark.parametrize("amount", [True, 1.5, "100", None])
def test_non_integer_amount_is_refused(amount):
    with pytest.raises(InvalidPayment, match="amount_usd_cents must be an integer"):
        usd_cents_to_credits(amount)


def test_amount_that_would_overflow_a_bigint_is_refused():
    assert usd_cents_to_credits(MAX_USD_CENTS) <= BIGINT_MAX
    with pytest.raises(LedgerOverflow, match="overflow a bigint"):
        usd_cents_to_credits(MAX_USD_CENTS + 1)


@given(st.integers(min_value=0, max_value=BIGINT_MAX), st.integers(min_value=1, max_value=BIGINT_MAX))
def test_credit_never_passes_bigint(balance: int, amount: int):
    if balance + amount <= BIGINT_MAX:
        assert credited_balance("a", balance, amount) == balance + amount
    else:
        with pytest.raises(LedgerOverflow, match="would overflow"):
            credited_balance("a", balance, amount)


@given(st.integers(min_value=0, max_value=BIGINT_MAX), st.integers(min_value=1, max_value=BIGINT_MAX))
def test_charge_never_goes_below_zero(balance: int, amount: int):
    if amount <= balance:
        assert charged_balance("cogni_system", balance, amount) == balance - amount
    else:
        with pytest.raises(InsufficientCredits) as info:
            charged_balance("cogni_system", balance, amount)
        assert info.value.balance == balance and info.value.amount == amount
        assert f"balance {balance}" in str(info.value) and str(amount) in str(info.value)
        assert "insufficient credits" in str(info.value)


def test_confirm_input_accepts_a_good_payload():
    p = ConfirmPaymentInput.model_validate({"client_payment_id": "pay_1", "user_id": "u1", "amount_usd_cents": 10_000})
    assert p.amount_usd_cents == 10_000


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": "", "user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": "   ", "user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": " p", "user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": "p\n", "user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": "p" * 201, "user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": 7, "user_id": "u1", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": "p", "user_id": "", "amount_usd_cents": 1}, "user_id"),
        ({"client_payment_id": "p", "user_id": "cogni_system_principal", "amount_usd_cents": 1}, "user_id"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": 0}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": -100}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": 1.5}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": "100"}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": True}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": MAX_USD_CENTS + 1}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u1", "amount_usd_cents": 1, "extra": 1}, "extra"),
    ],
)
def test_confirm_input_names_the_bad_field(payload, field):
    with pytest.raises(ValidationError) as info:
        ConfirmPaymentInput.model_validate(payload)
    assert field in {str(loc) for e in info.value.errors() for loc in e["loc"]}


@pytest.mark.parametrize("text, cents", [("100", 10_000), ("12.34", 1_234), ("$5", 500), ("0.01", 1), ("7.50", 750)])
def test_cli_dollars_to_cents(text, cents):
    from govfleet.commands.ledger import usd_to_cents

    assert usd_to_cents(text) == cents


@pytest.mark.parametrize(
    "text, message",
    [
        ("1.234", "whole number of cents"),
        ("abc", "not a number"),
        ("NaN", "whole number of cents"),
        ("Infinity", "whole number of cents"),
    ],
)
def test_cli_dollars_refuses_what_is_not_cents(text, message):
    from govfleet.commands.ledger import usd_to_cents

    with pytest.raises(ValueError, match=message):
        usd_to_cents(text)
