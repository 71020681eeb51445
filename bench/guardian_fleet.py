"""Fleet: N guardians checking every second, with their audit writes, on one Temporal dev
server and one worker process — checks per second sustained and check lag p99 — beside a
bare timer + local-activity Temporal loop run the same way in the same run (targets: at
least 0.8x the bare loop's rate, lag p99 <= 1 s).

Guardians sit at 51.5 % (warning: 1 s checks) against one loopback tracker simulator and
write their audit rows to PostgreSQL. The bare loop runs a no-op local activity and a 1 s
timer. Lag = time between two consecutive checks of one workflow minus the 1 s interval
(workflow time: the guardian's `governance_check` rows, the bare loop's own record), over a
measurement window after a warm-up.

    python -m bench.guardian_fleet [--quick] [--guardians N] [--seconds S] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from itertools import pairwise

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench.guardian_bare_loop import BareLoop, bare_check


def _window(series: list[list[float]], start: float, end: float) -> tuple[int, list[float]]:
    count, lags = 0, []
    for times in series:
        inside = [t for t in sorted(times) if start <= t < end]
        count += len(inside)
        lags += [(b - a) - 1.0 for a, b in pairwise(inside)]
    return count, lags


async def _measure(env, start_all, collect, n: int, warmup: float, seconds: float) -> dict:
    from bench.guardian_support import percentile

    handles = await start_all(n)
    await asyncio.sleep(warmup)
    t0 = (await env.get_current_time()).timestamp()
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu1 = time.process_time()
    t1 = (await env.get_current_time()).timestamp()
    series = await collect(handles)
    await asyncio.gather(*[h.terminate("benchmark over") for h in handles])
    count, lags = _window(series, t0, t1)
    return {
        "workflows": n,
        "window_seconds": round(t1 - t0, 1),
        "checks_per_second": round(count / (t1 - t0), 1),
        "lag_p50_ms": round(percentile(lags, 50) * 1000, 1),
        "lag_p99_ms": round(percentile(lags, 99) * 1000, 1),
        "lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
        # CPU of this process (worker, simulator, client) per check; the Temporal server not included.
        "worker_cpu_ms_per_check": round((cpu1 - cpu0) * 1000 / max(1, count), 2),
    }


async def _run(quick: bool, guardians: list[int] | None, seconds: float | None) -> dict:
    from bench.guardian_support import dev_server, fresh_database, guardian_cfg, guardian_worker
    from govfleet.contracts.guardian import GuardianInput
    from govfleet.simulator import TrackerSimulator, start_simulator
    from workflows.guardian import GuardianWorkflow

    sizes = guardians or ([10] if quick else [50, 100])
    seconds = seconds or (5 if quick else 30)
    warmup = 3 if quick else 10
    figures: dict = {"quick": quick}
    with fresh_database() as database_url:
        async with dev_server() as env:
            client = env.client
            tq = f"bench-fleet-{uuid.uuid4().hex[:6]}"
            running = await start_simulator(TrackerSimulator())
            running.sim.set_reading(51.5)
            try:
                async with guardian_worker(
                    client, tq, database_url, extra_workflows=[BareLoop], extra_activities=[bare_check]
                ) as resources:

                    async def start_bare(count):
                        return await asyncio.gather(
                            *[
                                client.start_workflow(
                                    BareLoop.run, id=f"bench-bare-{uuid.uuid4().hex[:8]}", task_queue=tq
                                )
                                for _ in range(count)
                            ]
                        )

                    async def collect_bare(handles):
                        return await asyncio.gather(*[h.query(BareLoop.times_query) for h in handles])

                    async def start_guardians(count):
                        return await asyncio.gather(
                            *[
                                client.start_workflow(
                                    GuardianWorkflow.run,
                                    GuardianInput(
                                        config=guardian_cfg(running.url, gid, upsert_search_attributes=False)
                                    ),
                                    id=gid,
                                    task_queue=tq,
                                )
                                for gid in [f"bench-fleet-{uuid.uuid4().hex[:8]}" for _ in range(count)]
                            ]
                        )

                    async def collect_guardians(handles):
                        await asyncio.sleep(6)  # routine rows are written in batches at most 5 s old
                        ids = [h.id for h in handles]
                        async with resources.pool.connection() as conn:
                            cur = await conn.execute(
                                "SELECT guardian_id, array_agg(extract(epoch FROM timestamp)::float8) AS ts "
                                "FROM governance_events WHERE event_type = 'governance_check' "
                                "AND guardian_id = ANY(%s) GROUP BY guardian_id",
                                (ids,),
                            )
                            return [list(r["ts"]) for r in await cur.fetchall()]

                    for n in sizes:
                        bare = await _measure(env, start_bare, collect_bare, n, warmup, seconds)
                        guardian = await _measure(env, start_guardians, collect_guardians, n, warmup, seconds)
                        ratio = guardian["checks_per_second"] / max(0.001, bare["checks_per_second"])
                        figures[f"n{n}"] = {
                            "bare_loop": bare,
                            "guardian": guardian,
                            "ratio_to_bare_loop": round(ratio, 2),
                            "target_met": ratio >= 0.8 and guardian["lag_p99_ms"] <= 1000,
                        }
            finally:
                await running.stop()
    return figures


def run(quick: bool) -> dict:
    return asyncio.run(_run(quick, None, None))


def main(argv: list[str] | None = None) -> int:
    from bench.guardian_support import emit

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (10 workflows, 5 s)")
    p.add_argument(
        "--guardians",
        type=int,
        action="append",
        default=None,
        help="workflows per design (repeatable; default 50 and 100, quick 10)",
    )
    p.add_argument("--seconds", type=float, default=None, help="measurement window (default 30, quick 5)")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    f = asyncio.run(_run(args.quick, args.guardians, args.seconds))
    rows = []
    for key, size in f.items():
        if not key.startswith("n"):
            continue
        g, b = size["guardian"], size["bare_loop"]
        rows += [
            (f"{key}: guardians at 1 s", g["workflows"], f"window {g['window_seconds']:g} s after warm-up"),
            (f"{key}: guardian checks/s", g["checks_per_second"], "with audit writes and tracker fetches"),
            (f"{key}: guardian lag p50 ms", g["lag_p50_ms"], "gap between checks minus 1 s"),
            (f"{key}: guardian lag p99 ms", g["lag_p99_ms"], "target <= 1000"),
            (f"{key}: guardian cpu ms/check", g["worker_cpu_ms_per_check"], "worker + simulator process"),
            (f"{key}: bare loop iterations/s", b["checks_per_second"], "local activity + 1 s timer, same run"),
            (f"{key}: bare loop lag p99 ms", b["lag_p99_ms"], ""),
            (f"{key}: bare loop cpu ms/iter", b["worker_cpu_ms_per_check"], ""),
            (f"{key}: ratio to bare loop", size["ratio_to_bare_loop"], "target >= 0.8"),
        ]
    emit("guardian fleet", rows, f, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
