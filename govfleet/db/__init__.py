"""PostgreSQL access: migrations (yoyo), connection with a bounded retry, tenant scope,
and the fail-fast system-tenant healthcheck (docs/ledger.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Final, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from govfleet.errors import StartupError

SYSTEM_TENANT_ID: Final = "cogni_system"
SYSTEM_PRINCIPAL_USER_ID = "cogni_system_principal"
GOVERNANCE_GRANT_ID = "cogni_system_governance"
APP_ROLE = "govfleet_app"

# Every connection of ours returns rows as dicts (`create_pool` sets psycopg's `dict_row`).
DbConnection: TypeAlias = psycopg.AsyncConnection[DictRow]
DbPool: TypeAlias = AsyncConnectionPool[DbConnection]


def redact(url: str) -> str:
    """The URL with any password replaced, for printing."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _yoyo_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql+psycopg"
    # yoyo reads unix-socket hosts from the query string as psycopg does.
    query = dict(parse_qsl(parts.query))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


def migrations_dir() -> str:
    return str(resources.files("govfleet.db") / "migrations")


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations under yoyo's lock; returns the ids applied (empty on re-run)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(migrations_dir())
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    ids = [m.id for m in pending]
    backend.connection.close()
    return ids


def wait_for_database(database_url: str, timeout_seconds: float) -> None:
    """Block until PostgreSQL accepts a connection, retrying for a bounded time."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.2
    last: Exception | None = None
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=max(1, int(timeout_seconds))) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
        if time.monotonic() >= deadline:
            reason = str(last).strip().splitlines()[0] if last else "no answer"
            raise StartupError(
                f"database unreachable at {redact(database_url)} after {timeout_seconds:g}s ({reason}); "
                "start PostgreSQL or fix DATABASE_URL"
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def verify_system_tenant(database_url: str) -> None:
    """Refuse to start without `cogni_system` (flagged as the system tenant)."""
    try:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT is_system_tenant FROM billing_accounts WHERE id = %s", (SYSTEM_TENANT_ID,)
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        raise StartupError("database is not migrated (no billing_accounts table); run `govfleet migrate`") from None
    if row is None:
        raise StartupError(
            f"system tenant '{SYSTEM_TENANT_ID}' billing account is missing; run `govfleet migrate` to seed it"
        )
    if not row[0]:
        raise StartupError(
            f"billing account '{SYSTEM_TENANT_ID}' is not flagged is_system_tenant; "
            "run `govfleet migrate` or set the flag"
        )


# psycopg_pool retries a lost connection with an unbounded exponential backoff (1, 2, 4, ...
# 32 s ...) for `reconnect_timeout`; after a 30 s outage the next attempt could be half a minute
# away. Giving up on an attempt after this long instead makes the next request start a fresh
# one, so the pool is back within seconds of PostgreSQL.
RECONNECT_TIMEOUT_SECONDS = 10.0


async def create_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 10, open_timeout: float = 30.0
) -> DbPool:
    """An open pool, or StartupError (one line) when no connection is made within `open_timeout`
    seconds (the command line passes DATABASE_CONNECT_TIMEOUT_SECONDS)."""
    pool: DbPool = AsyncConnectionPool(
        database_url,
        connection_class=DbConnection,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"row_factory": dict_row, "autocommit": False},
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
    )
    try:
        await pool.open(wait=True, timeout=open_timeout)
    except PoolTimeout:
        await pool.close()
        raise StartupError(
            f"database unreachable at {redact(database_url)} after {open_timeout:g}s; "
            "start PostgreSQL or fix DATABASE_URL"
        ) from None
    return pool


async def connect_autocommit(conninfo: str, timeout: float) -> DbConnection:
    """One connection outside any pool, each statement its own transaction: for a read made so
    often that a pool checkout and a COMMIT would double its cost (the status version)."""
    return await asyncio.wait_for(
        DbConnection.connect(conninfo, autocommit=True, row_factory=dict_row), timeout=timeout
    )


@asynccontextmanager
async def tenant_scope(conn: DbConnection, user_id: str) -> AsyncIterator[DbConnection]:
    """Inside one transaction, drop to the application role
    (no BYPASSRLS) and set the tenant, so row-level security decides what is visible."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        await conn.execute("SELECT set_config('app.current_user_id', %s, true)", (user_id,))
        yield conn


async def async_wait_for_database(database_url: str, timeout_seconds: float) -> None:
    await asyncio.to_thread(wait_for_database, database_url, timeout_seconds)
