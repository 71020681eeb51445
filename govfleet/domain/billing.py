"""Billing math and the payment contract (docs/ledger.md): pure, exact, no I/O.

Credits are integers. The revenue share is a decimal fraction; the system tenant's bonus is
`floor(purchased × share)` computed with exact rational arithmetic, so 0.75 of 1,000,000,000
is 750,000,000 whatever the share's digits are. Floats are refused, never rounded.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError

from govfleet.domain.identifiers import Identifier

CREDITS_PER_USD = 10_000_000
CREDITS_PER_CENT = CREDITS_PER_USD // 100  # 100,000
BIGINT_MAX = 2**63 - 1  # PostgreSQL BIGINT
MAX_USD_CENTS = BIGINT_MAX // CREDITS_PER_CENT  # the largest purchase whose credits fit a bigint
DEFAULT_REVENUE_SHARE = Decimal("0.75")
# The per-purchase maximum unless PAYMENT_MAX_USD_CENTS says otherwise: $10,000. See
# docs/ledger.md ("Overflow") for why no sequence of purchases within it can overflow a balance.
DEFAULT_MAX_PURCHASE_USD_CENTS = 1_000_000

# Protocol constants (seeded by migration 0002; same values as govfleet.db).
SYSTEM_TENANT_ID = "cogni_system"
SYSTEM_PRINCIPAL_USER_ID = "cogni_system_principal"

# Ledger reasons (credit_ledger.reason).
# Final: literal types, so SQL composed from them stays a literal to the type checker.
REASON_PURCHASE: Final = "widget_payment"
REASON_REVENUE_SHARE: Final = "platform_revenue_share"
REASON_GOVERNANCE_RUN = "governance_run"


# --- errors -------------------------------------------------------------------------------


class BillingError(ValueError):
    """A billing request that must not be applied; nothing was written."""


class InvalidPayment(BillingError):
    """A payment confirmation whose input is malformed (names the field)."""


class PaymentConflict(BillingError):
    """The payment id was already confirmed with a different user or amount (HTTP 409).

    The message names the caller's own id and nothing of the stored payment: not which field
    differs, not the user, the amount or a balance (each would tell a guesser something)."""

    def __init__(self, client_payment_id: str):
        self.client_payment_id = client_payment_id
        super().__init__(
            f"payment {client_payment_id!r} was already confirmed with a different payload; "
            "a payment id can be confirmed only once"
        )


class PurchaseTooLarge(BillingError):
    """A purchase above the configured per-purchase maximum (HTTP 422); nothing was written."""

    @classmethod
    def of(cls, client_payment_id: str, amount_usd_cents: int, maximum_usd_cents: int) -> PurchaseTooLarge:
        return cls(
            f"payment {client_payment_id!r} refused: amount_usd_cents {amount_usd_cents} is above the "
            f"per-purchase maximum of {maximum_usd_cents} cents ({format_usd(maximum_usd_cents)}; "
            "PAYMENT_MAX_USD_CENTS)"
        )


class LedgerOverflow(BillingError):
    """A credit that would push an amount or a balance past PostgreSQL's bigint."""


class InsufficientCredits(BillingError):
    """A charge larger than the balance; nothing was charged."""

    def __init__(self, account: str, balance: int, amount: int):
        self.account = account
        self.balance = balance
        self.amount = amount
        super().__init__(
            f"insufficient credits: account {account!r} has balance {balance} and cannot be charged {amount}"
        )


class ChargeConflict(BillingError):
    """A charge reference already used with a different amount."""

    def __init__(self, reference: str, reason: str, charged: int, amount: int):
        self.reference = reference
        super().__init__(f"charge {reason}/{reference!r} was already made for {charged} credits, not {amount}")


# --- math ---------------------------------------------------------------------------------


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayment(f"{name} must be an integer, got {value!r}")
    return value


