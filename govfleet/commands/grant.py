"""`govfleet grant show|renew`: the governance execution grant that every governance run and
heartbeat needs (docs/heartbeat.md, "The governance grant"). `migrate` seeds it valid for 365
days; the heartbeat warns `grant_expiry_warning_hours` before it ends; `renew` pushes the end to
`--days` from now (never earlier than it already is).

Exit codes: 0 the grant is active (after a renew: and valid for at least --days); 1 it is
missing, revoked or expired (`show`), or revoked (`renew`: a revocation is not undone here);
2 configuration or connection problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govfleet.db import DbPool

DEFAULT_DAYS = 365


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grant", help="the governance execution grant: show it, renew it before it expires")
    grant_sub = p.add_subparsers(dest="grant_command", required=True, metavar="SUBCOMMAND")
    s = grant_sub.add_parser("show", help="when the grant expires (exit 1 if missing, revoked or expired)")
    s.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    s.add_argument("--json", action="store_true", help="print it as JSON")
    s.set_defaults(func=cmd_show)
    r = grant_sub.add_parser("renew", help=f"valid until --days from now (default {DEFAULT_DAYS}); never shortens it")
    r.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"days from now (1..3650, default {DEFAULT_DAYS})")
    r.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    r.set_defaults(func=cmd_renew)


def describe(row: dict) -> tuple[str, bool]:
    """One line about the grant, and whether it is active."""
    now: datetime = row["now"]
    if row["revoked_at"] is not None:
        return f"grant {row['id']} was REVOKED at {row['revoked_at']:%Y-%m-%d %H:%M:%SZ}", False
    expires: datetime | None = row["expires_at"]
    if expires is None:
        return f"grant {row['id']} is active and never expires", True
    left = expires - now
    if left <= timedelta(0):
        return (
            f"grant {row['id']} EXPIRED at {expires.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}; run `govfleet grant renew`",
            False,
        )
    days = left.total_seconds() / 86400
    return (
        f"grant {row['id']} is active until {expires.astimezone(UTC):%Y-%m-%d %H:%M:%SZ} ({days:.1f} days left)",
        True,
    )


def _url(args: argparse.Namespace) -> str:
    from govfleet.db import wait_for_database
    from govfleet.local_fleet import require_database_url, with_local_fleet
    from govfleet.settings import load_config

    config = with_local_fleet(load_config())
    url = require_database_url(config, args.database_url)
    wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    return url


async def _with_pool(url: str, use: Callable[[DbPool], Awaitable[dict | None]]) -> dict | None:
    from govfleet.db import create_pool

    pool = await create_pool(url, max_size=1)
    try:
        return await use(pool)
    finally:
        await pool.close()


def cmd_show(args: argparse.Namespace) -> int:
    from govfleet.db import GOVERNANCE_GRANT_ID
    from govfleet.store.grants import read_grant

    row = asyncio.run(_with_pool(_url(args), read_grant))
    if row is None:
        print(f"govfleet: error: grant {GOVERNANCE_GRANT_ID} does not exist; run `govfleet migrate`", file=sys.stderr)
        return 1
    line, active = describe(row)
    if args.json:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k != "now"}
        print(json.dumps({**out, "active": active}, indent=2))
    else:
        print(line)
    return 0 if active else 1


def cmd_renew(args: argparse.Namespace) -> int:
    from govfleet.db import GOVERNANCE_GRANT_ID
    from govfleet.store.grants import extend_grant

    if not 1 <= args.days <= 3650:
        print(f"govfleet: error: --days {args.days} must be between 1 and 3650", file=sys.stderr)
        return 2
    until = datetime.now(UTC) + timedelta(days=args.days)
    row = asyncio.run(_with_pool(_url(args), lambda pool: extend_grant(pool, until)))
    if row is None:
        print(f"govfleet: error: grant {GOVERNANCE_GRANT_ID} does not exist; run `govfleet migrate`", file=sys.stderr)
        return 1
    line, active = describe(row)
    print(line)
    if row["revoked_at"] is not None:
        print(
            "govfleet: error: a revoked grant is not renewed; revocation is deliberate (see docs/heartbeat.md)",
            file=sys.stderr,
        )
        return 1
    return 0 if active else 1
