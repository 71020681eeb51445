"""The credit ledger's transaction code (psycopg 3): confirm a purchase, charge the system
tenant, verify the balance invariant.

(About 500 lines, mostly SQL: the three writers share the row-locking order described below,
which is easier to keep right in one file.)

A confirmation is ONE SQL statement, so one transaction on one connection and one round trip:
it creates or credits the user's account (locking that row first), then credits `cogni_system`
(locking the hot row last), then writes the payment row and both ledger entries with their
balance_after. Every writer takes the rows in that order, so concurrent purchases never deadlock,
and the hot row's lock is held only while the server finishes the statement, never across a
round trip to this process.

`payments.client_payment_id` is the idempotency key: a replay of a committed confirmation reads
the first result back without locking or writing; a racing one hits the primary key, its
statement is rolled back whole, and it then reads the winner's result (or, with a different user
or amount, raises `PaymentConflict`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Final, LiteralString

import psycopg
from psycopg import errors as pg_errors
from pydantic import BaseModel

from govfleet.db import DbConnection, DbPool
from govfleet.domain.billing import (
    BIGINT_MAX,
    REASON_GOVERNANCE_RUN,
    REASON_PURCHASE,
    REASON_REVENUE_SHARE,
    SYSTEM_TENANT_ID,
    ChargeConflict,
    ChargeResult,
    ConfirmPaymentInput,
    ConfirmPaymentResult,
    LedgerOverflow,
    PaymentConflict,
    PurchaseTooLarge,
    charged_balance,
    credited_balance,
    parse_confirm_input,
    parse_revenue_share,
    plan_purchase,
    user_account_id,
)


class LedgerUnavailable(RuntimeError):
    """The ledger cannot accept writes (e.g. the system tenant row is missing): an operator problem,
    not bad input. Retrying may help once it is fixed."""


_ASSERT_PREFIX: Final = "ledger_assert: "
FIRST_PURCHASE_RACE = {"billing_accounts_pkey", "billing_accounts_owner_uidx", "users_pkey"}
FIRST_PURCHASE_ATTEMPTS = 3


def _confirm_statement(with_bonus: bool) -> LiteralString:
    """The whole purchase as ONE statement (hence one transaction, one round trip).

    CTE order is forced by data dependencies: pre (is the id already confirmed?) -> usr (creates
    or credits the user's account, locking its row) -> sys (credits cogni_system, locking the hot
    row last; its WHERE needs usr) -> pay -> led. A committed replay writes and locks nothing and
    gets the first result back in `existing`. Every failure raises (bigint overflow, a racing
    duplicate id on the primary key, the final assertion), which aborts the whole statement.
    With a share of 0 the system-tenant row is only read, never locked, and no bonus entry is written.
    """
    if with_bonus:
        sys_cte = f"""
    UPDATE billing_accounts SET balance_credits = balance_credits + %(bonus)s, updated_at = now()
    WHERE id = '{SYSTEM_TENANT_ID}' AND is_system_tenant AND EXISTS (SELECT 1 FROM usr)
    RETURNING balance_credits"""
        bonus_entry = f"""
    UNION ALL
    SELECT '{SYSTEM_TENANT_ID}', %(bonus)s, system_balance_after, '{REASON_REVENUE_SHARE}', %(pid)s, %(meta)s::jsonb
    FROM pay"""
        entries = "2"
    else:
        sys_cte = f"""
    SELECT balance_credits FROM billing_accounts WHERE id = '{SYSTEM_TENANT_ID}' AND is_system_tenant"""
        bonus_entry = ""
        entries = "1"
    return f"""
