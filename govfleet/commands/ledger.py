"""`govfleet pay` (confirm a credit purchase through the payment workflow) and
`govfleet ledger verify|balance` (the balance invariant; the system tenant's balance).

Exit codes: 0 done; 1 refused (payment conflict, invalid amount, ledger mismatch, still pending);
2 configuration or connection problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from decimal import Decimal, InvalidOperation

from govfleet.db import create_pool, redact
from govfleet.local_fleet import connect_fleet, require_database_url, with_local_fleet
from govfleet.settings import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pay", help="confirm a credit purchase (runs the payment workflow; idempotent on --id)")
    p.add_argument("--id", dest="client_payment_id", required=True, help="client payment id (the idempotency key)")
    p.add_argument("--user", dest="user_id", required=True, help="the buying user's id")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--cents", type=int, help="amount paid, in US cents")
    amount.add_argument("--usd", help="amount paid, in US dollars (e.g. 100 or 12.34)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the result (default 60)")
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


def cmd_pay(args: argparse.Namespace) -> int:
    from govfleet.payments import BillingError, PaymentPending, confirm_via_workflow, parse_confirm_input

    config = with_local_fleet(load_config())
    try:
        cents = args.cents if args.cents is not None else usd_to_cents(args.usd)
        request = parse_confirm_input(
            {"client_payment_id": args.client_payment_id, "user_id": args.user_id, "amount_usd_cents": cents}
        )
    except ValueError as exc:
        print(f"govfleet: error: {exc}", file=sys.stderr)
        return 1

    async def main() -> int:
        client = await connect_fleet(config)
        try:
            result = await confirm_via_workflow(
                client, config.settings.TEMPORAL_TASK_QUEUE, request, timeout=args.timeout
            )
        except (BillingError, PaymentPending) as exc:
            print(f"govfleet: error: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return 0

    return asyncio.run(main())


def cmd_verify(args: argparse.Namespace) -> int:
    from govfleet.store.ledger import verify

    config = with_local_fleet(load_config())
    url = require_database_url(config, args.database_url)

    async def main():
        pool = await create_pool(url, max_size=1)
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
    from govfleet.store.ledger import spent_today, system_balance

    config = with_local_fleet(load_config())
    url = require_database_url(config, args.database_url)
    budget = config.spec.governance.system_tenant.budget_credits_per_day

    async def main() -> tuple[int, int]:
        pool = await create_pool(url, max_size=1)
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
