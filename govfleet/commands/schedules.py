"""`govfleet reconcile [--dry-run] [--adopt]`: make Temporal's schedules and the declared long-lived
workflows (guardians, `governance-status`, `governance-watchdog`) follow `.cogni/repo-spec.yaml`.

Exit codes: 0 done (or, with --dry-run, planned); 1 a schedule is blocked (a schedule this repo
does not own sits on a declared id) or a write, start or signal failed; 2 the repo-spec or environment is invalid
(nothing was changed: also a free-word entrypoint without `governance.agent_gateway` or
OPENCLAW_GATEWAY_URL, or a TEMPORAL_TASK_QUEUE the original system's workers poll) or Temporal is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import Client

    from govfleet.settings import Config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconcile",
        help="make Temporal Schedules follow .cogni/repo-spec.yaml (create / update / delete what this repo owns)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument(
        "--adopt",
        action="store_true",
        help="take over schedules on declared ids that carry no govfleet memo (the original system's), "
        "keeping their paused state",
    )
    p.add_argument("--repo-spec", default=None, help="path of the repo-spec (default REPO_SPEC_PATH)")
    p.set_defaults(func=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from govfleet.local_fleet import connect_fleet, serves_local_demo, with_local_fleet
    from govfleet.settings import load_config
    from schedules.reconciler import reconcile
    from schedules.workflows import reconcile_workflows

    # Validates the whole file first: an invalid spec raises RepoSpecError before any connection.
    declared = load_config(repo_spec_path=args.repo_spec)
    if not serves_local_demo(declared):  # next to a running `govfleet up`, its demo keys are fine
        from govfleet.startup_guard import guard_admins

        guard_admins(declared, "reconcile", one_shot=True)
    config = with_local_fleet(declared)
    in_env = bool(config.settings.OPENCLAW_GATEWAY_URL)
    problems = config.spec.governance.gateway_problems(gateway_in_environment=in_env)
    if problems:  # nothing is read or written: exit 2, one line per charter
        for line in problems:
            print(f"govfleet: error: {line}", file=sys.stderr)
        return 2

    async def main() -> int:
        client = await connect_fleet(config)
        try:
            report = await reconcile(
                client,
                config.spec,
                task_queue=config.settings.TEMPORAL_TASK_QUEUE,
                dry_run=args.dry_run,
                adopt=args.adopt,
                gateway_in_environment=in_env,
            )
        except RPCError as exc:  # e.g. reading the schedules was refused: nothing was written
            print(
                f"govfleet: error: Temporal refused the reconcile ({exc.status.name}): {exc.message}", file=sys.stderr
            )
            return 1
        print(report.render())
        # The declared long-lived workflows (guardians, status, watchdog): docs/declared-workflows.md.
        try:
            workflows = await reconcile_workflows(
                client, config.spec, task_queue=config.settings.TEMPORAL_TASK_QUEUE, dry_run=args.dry_run
            )
        except RPCError as exc:
            print(
                f"govfleet: error: Temporal refused describing a workflow ({exc.status.name}): {exc.message}",
                file=sys.stderr,
            )
            return 1
        print("\n" + workflows.render())
        policy_failed = False
        if config.settings.DATABASE_URL and not args.dry_run:
            # The system tenant's tool allowlist follows the repo-spec too (docs/heartbeat.md, "Tool allowlist").
            from govfleet.commands.fleet import store_tool_policy

            try:
                tools = await asyncio.to_thread(
                    store_tool_policy, config, config.settings.DATABASE_URL, "govfleet reconcile"
                )
                print(f"\nsystem tenant tool allowlist: {', '.join(tools) if tools else '(none: no tools)'}")
            except Exception as exc:
                policy_failed = True
                print(f"govfleet: error: the tool allowlist was not stored: {exc}", file=sys.stderr)
        if args.dry_run:
            print("\n(dry run: nothing was changed)")
        for o in workflows.failed:
            print(f"govfleet: error: {o.workflow_id}: {o.detail}", file=sys.stderr)
        if not report.ok or not workflows.ok or policy_failed:
            for o in report.failed:
                print(f"govfleet: error: {o.schedule_id}: {o.detail}", file=sys.stderr)
            if report.blocked:
                print(
                    f"govfleet: error: blocked: {', '.join(report.blocked)} exist but are not owned by "
                    f"{report.plan.owner}; delete or rename them, or rename the charter"
                    + ("" if args.adopt else " (schedules without a govfleet memo: --adopt takes them over)"),
                    file=sys.stderr,
                )
            return 1
        return 0

    return asyncio.run(main())


async def reconcile_on_start(config: Config, client: Client) -> str:
    """`govfleet up`: reconcile once at start. Problems are reported, not fatal, so the rest of
    the fleet still comes up; the one-line summary goes into the banner."""
    from govfleet.contracts.heartbeat import HEARTBEAT_SCHEDULE_ID
    from schedules.reconciler import reconcile

    try:
        report = await reconcile(
            client,
            config.spec,
            task_queue=config.settings.TEMPORAL_TASK_QUEUE,
            gateway_in_environment=bool(config.settings.OPENCLAW_GATEWAY_URL),
        )
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
        + (f", {p.count('migrate')} migrated to lowercase ids" if p.count("migrate") else "")
    )
    if not report.ok:
        problems = [*(f"blocked {b}" for b in report.blocked), *(f"failed {o.schedule_id}" for o in report.failed)]
        summary += " — " + ", ".join(problems) + " (see `govfleet reconcile --dry-run`)"
    return summary


async def reconcile_workflows_on_start(config: Config, client: Client) -> list[tuple[str, str]]:
    """`govfleet up`: the declared workflows, reconciled like `govfleet reconcile` does; the
    banner's lines. Problems are reported, not fatal."""
    from schedules.workflows import reconcile_workflows

    try:
        report = await reconcile_workflows(client, config.spec, task_queue=config.settings.TEMPORAL_TASK_QUEUE)
    except Exception as exc:
        return [("Workflows", f"reconcile failed ({type(exc).__name__}: {exc}); run `govfleet reconcile` to retry")]
    print(report.render(), file=sys.stderr, flush=True)
    outcome = {o.workflow_id: o.outcome for o in report.outcomes}
    lines = [("Workflows", report.summary())]
    for g in config.spec.declared_guardians():
        lines.append(
            ("Guardian", f"workflow {g.workflow_id} ({outcome.get(g.workflow_id, '?')}), tracker {g.tracker.url}")
        )
    return lines