WITH pre AS (
    SELECT client_payment_id, user_id, billing_account_id, amount_usd_cents, user_credits, bonus_credits,
           user_balance_after, system_balance_after, confirmed_by
    FROM payments WHERE client_payment_id = %(pid)s
), u AS (
    INSERT INTO users (id) SELECT %(uid)s WHERE NOT EXISTS (SELECT 1 FROM pre)
    ON CONFLICT DO NOTHING
), usr AS (
    INSERT INTO billing_accounts AS a (id, owner_user_id, balance_credits)
    SELECT %(acct)s, %(uid)s, %(credits)s WHERE NOT EXISTS (SELECT 1 FROM pre)
    ON CONFLICT (owner_user_id) DO UPDATE
        SET balance_credits = a.balance_credits + EXCLUDED.balance_credits, updated_at = now()
    RETURNING a.id, a.balance_credits
), sys AS ({sys_cte}
), pay AS (
    INSERT INTO payments (client_payment_id, user_id, billing_account_id, amount_usd_cents, user_credits,
                          bonus_credits, revenue_share, user_balance_after, system_balance_after, confirmed_by)
    SELECT %(pid)s, %(uid)s, usr.id, %(cents)s, %(credits)s, %(bonus)s, %(share)s,
           usr.balance_credits, sys.balance_credits, %(by)s
    FROM usr, sys
    RETURNING billing_account_id, user_balance_after, system_balance_after
), led AS (
    INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference, metadata)
    SELECT billing_account_id, %(credits)s, user_balance_after, '{REASON_PURCHASE}', %(pid)s, %(meta)s::jsonb
    FROM pay{bonus_entry}
    RETURNING 1
)
SELECT ledger_assert(EXISTS (SELECT 1 FROM pre) OR (SELECT count(*) FROM led) = {entries},
                     '{_ASSERT_PREFIX}' || CASE WHEN NOT EXISTS (SELECT 1 FROM usr) THEN 'no billing account'
                                                ELSE 'no system tenant' END) AS ok,
       pay.billing_account_id, pay.user_balance_after, pay.system_balance_after,
       (SELECT to_jsonb(pre) FROM pre) AS existing
FROM (SELECT 1) AS one LEFT JOIN pay ON true
"""


_CONFIRM_WITH_BONUS = _confirm_statement(with_bonus=True)
_CONFIRM_NO_BONUS = _confirm_statement(with_bonus=False)

_FIND_PAYMENT = """
SELECT client_payment_id, user_id, billing_account_id, amount_usd_cents, user_credits, bonus_credits,
       user_balance_after, system_balance_after, confirmed_by
