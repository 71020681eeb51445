"""The ledger's transaction code on real PostgreSQL: the $100 purchase, replay, conflict,
concurrency (50 racing confirmations of one id, 200 distinct purchases), share 0, overflow,
the append-only tables, system-tenant charges, and the invariant after every scenario."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import psycopg
import pytest

from govfleet import db
from govfleet.domain.billing import (
    BIGINT_MAX,
    MAX_USD_CENTS,
    ChargeConflict,
    ConfirmPaymentInput,
    InsufficientCredits,
    InvalidPayment,
    LedgerOverflow,
    PaymentConflict,
    PurchaseTooLarge,
    revenue_share_bonus,
    usd_cents_to_credits,
)
from govfleet.store import ledger

SHARE = Decimal("0.75")


@pytest.fixture(scope="module")
async def ledger_url(make_database) -> str:
    return make_database()


@pytest.fixture(scope="module")
async def pool(ledger_url: str) -> AsyncIterator:
    p = await db.create_pool(ledger_url, min_size=2, max_size=20)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture(autouse=True)
async def invariant_holds_after_each_test(request):
    yield
    if "pool" in request.fixturenames:
        report = await ledger.verify(request.getfixturevalue("pool"))
        assert report.ok, report


async def fetch(pool, sql: str, *params) -> list[dict]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall()
        await conn.rollback()
    return rows


async def balance(pool, account: str) -> int:
    rows = await fetch(pool, "SELECT balance_credits FROM billing_accounts WHERE id = %s", account)
    return rows[0]["balance_credits"] if rows else 0


async def counts(pool) -> tuple[int, int, int, int]:
    rows = await fetch(
        pool,
        "SELECT (SELECT count(*) FROM credit_ledger) AS e, (SELECT count(*) FROM payments) AS p,"
        " (SELECT count(*) FROM billing_accounts) AS a, (SELECT sum(balance_credits) FROM billing_accounts) AS s",
    )
    r = rows[0]
    return r["e"], r["p"], r["a"], int(r["s"])


def pay(pid: str, user: str, cents: int) -> ConfirmPaymentInput:
    return ConfirmPaymentInput(client_payment_id=pid, user_id=user, amount_usd_cents=cents)


async def test_a_hundred_dollar_purchase_credits_user_and_system_tenant(pool):
    system_before = await balance(pool, "cogni_system")
    result = await ledger.confirm_payment(pool, pay("pay-100usd", "alice", 10_000), share=SHARE)

    assert (result.user_credits, result.bonus_credits, result.replay) == (1_000_000_000, 750_000_000, False)
    assert result.billing_account_id == "acct_alice"  # created on first purchase
    assert result.user_balance_after == 1_000_000_000
    assert result.system_balance_after == system_before + 750_000_000
    assert await balance(pool, "acct_alice") == 1_000_000_000
    assert await balance(pool, "cogni_system") == system_before + 750_000_000

    entries = await fetch(
        pool,
        "SELECT billing_account_id, amount, balance_after, reason, reference FROM credit_ledger"
        " WHERE reference = %s ORDER BY id",
        "pay-100usd",
    )
    assert entries == [
        {
            "billing_account_id": "acct_alice",
            "amount": 1_000_000_000,
            "balance_after": 1_000_000_000,
            "reason": "widget_payment",
            "reference": "pay-100usd",
        },
        {
            "billing_account_id": "cogni_system",
            "amount": 750_000_000,
            "balance_after": system_before + 750_000_000,
            "reason": "platform_revenue_share",
            "reference": "pay-100usd",
        },
    ]
    users = await fetch(pool, "SELECT id FROM users WHERE id = 'alice'")
    assert users == [{"id": "alice"}]


async def test_replay_returns_the_first_result_and_writes_nothing(pool):
    first = await ledger.confirm_payment(pool, pay("pay-replay", "bob", 2_500), share=SHARE)
    before = await counts(pool)
    # A later purchase moves the balances; the replay must still report the first result.
    await ledger.confirm_payment(pool, pay("pay-replay-2", "bob", 100), share=SHARE)
    after_second = await counts(pool)
    again = await ledger.confirm_payment(pool, pay("pay-replay", "bob", 2_500), share=SHARE)

    assert again.replay is True
    assert again.model_dump(exclude={"replay"}) == first.model_dump(exclude={"replay"})
    assert await counts(pool) == after_second
    assert after_second[0] == before[0] + 2


async def test_replay_by_the_same_caller_is_not_reported_as_a_replay(pool):
    first = await ledger.confirm_payment(pool, pay("pay-own", "bob", 300), share=SHARE, confirmed_by="run-1")
    own = await ledger.confirm_payment(pool, pay("pay-own", "bob", 300), share=SHARE, confirmed_by="run-1")
    other = await ledger.confirm_payment(pool, pay("pay-own", "bob", 300), share=SHARE, confirmed_by="run-2")
    assert (first.replay, own.replay, other.replay) == (False, False, True)


@pytest.mark.parametrize("user, cents", [("mallory", 5_000), ("carol", 9_999), ("mallory", 1)])
async def test_same_id_with_a_different_payload_is_a_conflict_and_writes_nothing(pool, user, cents):
    await ledger.confirm_payment(pool, pay("pay-conflict", "carol", 5_000), share=SHARE)
    before = await counts(pool)
    with pytest.raises(PaymentConflict) as info:
        await ledger.confirm_payment(pool, pay("pay-conflict", user, cents), share=SHARE)
    message = str(info.value)
    assert "pay-conflict" in message and "different payload" in message
    # Nothing about the stored payment: not its user, amount, credits, or which field differs.
    for secret in ("carol", "5000", "500000000", "user_id", "amount"):
        assert secret not in message, message
    assert info.value.client_payment_id == "pay-conflict"
    assert await counts(pool) == before
    assert await fetch(pool, "SELECT id FROM users WHERE id = 'mallory'") == []


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"client_payment_id": "", "user_id": "u", "amount_usd_cents": 1}, "client_payment_id"),
        ({"user_id": "u", "amount_usd_cents": 1}, "client_payment_id"),
        ({"client_payment_id": "p", "user_id": "u", "amount_usd_cents": 0}, "amount_usd_cents"),
        ({"client_payment_id": "p", "user_id": "u", "amount_usd_cents": MAX_USD_CENTS + 1}, "amount_usd_cents"),
    ],
)
async def test_bad_input_is_refused_by_name_before_writing(pool, payload, field):
    before = await counts(pool)
    with pytest.raises(InvalidPayment, match=field):
        await ledger.confirm_payment(pool, payload, share=SHARE)
    assert await counts(pool) == before


async def test_a_purchase_above_the_maximum_is_refused_and_writes_nothing(pool):
    before = await counts(pool)
    with pytest.raises(
        PurchaseTooLarge, match=r"'pay-big'.*above the per-purchase maximum of 1000000 cents \(\$10,000.00"
    ):
        await ledger.confirm_payment(pool, pay("pay-big", "grace", 1_000_001), share=SHARE, max_usd_cents=1_000_000)
    assert await counts(pool) == before
    at_max = await ledger.confirm_payment(
        pool, pay("pay-at-max", "grace", 1_000_000), share=SHARE, max_usd_cents=1_000_000
    )
    assert at_max.replay is False and at_max.user_credits == 100_000_000_000


async def test_a_payment_committed_before_the_maximum_was_lowered_still_replays(pool):
    first = await ledger.confirm_payment(pool, pay("pay-lowered", "heidi", 50_000), share=SHARE, max_usd_cents=100_000)
    before = await counts(pool)
    again = await ledger.confirm_payment(pool, pay("pay-lowered", "heidi", 50_000), share=SHARE, max_usd_cents=10_000)
    assert again.replay is True and again.model_dump(exclude={"replay"}) == first.model_dump(exclude={"replay"})
    with pytest.raises(PaymentConflict):
        await ledger.confirm_payment(pool, pay("pay-lowered", "heidi", 60_000), share=SHARE, max_usd_cents=10_000)
    assert await counts(pool) == before


async def test_fifty_concurrent_confirmations_of_one_id_write_exactly_one_pair(pool):
    system_before = await balance(pool, "cogni_system")
    results = await asyncio.gather(
        *[ledger.confirm_payment(pool, pay("pay-race", "dave", 1_234), share=SHARE) for _ in range(50)]
    )
    assert sum(not r.replay for r in results) == 1
    assert len({r.model_dump_json(exclude={"replay"}) for r in results}) == 1
    entries = await fetch(pool, "SELECT reason, amount FROM credit_ledger WHERE reference = 'pay-race' ORDER BY id")
    assert entries == [
        {"reason": "widget_payment", "amount": 123_400_000},
        {"reason": "platform_revenue_share", "amount": 92_550_000},
    ]
    assert await balance(pool, "acct_dave") == 123_400_000
    assert await balance(pool, "cogni_system") == system_before + 92_550_000


async def test_fifty_concurrent_first_purchases_of_one_new_user_create_one_account(pool):
    results = await asyncio.gather(
        *[ledger.confirm_payment(pool, pay(f"pay-newuser-{i}", "erin", 100 + i), share=SHARE) for i in range(50)]
    )
    assert not any(r.replay for r in results)
    expected = sum(usd_cents_to_credits(100 + i) for i in range(50))
    assert await balance(pool, "acct_erin") == expected
    assert max(r.user_balance_after for r in results) == expected


async def test_racing_first_purchases_of_many_new_users_all_land(pool):
    # Each round: fresh users, several first purchases each, all at once. The account-creating
    # race (two INSERTs of one new account) must never surface as an error.
    for round_no in range(6):
        users = [f"racer-{round_no}-{i}" for i in range(6)]
        orders = [(f"pay-racer-{round_no}-{u}-{k}", u, 1000 + k) for u in users for k in range(4)]
        results = await asyncio.gather(*[ledger.confirm_payment(pool, pay(*o), share=SHARE) for o in orders])
        assert not any(r.replay for r in results)
        for u in users:
            assert await balance(pool, f"acct_{u}") == sum(usd_cents_to_credits(1000 + k) for k in range(4))


async def test_two_hundred_distinct_concurrent_purchases_sum_exactly(pool):
    rng = random.Random(3)
    users = [f"crowd-{i}" for i in range(25)]
    orders = [(f"pay-crowd-{i}", rng.choice(users), rng.randint(1, 500_000)) for i in range(200)]
    user_before = {u: await balance(pool, f"acct_{u}") for u in users}
    system_before = await balance(pool, "cogni_system")

    results = await asyncio.gather(*[ledger.confirm_payment(pool, pay(*o), share=SHARE) for o in orders])

    assert not any(r.replay for r in results)
    for u in users:
        bought = sum(usd_cents_to_credits(c) for _, who, c in orders if who == u)
        assert await balance(pool, f"acct_{u}") == user_before[u] + bought
    bonus = sum(revenue_share_bonus(usd_cents_to_credits(c), SHARE) for _, _, c in orders)
    assert await balance(pool, "cogni_system") == system_before + bonus
    # Every result's balances are a point in its account's chain (balance_after recorded per entry).
    after = {(r.billing_account_id, r.user_balance_after) for r in results}
    rows = await fetch(
        pool,
        "SELECT billing_account_id, balance_after FROM credit_ledger"
        " WHERE reference LIKE 'pay-crowd-%%' AND reason = 'widget_payment'",
    )
    assert after == {(r["billing_account_id"], r["balance_after"]) for r in rows}


async def test_concurrent_charges_and_purchases_do_not_deadlock(pool):
    await ledger.confirm_payment(pool, pay("pay-fund", "frank", 100_000), share=SHARE)
    jobs = []
    for i in range(40):
        jobs.append(ledger.confirm_payment(pool, pay(f"pay-mixed-{i}", f"mixed-{i % 5}", 1_000), share=SHARE))
        jobs.append(ledger.charge_system_tenant(pool, amount=1_000_000, reference=f"run-mixed-{i}"))
    results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
    assert len(results) == 80


async def test_share_zero_writes_no_zero_amount_entry(pool):
    system_before = await balance(pool, "cogni_system")
    result = await ledger.confirm_payment(pool, pay("pay-noshare", "gina", 700), share=Decimal(0))
    assert result.bonus_credits == 0 and result.user_credits == 70_000_000
    assert result.system_balance_after == system_before
    entries = await fetch(pool, "SELECT billing_account_id, amount FROM credit_ledger WHERE reference = 'pay-noshare'")
    assert entries == [{"billing_account_id": "acct_gina", "amount": 70_000_000}]
    again = await ledger.confirm_payment(pool, pay("pay-noshare", "gina", 700), share=Decimal(0))
    assert again.replay and again.system_balance_after == system_before


async def test_the_database_refuses_update_and_delete_of_entries_and_payments(pool, ledger_url):
    await ledger.confirm_payment(pool, pay("pay-immutable", "hank", 100), share=SHARE)
    statements = [
        "UPDATE credit_ledger SET amount = amount + 1 WHERE reference = 'pay-immutable'",
        "DELETE FROM credit_ledger WHERE reference = 'pay-immutable'",
        "TRUNCATE credit_ledger CASCADE",
        "UPDATE payments SET amount_usd_cents = 1 WHERE client_payment_id = 'pay-immutable'",
        "DELETE FROM payments WHERE client_payment_id = 'pay-immutable'",
        "TRUNCATE payments",
    ]
    for sql in statements:
        with (
            psycopg.connect(ledger_url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
        ):
            conn.execute(sql)
    rows = await fetch(pool, "SELECT count(*) AS n FROM credit_ledger WHERE reference = 'pay-immutable'")
    assert rows[0]["n"] == 2


async def test_charge_system_tenant_at_one_x_idempotent_and_never_below_zero(pool):
    await ledger.confirm_payment(pool, pay("pay-fund-charges", "ivan", 1_000), share=SHARE)  # bonus 75,000,000
    start = await balance(pool, "cogni_system")
    spent_before = await ledger.spent_today(pool)

    first = await ledger.charge_system_tenant(pool, amount=1_000_000, reference="run-A", metadata={"charter": "X"})
    assert (first.charged, first.balance_after, first.replay) == (1_000_000, start - 1_000_000, False)
    again = await ledger.charge_system_tenant(pool, amount=1_000_000, reference="run-A")
    assert (again.charged, again.balance_after, again.replay) == (1_000_000, start - 1_000_000, True)
    with pytest.raises(ChargeConflict, match="run-A"):
        await ledger.charge_system_tenant(pool, amount=2_000_000, reference="run-A")

    racing = await asyncio.gather(
        *[ledger.charge_system_tenant(pool, amount=500_000, reference="run-B") for _ in range(20)]
    )
    assert sum(not r.replay for r in racing) == 1
    assert await balance(pool, "cogni_system") == start - 1_500_000
    assert await ledger.spent_today(pool) == spent_before + 1_500_000

    current = start - 1_500_000
    with pytest.raises(InsufficientCredits) as info:
        await ledger.charge_system_tenant(pool, amount=current + 1, reference="run-too-big")
    assert isinstance(info.value, ValueError)
    assert (info.value.balance, info.value.amount) == (current, current + 1)
    assert f"balance {current}" in str(info.value) and str(current + 1) in str(info.value)
    assert await balance(pool, "cogni_system") == current
    assert await fetch(pool, "SELECT id FROM credit_ledger WHERE reference = 'run-too-big'") == []

    exact = await ledger.charge_system_tenant(pool, amount=current, reference="run-all")
    assert exact.balance_after == 0
    rows = await fetch(pool, "SELECT amount, reason, metadata FROM credit_ledger WHERE reference = 'run-A'")
    assert rows == [{"amount": -1_000_000, "reason": "governance_run", "metadata": {"charter": "X"}}]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"amount": 0, "reference": "r"}, "amount must be positive"),
        ({"amount": -5, "reference": "r"}, "amount must be positive"),
        ({"amount": 1.5, "reference": "r"}, "amount must be an integer"),
        ({"amount": True, "reference": "r"}, "amount must be an integer"),
        ({"amount": 1, "reference": ""}, "reference is required"),
        ({"amount": 1, "reference": "r", "reason": "widget_payment"}, "reserved for purchases"),
        ({"amount": 1, "reference": "r", "metadata": [1]}, "metadata must be a dict"),
        ({"amount": BIGINT_MAX + 1, "reference": "r"}, "does not fit a bigint"),
    ],
)
async def test_bad_charges_are_refused_by_name(pool, kwargs, message):
    before = await counts(pool)
    with pytest.raises(ValueError, match=message):
        await ledger.charge_system_tenant(pool, **kwargs)
    assert await counts(pool) == before


async def test_balance_overflow_is_refused_and_nothing_is_written(make_database):
    url = make_database()
    p = await db.create_pool(url, max_size=2)
    try:
        await ledger.confirm_payment(p, pay("pay-huge-1", "whale", MAX_USD_CENTS), share=Decimal(0))
        before = await counts(p)
        with pytest.raises(LedgerOverflow, match=r"acct_whale.*overflow a bigint"):
            await ledger.confirm_payment(p, pay("pay-huge-2", "whale", 1), share=Decimal(0))
        # The system tenant overflows too: a new user's purchase with a full share.
        await ledger.confirm_payment(p, pay("pay-huge-3", "whale2", MAX_USD_CENTS), share=Decimal(1))
        mid = await counts(p)
        with pytest.raises(LedgerOverflow, match=r"cogni_system.*overflow a bigint"):
            await ledger.confirm_payment(p, pay("pay-huge-4", "minnow", 1), share=Decimal(1))
        assert await counts(p) == mid and mid[1] == before[1] + 1
        assert await fetch(p, "SELECT id FROM users WHERE id = 'minnow'") == []
        assert (await ledger.verify(p)).ok
    finally:
        await p.close()


async def test_a_missing_system_tenant_refuses_the_whole_purchase(make_database):
    url = make_database()
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE billing_accounts SET is_system_tenant = false WHERE id = 'cogni_system'")
    p = await db.create_pool(url, max_size=2)
    try:
        with pytest.raises(ledger.LedgerUnavailable, match="no system tenant"):
            await ledger.confirm_payment(p, pay("pay-nosys", "judy", 100), share=SHARE)
        assert await counts(p) == (0, 0, 1, 0)  # not even the user's account was created
    finally:
        await p.close()


async def test_verify_reports_the_accounts_that_differ(make_database, monkeypatch, capsys):
    from govfleet.cli import run

    url = make_database()
    p = await db.create_pool(url, max_size=2)
    try:
        await ledger.confirm_payment(p, pay("pay-v1", "kim", 100), share=SHARE)
        await ledger.confirm_payment(p, pay("pay-v2", "lee", 100), share=SHARE)
        monkeypatch.setenv("DATABASE_URL", url)
        assert await asyncio.to_thread(run, ["ledger", "verify"]) == 0
        assert "ok: every balance equals the sum of its entries" in capsys.readouterr().out

        with psycopg.connect(url) as conn:
            conn.execute("UPDATE billing_accounts SET balance_credits = balance_credits + 7 WHERE id = 'acct_kim'")
            conn.execute(
                "INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference)"
                " VALUES ('acct_lee', 5, 1, 'manual_fix', 'fix-1')"
            )
        report = await ledger.verify(p)
        assert not report.ok
        assert {(m.billing_account_id, m.balance - m.ledger_sum) for m in report.mismatches} == {
            ("acct_kim", 7),
            ("acct_lee", -5),
        }
        assert [(c.billing_account_id, c.balance_after) for c in report.chain_breaks] == [("acct_lee", 1)]

        assert await asyncio.to_thread(run, ["ledger", "verify"]) == 1
        out = capsys.readouterr()
        assert "MISMATCH acct_kim" in out.out and "MISMATCH acct_lee" in out.out
        assert "2 account(s) differ" in out.err
    finally:
        await p.close()
