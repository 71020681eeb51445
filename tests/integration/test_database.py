"""Schema, seeds, the append-only ledger, the single system tenant, and RLS tenant scope."""

from __future__ import annotations

import psycopg
import pytest

from govfleet import db


def test_migrations_are_safe_to_rerun(database_url):
    assert db.migrate(database_url) == []


def test_system_tenant_is_seeded(database_url):
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT owner_user_id, is_system_tenant, balance_credits FROM billing_accounts WHERE id = 'cogni_system'"
        ).fetchone()
        assert row == ("cogni_system_principal", True, 0)
        grant = conn.execute(
            "SELECT scopes, expires_at > now(), revoked_at FROM execution_grants WHERE id = %s",
            (db.GOVERNANCE_GRANT_ID,),
        ).fetchone()
        assert grant[0] == ["governance:HEARTBEAT", "governance:BRIEF", "governance:HTTP", "governance:GATEWAY"]
        assert grant[1] is True and grant[2] is None
    db.verify_system_tenant(database_url)


def _ledger_entry(conn: psycopg.Connection, reference: str) -> None:
    conn.execute(
        "INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference) "
        "VALUES ('cogni_system', 5, 5, 'test_entry', %s)",
        (reference,),
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE credit_ledger SET amount = 6",
        "DELETE FROM credit_ledger",
        "TRUNCATE credit_ledger",
    ],
)
def test_ledger_refuses_update_delete_truncate(make_database, statement):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        _ledger_entry(conn, "ref-1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
        assert conn.execute("SELECT count(*), sum(amount) FROM credit_ledger").fetchone() == (1, 5)


def test_ledger_entry_is_unique_per_account_reason_reference(make_database):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        _ledger_entry(conn, "ref-1")
        with pytest.raises(psycopg.errors.UniqueViolation):
            _ledger_entry(conn, "ref-1")


def test_at_most_one_system_tenant(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO users (id) VALUES ('impostor')")
        with pytest.raises(psycopg.errors.UniqueViolation, match="one_system_tenant"):
            conn.execute(
                "INSERT INTO billing_accounts (id, owner_user_id, is_system_tenant)"
                " VALUES ('acct_impostor', 'impostor', true)"
            )
        conn.rollback()


def test_application_role_cannot_bypass_rls(database_url):
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = %s", (db.APP_ROLE,)).fetchone() == (
            False,
        )


async def test_tenant_scope_shows_only_the_tenants_rows(make_database):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) VALUES ('alice'), ('bob')")
        conn.execute(
            "INSERT INTO billing_accounts (id, owner_user_id, balance_credits)"
            " VALUES ('acct_alice', 'alice', 7), ('acct_bob', 'bob', 9)"
        )
        conn.execute(
            "INSERT INTO governance_runs (id, owner_user_id, title)"
            " VALUES ('r-sys', 'cogni_system_principal', 'System run'), ('r-bob', 'bob', 'Bob run')"
        )
    async with await psycopg.AsyncConnection.connect(url) as conn:
        async with db.tenant_scope(conn, db.SYSTEM_PRINCIPAL_USER_ID):
            accounts = await (await conn.execute("SELECT id FROM billing_accounts ORDER BY id")).fetchall()
            runs = await (await conn.execute("SELECT id FROM governance_runs")).fetchall()
            assert accounts == [("cogni_system",)]
            assert runs == [("r-sys",)]
        async with db.tenant_scope(conn, "alice"):
            assert await (await conn.execute("SELECT id, balance_credits FROM billing_accounts")).fetchall() == [
                ("acct_alice", 7)
            ]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("UPDATE billing_accounts SET balance_credits = 1000")
        # Outside the scope the role and setting are gone again (SET LOCAL).
        role = await (await conn.execute("SELECT current_user")).fetchone()
        assert role[0] != db.APP_ROLE


def test_verify_system_tenant_fails_fast_when_missing_or_unflagged(make_database):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE billing_accounts SET is_system_tenant = false WHERE id = 'cogni_system'")
    with pytest.raises(db.StartupError, match="not flagged is_system_tenant"):
        db.verify_system_tenant(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM execution_grants")
        conn.execute("DELETE FROM billing_accounts WHERE id = 'cogni_system'")
    with pytest.raises(db.StartupError, match="'cogni_system' billing account is missing"):
        db.verify_system_tenant(url)


def test_verify_system_tenant_on_unmigrated_database(make_database):
    url = make_database(migrate=False)
    with pytest.raises(db.StartupError, match="not migrated"):
        db.verify_system_tenant(url)


def test_wait_for_database_is_bounded():
    import time

    started = time.monotonic()
    with pytest.raises(db.StartupError, match=r"database unreachable at postgresql://u:\*\*\*@127\.0\.0\.1:1/x"):
        db.wait_for_database("postgresql://u:secret@127.0.0.1:1/x", timeout_seconds=1)
    assert time.monotonic() - started < 10