FROM payments WHERE client_payment_id = %s
"""


def _result_from_row(row: dict[str, Any], *, replay: bool) -> ConfirmPaymentResult:
    return ConfirmPaymentResult(
        client_payment_id=row["client_payment_id"],
        user_id=row["user_id"],
        amount_usd_cents=row["amount_usd_cents"],
        billing_account_id=row["billing_account_id"],
        user_credits=row["user_credits"],
        bonus_credits=row["bonus_credits"],
        user_balance_after=row["user_balance_after"],
        system_balance_after=row["system_balance_after"],
        replay=replay,
    )


def _replay_or_conflict(
    row: dict[str, Any], request: ConfirmPaymentInput, confirmed_by: str | None
) -> ConfirmPaymentResult:
    if row["user_id"] != request.user_id or row["amount_usd_cents"] != request.amount_usd_cents:
        raise PaymentConflict(request.client_payment_id)  # says nothing about the stored payment
    # The same caller (e.g. a retried activity of the same workflow run) whose earlier attempt
    # committed: that write was this confirmation, not an earlier one.
    own = confirmed_by is not None and row["confirmed_by"] == confirmed_by
    return _result_from_row(row, replay=not own)


async def _find_payment(conn: DbConnection, client_payment_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(_FIND_PAYMENT, (client_payment_id,))
    return await cur.fetchone()


async def _explain_overflow(
    conn: DbConnection, request: ConfirmPaymentInput, credits: int, bonus: int
) -> LedgerOverflow:
    cur = await conn.execute(
        "SELECT id, balance_credits FROM billing_accounts WHERE owner_user_id = %s OR id = %s",
        (request.user_id, SYSTEM_TENANT_ID),
    )
    for row in await cur.fetchall():
        amount = bonus if row["id"] == SYSTEM_TENANT_ID else credits
        try:
            credited_balance(row["id"], row["balance_credits"], amount)
        except LedgerOverflow as exc:
            return LedgerOverflow(f"payment {request.client_payment_id!r} refused: {exc}")
    return LedgerOverflow(f"payment {request.client_payment_id!r} refused: a balance would overflow a bigint")


async def confirm_payment(
    pool: DbPool,
    request: ConfirmPaymentInput | dict[str, Any],
    *,
    share: Decimal | str,
    max_usd_cents: int | None = None,
    confirmed_by: str | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> ConfirmPaymentResult:
    """Credit the user the purchased credits and `cogni_system` its bonus, once per payment id.

    Raises InvalidPayment (bad input), PaymentConflict (id reused with another user/amount),
    PurchaseTooLarge (above `max_usd_cents`), LedgerOverflow (a balance would pass a bigint),
    LedgerUnavailable (no system tenant). `before_commit` is a fault-injection point: when given,
    it runs inside the transaction after every write and before COMMIT (and the COMMIT is then a
    separate round trip).
    """
    request = parse_confirm_input(request)
    share = parse_revenue_share(share)
    if max_usd_cents is not None and request.amount_usd_cents > max_usd_cents:
        # Refused as new; a payment committed before the maximum was lowered still replays.
        async with pool.connection() as conn:
            existing = await _find_payment(conn, request.client_payment_id)
        if existing is not None:
            return _replay_or_conflict(existing, request, confirmed_by)
        raise PurchaseTooLarge.of(request.client_payment_id, request.amount_usd_cents, max_usd_cents)
    plan = plan_purchase(request.amount_usd_cents, share)
    params = {
        "pid": request.client_payment_id,
        "uid": request.user_id,
        "acct": user_account_id(request.user_id),
        "cents": request.amount_usd_cents,
        "credits": plan.user_credits,
        "bonus": plan.bonus_credits,
        "share": share,
        "by": confirmed_by,
        "meta": json.dumps({"amount_usd_cents": request.amount_usd_cents, "revenue_share": str(share)}),
    }
    statement = _CONFIRM_WITH_BONUS if plan.bonus_credits > 0 else _CONFIRM_NO_BONUS

    async with pool.connection() as conn:
        # In autocommit mode the single statement is its own transaction: one round trip, and
        # the hot row's lock is held only while the server finishes the statement and commits.
        await conn.set_autocommit(True)
        row = None  # set by the attempt that succeeds; every other way out raises
        try:
            try:
                for attempt in range(1, FIRST_PURCHASE_ATTEMPTS + 1):
                    try:
                        if before_commit is None:
                            cur = await conn.execute(statement, params)
                            row = await cur.fetchone()
                        else:
                            async with conn.transaction():
                                cur = await conn.execute(statement, params)
                                row = await cur.fetchone()
                                await before_commit()
                        break
                    except pg_errors.UniqueViolation as exc:
                        # Two first purchases of one user raced to create the user / account. ON
                        # CONFLICT arbitrates on one unique index only, so the loser fails on the
                        # other; its statement was rolled back whole, and now the account exists.
                        if exc.diag.constraint_name not in FIRST_PURCHASE_RACE or attempt == FIRST_PURCHASE_ATTEMPTS:
                            raise
            except pg_errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "payments_pkey":
                    raise
                # A racing confirmation of the same id committed first; ours was rolled back whole.
                existing = await _find_payment(conn, request.client_payment_id)
                if existing is None:  # pragma: no cover - the winner committed, so it is visible
                    raise
                return _replay_or_conflict(existing, request, confirmed_by)
            except pg_errors.NumericValueOutOfRange:
                existing = await _find_payment(conn, request.client_payment_id)
                if existing is not None:
                    return _replay_or_conflict(existing, request, confirmed_by)
                raise await _explain_overflow(conn, request, plan.user_credits, plan.bonus_credits) from None
            except pg_errors.CheckViolation as exc:
                message = exc.diag.message_primary or ""
                if not message.startswith(_ASSERT_PREFIX):
                    raise
                raise LedgerUnavailable(
                    f"payment {request.client_payment_id!r} not applied: {message.removeprefix(_ASSERT_PREFIX)} "
                    f"(is the database migrated? run `govfleet migrate`)"
                ) from None
        finally:
            try:
                await conn.set_autocommit(False)
            except psycopg.Error:
                await conn.close()  # the pool discards it

    assert row is not None
    if row["existing"] is not None:
        return _replay_or_conflict(row["existing"], request, confirmed_by)
    return ConfirmPaymentResult(
        client_payment_id=request.client_payment_id,
        user_id=request.user_id,
        amount_usd_cents=request.amount_usd_cents,
        billing_account_id=row["billing_account_id"],
        user_credits=plan.user_credits,
        bonus_credits=plan.bonus_credits,
        user_balance_after=row["user_balance_after"],
        system_balance_after=row["system_balance_after"],
        replay=False,
    )


# --- charging the system tenant -----------------------------------------------------------


def _validate_charge(amount: object, reference: object, reason: object, metadata: object) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be an integer number of credits, got {amount!r}")
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    if amount > BIGINT_MAX:
        raise LedgerOverflow(f"amount {amount} does not fit a bigint")
    for name, value in (("reference", reference), ("reason", reason)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} is required and must be a non-empty string, got {value!r}")
    if reason in (REASON_PURCHASE, REASON_REVENUE_SHARE):
        raise ValueError(f"reason {reason!r} is reserved for purchases; use e.g. {REASON_GOVERNANCE_RUN!r}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")


async def charge_system_tenant(
    pool: DbPool,
    *,
    amount: int,
    reference: str,
    reason: str = REASON_GOVERNANCE_RUN,
    metadata: dict | None = None,
) -> ChargeResult:
    """Charge `cogni_system` `amount` credits at 1x, once per (reason, reference).

    A repeated call with the same reason and reference returns the first charge (replay=True);
    with a different amount it raises ChargeConflict. A charge larger than the balance raises
    InsufficientCredits and writes nothing.
    """
    async with pool.connection() as conn:
        return await charge_system_tenant_on(conn, amount=amount, reference=reference, reason=reason, metadata=metadata)


async def charge_system_tenant_on(
    conn: DbConnection,
    *,
    amount: int,
    reference: str,
    reason: str = REASON_GOVERNANCE_RUN,
    metadata: dict | None = None,
) -> ChargeResult:
    """`charge_system_tenant` on a connection the caller holds (a savepoint when it is in a
    transaction already), so a caller's critical section needs no second connection."""
    _validate_charge(amount, reference, reason, metadata)
    try:
        meta = json.dumps(metadata or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT balance_credits FROM billing_accounts WHERE id = %s AND is_system_tenant FOR UPDATE",
            (SYSTEM_TENANT_ID,),
        )
        account = await cur.fetchone()
        if account is None:
            raise LedgerUnavailable(f"system tenant {SYSTEM_TENANT_ID!r} is missing; run `govfleet migrate`")
        cur = await conn.execute(
            "SELECT amount, balance_after FROM credit_ledger"
            " WHERE billing_account_id = %s AND reason = %s AND reference = %s",
            (SYSTEM_TENANT_ID, reason, reference),
        )
        previous = await cur.fetchone()
        if previous is not None:
            if previous["amount"] != -amount:
                raise ChargeConflict(reference, reason, -previous["amount"], amount)
            return ChargeResult(charged=amount, balance_after=previous["balance_after"], replay=True)
        balance_after = charged_balance(SYSTEM_TENANT_ID, account["balance_credits"], amount)
        await conn.execute(
            "UPDATE billing_accounts SET balance_credits = %s, updated_at = now() WHERE id = %s",
            (balance_after, SYSTEM_TENANT_ID),
        )
        await conn.execute(
            "INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference, metadata)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (SYSTEM_TENANT_ID, -amount, balance_after, reason, reference, meta),
        )
    return ChargeResult(charged=amount, balance_after=balance_after, replay=False)


