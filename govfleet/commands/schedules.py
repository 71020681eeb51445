"""`govfleet reconcile [--dry-run]`: make Temporal's schedules follow `.cogni/repo-spec.yaml`.

Exit codes: 0 done (or, with --dry-run, planned); 1 a schedule is blocked (a schedule this repo
does not own sits on a declared id) or a write failed; 2 the repo-spec or environment is invalid
(nothing was changed) or Temporal is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from temporalio.client import Client
from temporalio.service import RPCError

from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
from govfleet.local_fleet import connect_fleet, with_local_fleet
from govfleet.settings import Config, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconcile",
        help="make Temporal Schedules follow .cogni/repo-spec.yaml (create / update / delete what this repo owns)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument("--repo-spec", default=None, help="path of the repo-spec (default REPO_SPEC_PATH)")
    p.set_defaults(func=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from schedules.reconciler import reconcile

    # Validates the whole file first: an invalid spec raises RepoSpecError before any connection.
    config = with_local_fleet(load_config(repo_spec_path=args.repo_spec))

    async def main() -> int:
        client = await connect_fleet(config)
        try:
            report = await reconcile(
                client, config.spec, task_queue=config.settings.TEMPORAL_TASK_QUEUE, dry_run=args.dry_run
            )
        except RPCError as exc:  # e.g. reading the schedules was refused: nothing was written
            print(
                f"govfleet: error: Temporal refused the reconcile ({exc.status.name}): {exc.message}", file=sys.stderr
            )
            return 1
        print(report.render())
        if args.dry_run:
            print("\n(dry run: nothing was changed)")
        if not report.ok:
            for o in report.failed:
                print(f"govfleet: error: {o.schedule_id}: {o.detail}", file=sys.stderr)
            if report.blocked:
                print(
                    f"govfleet: error: blocked: {', '.join(report.blocked)} exist but are not owned by "
                    f"{report.plan.owner}; delete or rename them, or rename the charter",
                    file=sys.stderr,
                )
            return 1
        return 0

    return asyncio.run(main())


async def reconcile_on_start(config: Config, client: Client) -> str:
    """`govfleet up`: reconcile once at start. Problems are reported, not fatal, so the rest of
    the fleet still comes up; the one-line summary goes into the banner."""
    from schedules.reconciler import reconcile

    try:
        report = await reconcile(client, config.spec, task_queue=config.settings.TEMPORAL_TASK_QUEUE)
    except Exception as exc:
        return f"reconcile failed ({type(exc).__name__}: {exc}); run `govfleet reconcile` to retry"
    print(report.render(), file=sys.stderr, flush=True)
    if any(o.schedule_id == HEARTBEAT_SCHEDULE_ID and o.outcome == "created" for o in report.outcomes):
        # A new fleet proves itself at once instead of showing "new" for a whole interval.
        try:
            await client.get_schedule_handle(HEARTBEAT_SCHEDULE_ID).trigger()
        except Exception as exc:
            print(f"govfleet: could not trigger the first heartbeat: {exc}", file=sys.stderr)
    p = report.plan
    summary = (
        f"{p.count('create')} created, {p.count('update')} updated, {p.count('delete')} deleted, "
        f"{p.count('unchanged')} unchanged"
    )
    if not report.ok:
        problems = [*(f"blocked {b}" for b in report.blocked), *(f"failed {o.schedule_id}" for o in report.failed)]
        summary += " — " + ", ".join(problems) + " (see `govfleet reconcile --dry-run`)"
    return summary
