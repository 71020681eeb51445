"""`govfleet pay` (confirm a credit purchase: a signed request to the fleet's API, which runs the
payment workflow) and `govfleet ledger verify|balance` (the balance invariant; the system tenant's
balance).

Exit codes: 0 done; 1 refused (payment conflict, invalid or too large amount, ledger mismatch,
still pending); 2 configuration or connection problem (no signing secret, a refused signature, the
API not answering).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govfleet.settings import Settings

PAY_PATH = "/api/v1/payments/credits/confirm"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pay",
        help="confirm a credit purchase: a request to the API signed with PAYMENT_SIGNING_SECRET (idempotent on --id)",
    )
    p.add_argument("--id", dest="client_payment_id", required=True, help="client payment id (the idempotency key)")
    p.add_argument("--user", dest="user_id", required=True, help="the buying user's id")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--cents", type=int, help="amount paid, in US cents")
    amount.add_argument("--usd", help="amount paid, in US dollars (e.g. 100 or 12.34)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the result (default 60)")
    p.add_argument(
        "--api", metavar="URL", default=None, help="the fleet's API (default http://SERVICE_HOST:SERVICE_PORT)"
    )
    p.set_defaults(func=cmd_pay)

    p = sub.add_parser("ledger", help="credit ledger tools")
    ledger_sub = p.add_subparsers(dest="ledger_command", required=True, metavar="SUBCOMMAND")
    v = ledger_sub.add_parser("verify", help="check balance = sum of entries for every account (exit 1 if not)")
    v.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=cmd_verify)
    b = ledger_sub.add_parser("balance", help="the system tenant's balance and today's governance spend")
    b.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    b.set_defaults(func=cmd_balance)


def usd_to_cents(text: str) -> int:
    try:
        usd = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        raise ValueError(f"--usd {text!r} is not a number") from None
    cents = usd * 100
    if not usd.is_finite() or cents != cents.to_integral_value():
        raise ValueError(f"--usd {text!r} must be a whole number of cents (at most 2 decimals)")
    return int(cents)


def api_url(settings: Settings, flag: str | None) -> str:
    if flag:
        return flag.rstrip("/")
    host = "127.0.0.1" if settings.SERVICE_HOST in ("0.0.0.0", "::", "") else settings.SERVICE_HOST
    return f"http://{host}:{settings.SERVICE_PORT}"


def cmd_pay(args: argparse.Namespace) -> int:
    from govfleet.domain.billing import parse_confirm_input
    from govfleet.settings import load_settings

    settings = load_settings()
    try:
        cents = args.cents if args.cents is not None else usd_to_cents(args.usd)
        request = parse_confirm_input(
            {"client_payment_id": args.client_payment_id, "user_id": args.user_id, "amount_usd_cents": cents}
        )
    except ValueError as exc:
        print(f"govfleet: error: {exc}", file=sys.stderr)
        return 1
    if not settings.PAYMENT_SIGNING_SECRET:
        print(
            "govfleet: error: PAYMENT_SIGNING_SECRET is not set: `govfleet pay` signs the confirmation with the "
            "secret the API verifies (see docs/ledger.md)",
            file=sys.stderr,
        )
        return 2
    body = json.dumps(request.model_dump(mode="json"), separators=(",", ":")).encode()
    return asyncio.run(_pay(api_url(settings, args.api), settings.PAYMENT_SIGNING_SECRET, body, args.timeout))


async def _pay(url: str, secret: str, body: bytes, timeout: float) -> int:
    import httpx

    from govfleet.domain.payment_signature import SIGNATURE_HEADER, sign_payment

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            # Signed afresh for every attempt: a signature is valid only near its timestamp.
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign_payment(secret, body, int(time.time())),
            }
            left = max(1.0, deadline - time.monotonic())
            try:
                resp = await http.post(f"{url}{PAY_PATH}", content=body, headers=headers, timeout=left + 5)
            except httpx.HTTPError as err:
                print(f"govfleet: error: the API at {url} did not answer: {err or type(err).__name__}", file=sys.stderr)
                return 2
            if resp.status_code == 200:
                print(json.dumps(resp.json(), indent=2))
                return 0
            message = _error_message(resp)
            if resp.status_code == 202 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)  # still being confirmed: ask again with the same payload
                continue
            print(f"govfleet: error: {message}", file=sys.stderr)
            return 1 if resp.status_code in (202, 400, 409, 413, 422) else 2


def _error_message(resp) -> str:
    try:
        data = resp.json()
        return data["error"]["message"] if "error" in data else data["message"]
    except (ValueError, KeyError, TypeError):
        return f"the API answered {resp.status_code}: {resp.text[:200]}"


def cmd_verify(args: argparse.Namespace) -> int:
    from govfleet.db import create_pool, redact, wait_for_database
    from govfleet.local_fleet import require_database_url, with_local_fleet
    from govfleet.settings import load_config
    from govfleet.store.ledger import verify

    config = with_local_fleet(load_config())
    url = require_database_url(config, args.database_url)
    wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)  # one line, bounded

    async def main():
        pool = await create_pool(url, max_size=1, open_timeout=config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
        try:
            return await verify(pool)
        finally:
            await pool.close()

    report = asyncio.run(main())
    if args.json:
        print(json.dumps({"ok": report.ok, **report.model_dump(mode="json")}, indent=2))
        return 0 if report.ok else 1
    print(f"ledger at {redact(url)}: {report.accounts} accounts, {report.entries} entries, {report.payments} payments")
    for m in report.mismatches:
        print(
            f"  MISMATCH {m.billing_account_id}: balance {m.balance} != sum of entries {m.ledger_sum} "
            f"(difference {m.balance - m.ledger_sum})"
        )
    for c in report.chain_breaks:
        print(
            f"  CHAIN    {c.billing_account_id}: entry {c.entry_id} balance_after {c.balance_after} "
            f"!= running sum {c.running_sum}"
        )
    for p in report.payment_mismatches:
        print(f"  PAYMENT  {p.client_payment_id}: {p.problem}")
    if report.ok:
        print("ok: every balance equals the sum of its entries")
        return 0
    print(
        f"FAILED: {len(report.mismatches)} account(s) differ, {len(report.chain_breaks)} entry chain break(s), "
        f"{len(report.payment_mismatches)} payment(s) without matching entries",
        file=sys.stderr,
    )
    return 1


def cmd_balance(args: argparse.Namespace) -> int:
    from govfleet.db import create_pool, wait_for_database
    from govfleet.local_fleet import require_database_url, with_local_fleet
    from govfleet.settings import load_config
    from govfleet.store.ledger import spent_today, system_balance

    config = with_local_fleet(load_config())
    url = require_database_url(config, args.database_url)
    wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)  # one line, bounded
    budget = config.spec.governance.system_tenant.budget_credits_per_day

    async def main() -> tuple[int, int]:
        pool = await create_pool(url, max_size=1, open_timeout=config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
        try:
            return await system_balance(pool), await spent_today(pool)
        finally:
            await pool.close()

    balance, spent = asyncio.run(main())
    print(
        json.dumps(
            {
                "system_tenant": "cogni_system",
                "balance_credits": str(balance),
                "spent_today_credits": str(spent),
                "budget_credits_per_day": str(budget),
            },
            indent=2,
        )
    )
    return 0