async def spent_today(pool: DbPool) -> int:
    """Credits charged to the system tenant since UTC midnight (by the database's clock)."""
    async with pool.connection() as conn:
        spent = await spent_today_on(conn)
        await conn.rollback()
    return spent


async def spent_today_on(conn: DbConnection) -> int:
    """`spent_today` on a connection the caller holds (inside its transaction, if any)."""
    cur = await conn.execute(
        "SELECT COALESCE(-SUM(amount), 0)::bigint AS spent FROM credit_ledger"
        " WHERE billing_account_id = %s AND amount < 0"
        " AND created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')",
        (SYSTEM_TENANT_ID,),
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return int(row["spent"])


async def system_balance(pool: DbPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT balance_credits FROM billing_accounts WHERE id = %s", (SYSTEM_TENANT_ID,))
        row = await cur.fetchone()
        await conn.rollback()
    if row is None:
        raise LedgerUnavailable(f"system tenant {SYSTEM_TENANT_ID!r} is missing; run `govfleet migrate`")
    return int(row["balance_credits"])


# --- the invariant ------------------------------------------------------------------------


class AccountMismatch(BaseModel):
    billing_account_id: str
    balance: int
    ledger_sum: int


class ChainBreak(BaseModel):
    billing_account_id: str
    entry_id: int
    balance_after: int
    running_sum: int


class PaymentMismatch(BaseModel):
    client_payment_id: str
    problem: str


class VerifyReport(BaseModel):
    accounts: int
    entries: int
    payments: int
    mismatches: list[AccountMismatch]
    chain_breaks: list[ChainBreak]
    payment_mismatches: list[PaymentMismatch]

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.chain_breaks or self.payment_mismatches)


_VERIFY_ACCOUNTS = """
SELECT a.id AS billing_account_id, a.balance_credits AS balance, COALESCE(s.total, 0)::numeric AS ledger_sum,
       COALESCE(s.n, 0) AS entries
FROM billing_accounts a
LEFT JOIN (SELECT billing_account_id, SUM(amount) AS total, COUNT(*) AS n
           FROM credit_ledger GROUP BY billing_account_id) s ON s.billing_account_id = a.id
ORDER BY a.id
"""

_VERIFY_CHAIN = """
SELECT billing_account_id, entry_id, balance_after, running_sum FROM (
    SELECT billing_account_id, id AS entry_id, balance_after,
           SUM(amount) OVER (PARTITION BY billing_account_id ORDER BY id) AS running_sum,
           ROW_NUMBER() OVER (PARTITION BY billing_account_id ORDER BY id) AS n
    FROM credit_ledger
) t WHERE balance_after <> running_sum
ORDER BY billing_account_id, entry_id
LIMIT 1000
"""

_VERIFY_PAYMENTS = f"""
SELECT p.client_payment_id,
       CASE WHEN u.id IS NULL THEN 'no {REASON_PURCHASE} entry'
            WHEN u.amount <> p.user_credits
                 THEN '{REASON_PURCHASE} entry amount ' || u.amount || ' <> ' || p.user_credits
            WHEN p.bonus_credits > 0 AND s.id IS NULL THEN 'no {REASON_REVENUE_SHARE} entry'
            WHEN p.bonus_credits > 0 AND s.amount <> p.bonus_credits
                 THEN '{REASON_REVENUE_SHARE} entry amount ' || s.amount || ' <> ' || p.bonus_credits
            WHEN p.bonus_credits = 0 AND s.id IS NOT NULL THEN 'unexpected {REASON_REVENUE_SHARE} entry'
       END AS problem
FROM payments p
LEFT JOIN credit_ledger u ON u.billing_account_id = p.billing_account_id AND u.reason = '{REASON_PURCHASE}'
                         AND u.reference = p.client_payment_id
LEFT JOIN credit_ledger s ON s.billing_account_id = '{SYSTEM_TENANT_ID}' AND s.reason = '{REASON_REVENUE_SHARE}'
                         AND s.reference = p.client_payment_id
"""


async def verify(pool: DbPool) -> VerifyReport:
    """Check, in one consistent snapshot: every account's balance equals the sum of its entries,
    every entry's balance_after equals the running sum up to it, and every payment has its entries."""
    async with pool.connection() as conn:
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        try:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION READ ONLY")
                accounts = await (await conn.execute(_VERIFY_ACCOUNTS)).fetchall()
                breaks = await (await conn.execute(_VERIFY_CHAIN)).fetchall()
                payments = await (await conn.execute(_VERIFY_PAYMENTS)).fetchall()
        finally:
            await conn.set_isolation_level(None)
    mismatches = [
        AccountMismatch(
            billing_account_id=a["billing_account_id"], balance=a["balance"], ledger_sum=int(a["ledger_sum"])
        )
        for a in accounts
        if int(a["ledger_sum"]) != a["balance"]
    ]
    return VerifyReport(
        accounts=len(accounts),
        entries=sum(int(a["entries"]) for a in accounts),
        payments=len(payments),
        mismatches=mismatches,
        chain_breaks=[ChainBreak(**b) for b in breaks],
        payment_mismatches=[
            PaymentMismatch(client_payment_id=p["client_payment_id"], problem=p["problem"])
            for p in payments
            if p["problem"] is not None
        ],
    )
