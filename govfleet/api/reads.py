"""Every read a route makes from the database, bounded (docs/security.md, "Database reads").

`read_database` checks a connection out of the pool and runs the read within `ctx.db_timeout`
seconds (2 by default), checkout included: without it, a request waits for the pool's own timeout
(30 s) while PostgreSQL is down. A read that fails or is cut is a 503 `database_unavailable` that
says what is unavailable and why in our words; the driver's error (which names hosts, ports and
SQL) goes to the server log only.

`within_deadline` bounds a read that goes through a service (the status read model) the same
way, without cancelling the service's own work, which other requests may be waiting on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import structlog
from psycopg_pool import PoolTimeout

from govfleet.api.context import ApiContext
from govfleet.api.errors import ApiError
from govfleet.db import DbConnection

log = structlog.get_logger("govfleet.api")
T = TypeVar("T")


def database_unavailable(what: str, seconds: float, exc: BaseException) -> ApiError:
    """The 503 for a read of `what` that failed with `exc`; `exc` is logged, never answered."""
    log.warning(f"{what}: database read failed", error=(str(exc).strip().splitlines() or [type(exc).__name__])[0])
    if isinstance(exc, TimeoutError | PoolTimeout):
        why = f"the database did not answer within {seconds:g} s"
    elif isinstance(exc, psycopg.OperationalError):
        why = "the connection to the database failed"
    else:
        why = "the database could not run the read (see the server log)"
    return ApiError(503, "database_unavailable", f"{what} unavailable: {why}; try again shortly")


async def read_database(ctx: ApiContext, what: str, read: Callable[[DbConnection], Awaitable[T]]) -> T:
    """`read(conn)` on a pooled connection, within `ctx.db_timeout` seconds, or 503."""
    seconds = ctx.db_timeout
    try:
        async with asyncio.timeout(seconds), ctx.pool.connection(timeout=seconds) as conn:
            return await read(conn)
    except (TimeoutError, psycopg.Error) as exc:
        raise database_unavailable(what, seconds, exc) from None


async def within_deadline(ctx: ApiContext, what: str, work: Awaitable[T], seconds: float | None = None) -> T:
    """`work`'s result within `seconds` (default `ctx.db_timeout`), or 503. On time-out `work`
    goes on (shielded): a shared read another request waits for is not cancelled under it."""
    seconds = ctx.db_timeout if seconds is None else seconds
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        task.add_done_callback(_retrieve)
        raise ApiError(
            503, "unavailable", f"{what} unavailable: no answer within {seconds:g} s; try again shortly"
        ) from None
    except ApiError:
        raise
    except Exception as exc:
        log.warning(f"{what}: read failed", error=(str(exc).strip().splitlines() or [type(exc).__name__])[0])
        raise ApiError(
            503, "unavailable", f"{what} unavailable: its sources did not answer; try again shortly"
        ) from None


def _retrieve(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # the late outcome is nobody's answer: no "never retrieved" warning