def parse_revenue_share(value: object) -> Decimal:
    """A share as an exact Decimal in [0, 1]. Accepts Decimal, int, or a decimal string; a float
    is refused because it is already rounded (pass "0.75", not 0.75)."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"revenue share {value!r} must be given as a decimal string or Decimal, not a float")
    if isinstance(value, Fraction):
        raise ValueError(f"revenue share {value!r} must be a decimal, not a fraction")
    share: Decimal | None = None
    if isinstance(value, Decimal):
        share = value
    elif isinstance(value, (str, int)):
        try:
            share = Decimal(str(value).strip())
        except InvalidOperation:
            share = None
    if share is None:
        raise ValueError(f"revenue share {value!r} is not a decimal number")
    if not share.is_finite() or not (Decimal(0) <= share <= Decimal(1)):
        raise ValueError(f"revenue share {value!r} must be between 0 and 1 (e.g. 0.75)")
    return share


def usd_cents_to_credits(amount_usd_cents: int) -> int:
    """1 USD = 10,000,000 credits, so 1 cent = 100,000 credits."""
    cents = _require_int("amount_usd_cents", amount_usd_cents)
    if cents <= 0:
        raise InvalidPayment(f"amount_usd_cents must be positive, got {cents}")
    if cents > MAX_USD_CENTS:
        raise LedgerOverflow(
            f"amount_usd_cents {cents} is too large: its credits would overflow a bigint (max {MAX_USD_CENTS} cents)"
        )
    return cents * CREDITS_PER_CENT


def revenue_share_bonus(purchased_credits: int, share: Decimal | str | int) -> int:
    """floor(purchased × share), exactly."""
    purchased = _require_int("purchased_credits", purchased_credits)
    if purchased < 0:
        raise InvalidPayment(f"purchased_credits must not be negative, got {purchased}")
    exact = Fraction(parse_revenue_share(share)) * purchased
    return math.floor(exact)


class PurchasePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_credits: int
    bonus_credits: int


def plan_purchase(amount_usd_cents: int, share: Decimal | str | int) -> PurchasePlan:
    user = usd_cents_to_credits(amount_usd_cents)
    bonus = revenue_share_bonus(user, share)
    # share <= 1 so bonus <= user <= BIGINT_MAX; kept as a guard for the invariant.
    if bonus > BIGINT_MAX:
        raise LedgerOverflow(f"bonus of {bonus} credits would overflow a bigint")
    return PurchasePlan(user_credits=user, bonus_credits=bonus)


def credited_balance(account: str, balance: int, amount: int) -> int:
    """The balance after a credit, refusing a bigint overflow."""
    if amount > BIGINT_MAX - balance:
        raise LedgerOverflow(
            f"crediting {amount} to account {account!r} (balance {balance}) would overflow a bigint (max {BIGINT_MAX})"
        )
    return balance + amount


def charged_balance(account: str, balance: int, amount: int) -> int:
    """The balance after a charge, refusing to go below zero."""
    if amount > balance:
        raise InsufficientCredits(account, balance, amount)
    return balance - amount


def user_account_id(user_id: str) -> str:
    return f"acct_{user_id}"


def format_usd(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def parse_max_purchase(value: object) -> int:
    """A per-purchase maximum in cents: a positive integer whose credits fit a bigint."""
    cents = _require_int("the per-purchase maximum", value)
    if not 0 < cents <= MAX_USD_CENTS:
        raise ValueError(f"the per-purchase maximum must be between 1 and {MAX_USD_CENTS} cents, got {cents}")
    return cents


def min_purchases_to_overflow(max_usd_cents: int, share: Decimal | str | int, *, balance: int = 0) -> int | None:
    """The fewest purchases, each at most `max_usd_cents`, that push the system tenant's balance
    from `balance` past BIGINT_MAX (None: never, the share is 0). Every purchase adds at most the
    bonus of a maximum-size one, so that many maximum-size purchases is the minimum. See
    docs/ledger.md, "Overflow"."""
    bonus = plan_purchase(parse_max_purchase(max_usd_cents), share).bonus_credits
    if bonus == 0:
        return None
    headroom = BIGINT_MAX - balance
    return headroom // bonus + 1  # the first count whose total exceeds the headroom


# --- the payment contract -----------------------------------------------------------------


def _not_system_principal(value: str) -> str:
    if value == SYSTEM_PRINCIPAL_USER_ID:
        raise ValueError(f"user_id {value!r} is the system principal; purchases credit user accounts")
    return value


# Ids are visible ASCII (docs/security.md, "Identifiers"): no two different ids look alike.
ClientPaymentId = Annotated[
    Identifier, Field(strict=True, description="the payment's id, which is its idempotency key")
]
UserId = Annotated[
    Identifier,
    Field(
        strict=True,
        json_schema_extra={"not": {"const": SYSTEM_PRINCIPAL_USER_ID}},
        description="the buyer (never the system principal)",
    ),
    AfterValidator(_not_system_principal),
]


class ConfirmPaymentInput(BaseModel):
    """`POST /api/v1/payments/credits/confirm` body and the payment workflow's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_payment_id: ClientPaymentId
    user_id: UserId
    amount_usd_cents: StrictInt = Field(
        gt=0,
        le=MAX_USD_CENTS,
        description="amount paid, in US cents; at most the server's per-purchase maximum (PAYMENT_MAX_USD_CENTS)",
    )


class ConfirmPaymentResult(BaseModel):
    """What a confirmation did (or, on `replay`, what the first confirmation did)."""

    model_config = ConfigDict(frozen=True)

    client_payment_id: str
    user_id: str
    amount_usd_cents: int
    billing_account_id: str
    user_credits: int
    bonus_credits: int
    user_balance_after: int
    system_balance_after: int
    replay: bool


class ChargeResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    charged: int
    balance_after: int
    replay: bool


def format_input_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e.get("loc", ())) or "input"
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "invalid payment confirmation: " + "; ".join(parts)


def parse_confirm_input(data: object) -> ConfirmPaymentInput:
    """A confirmation request (a model or a JSON body); InvalidPayment names every field that is wrong."""
    if isinstance(data, ConfirmPaymentInput):
        return data
    try:
        return ConfirmPaymentInput.model_validate(data)
    except ValidationError as err:
        raise InvalidPayment(format_input_error(err)) from None
