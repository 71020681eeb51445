"""History size: events per check and the longest history of one run over 30 simulated
minutes in critical mode (1 s checks), under Temporal's time-skipping server (targets:
<= 7 events per check, never above 4,096 events in one run).

The guardian runs against the loopback simulator holding 50 % (critical: redemptions
paused, three alerts open) with its real activities and PostgreSQL. At the end every run
of the continue-as-new chain is fetched: events per check = all events / all checks;
longest = the largest single run. A second figure pushes readings (signal `reading`)
instead of polling.

    python -m bench.guardian_history [--quick] [--minutes M] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench.guardian_support import emit, fresh_database, guardian_cfg, guardian_worker, time_skipping_server


async def _chain_lengths(client, workflow_id: str) -> list[int]:
    lengths = []
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id or None
    return list(reversed(lengths))


async def _run(quick: bool, minutes: float | None) -> dict:
    from govfleet.contracts.guardian import GuardianInput
    from govfleet.simulator import TrackerSimulator, reading_body, start_simulator
    from workflows.guardian import GuardianWorkflow

    minutes = minutes or (2 if quick else 30)
    figures: dict = {"quick": quick, "simulated_minutes": minutes}
    with fresh_database() as database_url:
        async with time_skipping_server() as env:
            tq = f"bench-history-{uuid.uuid4().hex[:6]}"
            running = await start_simulator(TrackerSimulator())
            running.sim.set_reading(50.0)
            try:
                async with guardian_worker(env.client, tq, database_url):
                    gid = f"bench-history-{uuid.uuid4().hex[:8]}"
                    cfg = guardian_cfg(running.url, gid, upsert_search_attributes=False)
                    handle = await env.client.start_workflow(
                        GuardianWorkflow.run, GuardianInput(config=cfg), id=gid, task_queue=tq
                    )
                    await env.sleep(minutes * 60)
                    stats = await handle.query(GuardianWorkflow.stats)
                    lengths = await _chain_lengths(env.client, gid)
                    figures["poll"] = {
                        "checks": stats.checks,
                        "runs": len(lengths),
                        "events_per_check": round(sum(lengths) / max(1, stats.checks), 2),
                        "longest_history": max(lengths),
                        "target_met": sum(lengths) / max(1, stats.checks) <= 7 and max(lengths) <= 4096,
                    }
                    await handle.terminate("benchmark over")

                    # Pushed readings: one signal per check, the poll timer cut short each time.
                    gid = f"bench-history-push-{uuid.uuid4().hex[:8]}"
                    cfg = guardian_cfg(running.url, gid, upsert_search_attributes=False)
                    handle = await env.client.start_workflow(
                        GuardianWorkflow.run, GuardianInput(config=cfg), id=gid, task_queue=tq
                    )
                    pushes = 100 if quick else 600
                    while (await handle.query(GuardianWorkflow.stats)).checks < 1:
                        await asyncio.sleep(0.01)
                    before = await handle.query(GuardianWorkflow.stats)
                    start_len = before.history_length
                    for _ in range(pushes):
                        await handle.signal(
                            GuardianWorkflow.reading_signal, reading_body(50.0, now=await env.get_current_time())
                        )
                    while (await handle.query(GuardianWorkflow.stats)).checks < before.checks + pushes:
                        await asyncio.sleep(0.02)
                    lengths = await _chain_lengths(env.client, gid)
                    figures["push"] = {
                        "pushes": pushes,
                        "events_per_pushed_check": round((sum(lengths) - start_len) / pushes, 2),
                        "longest_history": max(lengths),
                    }
                    await handle.terminate("benchmark over")
            finally:
                await running.stop()
    return figures


def run(quick: bool) -> dict:
    return asyncio.run(_run(quick, None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (2 simulated minutes)")
    p.add_argument("--minutes", type=float, default=None, help="simulated minutes in critical mode (default 30)")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    f = asyncio.run(_run(args.quick, args.minutes))
    rows = [
        ("checks (1 s, critical)", f["poll"]["checks"], f"{f['simulated_minutes']:g} simulated minutes"),
        ("events per check", f["poll"]["events_per_check"], "target <= 7"),
        ("longest history (events)", f["poll"]["longest_history"], "one run; target <= 4,096"),
        ("runs (continue-as-new chain)", f["poll"]["runs"], "continues as new after 2,500 events"),
        ("events per pushed check", f["push"]["events_per_pushed_check"], f"{f['push']['pushes']} signals `reading`"),
        ("longest history, push", f["push"]["longest_history"], "one run"),
    ]
    emit("guardian history size", rows, f, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
