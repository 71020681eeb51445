"""Many DAOs, one fleet: 1,000 guardians checking every 30 s and 100 checking every second,
on two worker processes, with their audit writes to PostgreSQL and their readings from a
loopback tracker. Figures: check lag p50/p99 per class (target p99 <= 1 s), CPU per check
(workers; the Temporal dev server beside them), worker memory per guardian, history events
per check (target <= 7) and persistence growth per guardian-day (Temporal's history and
PostgreSQL's audit tables).

The guardians start spread over one 30 s interval (as a fleet that grew over time would be),
then a warm-up, then a measurement window. Lag = gap between two consecutive checks of one
guardian minus its interval (workflow time, from the `governance_check` rows). Memory per
guardian = growth of a worker's resident memory since it started polling / workflows in its
cache. Persistence: the bytes of a sample of histories per check, and the growth of the audit
tables (with their indexes) during the window per check, times the checks a guardian makes in a
day (Temporal keeps a closed run's history for the namespace's retention period; the audit log
is kept).

    python -m bench.fleet_scale [--quick] [--slow N] [--fast N] [--window S] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench._common import fill_defaults
from bench._fleet import (
    check_series,
    describe,
    lags,
    quiet_spec,
    start_fleet,
    start_worker,
    table_bytes,
    terminate_all,
)
from bench.guardian_support import dev_server, fresh_database, load_example_config
from govfleet.simulator import TrackerSimulator, start_simulator

DAY = 86_400


def _process_cpu(p) -> float:
    import psutil

    try:
        t = p.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


async def _histories(handles: list, sample: int, rng: random.Random) -> tuple[dict[str, tuple[int, int]], float]:
    """(events, bytes) of the current run's history of a sample of guardians, read from the
    server (no worker involved), and the time it was read at."""
    chosen = rng.sample(handles, min(sample, len(handles)))
    at = time.time()
    out = {}
    for h in chosen:
        history = await h.fetch_history()
        out[h.id] = (len(history.events), sum(e.ByteSize() for e in history.events))
    return out, at


def _per_check(histories: dict[str, tuple[int, int]], at: float, series: dict[str, list[float]]) -> dict:
    """History events and bytes per check up to `at`, for the sampled guardians still in their
    first run (a run that continued as new holds only part of the checks)."""
    events = size = checks = sampled = 0
    for gid, (length, nbytes) in histories.items():
        n = sum(1 for t in series.get(gid, []) if t <= at)
        if n and not _continued(length):
            events, size, checks, sampled = events + length, size + nbytes, checks + n, sampled + 1
    return {
        "sampled": sampled,
        "events_per_check": round(events / max(1, checks), 2),
        "bytes_per_check": round(size / max(1, checks)),
    }


def _continued(length: int) -> bool:
    from govfleet.contracts.guardian import GuardianConfig

    return length >= GuardianConfig().continue_as_new_after_events


async def _run(args) -> dict:
    import httpx
    import psutil

    from govfleet import db
    from govfleet.contracts.guardian import GUARDIAN_TASK_TIMEOUT
    from workers.factory import FAILOVER_OPTIONS

    rng = random.Random(11)
    slow_interval = load_example_config().spec.guardian.rules.monitoring_interval_normal
    work = Path(tempfile.mkdtemp(prefix="govfleet-bench-scale-"))
    figures: dict = {
        "quick": args.quick,
        "guardians": {"at_30s": args.slow, "at_1s": args.fast},
        "worker_processes": 2,
        "worker_options": {k: str(v) for k, v in FAILOVER_OPTIONS.items()},
        "guardian_task_timeout": str(GUARDIAN_TASK_TIMEOUT),
    }
    me = psutil.Process()
    with fresh_database() as database_url:
        async with dev_server() as env:
            server = next(c for c in me.children(recursive=True) if "temporal" in " ".join(c.cmdline()))
            client = env.client
            pool = await db.create_pool(database_url, max_size=4)
            sim = TrackerSimulator()
            running = await start_simulator(sim)
            sim.set_reading(70.5)  # excellent: 30 s guardians check every 30 s, no alerts
            tq = f"bench-scale-{uuid.uuid4().hex[:6]}"
            workers = [
                start_worker(
                    address=client.service_client.config.target_host,
                    database_url=database_url,
                    task_queue=tq,
                    spec_path=quiet_spec(work),
                    log_dir=work,
                )
                for _ in range(2)
            ]
            handles: list = []
            fast: list = []
            slow: list = []
            try:
                await asyncio.gather(*[w.wait_polling() for w in workers])
                await asyncio.sleep(2)
                rss_idle = [w.rss_bytes() for w in workers]
                started = time.monotonic()
                fast, slow, handles = await start_fleet(
                    client,
                    tq,
                    running.url,
                    slow=args.slow,
                    fast=args.fast,
                    spread=args.spread,
                    task_timeout=GUARDIAN_TASK_TIMEOUT,
                )
                figures["start_seconds"] = round(time.monotonic() - started, 1)
                await asyncio.sleep(args.warmup)

                t0 = (await env.get_current_time()).timestamp()
                cpu0 = [w.cpu_seconds() for w in workers]
                server0 = _process_cpu(server)
                pg0 = await table_bytes(pool)
                load0 = os.getloadavg()
                await asyncio.sleep(args.window)
                cpu1 = [w.cpu_seconds() for w in workers]
                server1 = _process_cpu(server)
                t1 = (await env.get_current_time()).timestamp()
                rss = [w.rss_bytes() for w in workers]
                hist_fast, at_fast = await _histories(handles[: len(fast)], 5, rng)
                hist_slow, at_slow = await _histories(handles[len(fast) :], 5, rng)
                async with httpx.AsyncClient() as http:
                    metrics = await asyncio.gather(*[w.metrics(http) for w in workers])
                load1 = os.getloadavg()
                await asyncio.sleep(7)  # routine rows of 1 s checks are written in batches at most 5 s old
                pg1 = await table_bytes(pool)

                s_fast = await check_series(pool, [c.guardian_id for c in fast])
                s_slow = await check_series(pool, [c.guardian_id for c in slow])
                n_fast = sum(1 for ts in s_fast.values() for t in ts if t0 <= t < t1)
                n_slow = sum(1 for ts in s_slow.values() for t in ts if t0 <= t < t1)
                checks = n_fast + n_slow
                window = t1 - t0
                lag_fast = lags(s_fast, 1.0, t0, t1)
                history_fast = _per_check(hist_fast, at_fast, s_fast)
                history_slow = _per_check(hist_slow, at_slow, s_slow)
                lag_slow = lags(s_slow, float(slow_interval), t0, t1)
                cached = [m.get("temporal_sticky_cache_size", 0.0) for m in metrics]
                per_check_pg = (pg1 - pg0) / max(1, checks)
                figures.update(
                    {
                        "window_seconds": round(window, 1),
                        "checks_per_second": round(checks / window, 1),
                        "expected_checks_per_second": round(args.fast + args.slow / slow_interval, 1),
                        "lag_1s_ms": describe(lag_fast, 1000, 0),
                        "lag_30s_ms": describe(lag_slow, 1000, 0),
                        "worker_cpu_ms_per_check": round((sum(cpu1) - sum(cpu0)) * 1000 / max(1, checks), 2),
                        "worker_cpu_cores": [round((b - a) / window, 2) for a, b in zip(cpu0, cpu1, strict=True)],
                        "server_cpu_ms_per_check": round((server1 - server0) * 1000 / max(1, checks), 2),
                        "cached_workflows": [int(c) for c in cached],
                        "worker_rss_mib": [round(r / 2**20, 1) for r in rss],
                        "worker_rss_idle_mib": [round(r / 2**20, 1) for r in rss_idle],
                        "worker_kib_per_guardian": round(
                            sum(r - i for r, i in zip(rss, rss_idle, strict=True)) / 1024 / max(1, sum(cached)), 1
                        ),
                        "history": {"at_1s": history_fast, "at_30s": history_slow},
                        "persistence_bytes_per_check": {
                            "temporal_history_1s": history_fast["bytes_per_check"],
                            "temporal_history_30s": history_slow["bytes_per_check"],
                            "postgres_audit": round(per_check_pg),
                        },
                        "persistence_mib_per_guardian_day": {
                            "at_30s": {
                                "temporal_history": round(
                                    history_slow["bytes_per_check"] * DAY / slow_interval / 2**20, 2
                                ),
                                "postgres": round(per_check_pg * DAY / slow_interval / 2**20, 2),
                            },
                            "at_1s": {
                                "temporal_history": round(history_fast["bytes_per_check"] * DAY / 2**20, 1),
                                "postgres": round(per_check_pg * DAY / 2**20, 1),
                            },
                        },
                        "load_average": [round(load0[0], 1), round(load1[0], 1)],
                    }
                )
                figures["target_met"] = {
                    "lag_p99_le_1s": max(figures["lag_1s_ms"].get("p99", 1e9), figures["lag_30s_ms"].get("p99", 1e9))
                    <= 1000,
                    "events_per_check_le_7": all(
                        v["events_per_check"] <= 7 for v in figures["history"].values() if v["sampled"]
                    ),
                }
            finally:
                await terminate_all(handles)
                for w in workers:
                    w.stop()
                await running.stop()
                await pool.close()
    return figures


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (a smoke test)")
    p.add_argument("--slow", type=int, default=None, help="guardians at 30 s (default 1000, quick 20)")
    p.add_argument("--fast", type=int, default=None, help="guardians at 1 s (default 100, quick 4)")
    p.add_argument("--spread", type=float, default=None, help="seconds over which the 30 s guardians start (30)")
    p.add_argument("--warmup", type=float, default=None, help="seconds after the last start (default 35)")
    p.add_argument("--window", type=float, default=None, help="measurement window seconds (default 60)")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    fill_defaults(
        args,
        slow=(20, 1000),
        fast=(4, 100),
        spread=(3, 30),
        warmup=(3, 35),
        window=(6, 60),
    )
    return args


def run(quick: bool) -> dict:
    return asyncio.run(_run(_parse(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    from bench.guardian_support import emit

    args = _parse(argv)
    f = asyncio.run(_run(args))
    g = f["guardians"]
    per_day = f["persistence_mib_per_guardian_day"]
    rows = [
        ("guardians at 30 s + at 1 s", f"{g['at_30s']} + {g['at_1s']}", "two worker processes, one dev server"),
        (
            "checks/s (expected)",
            f"{f['checks_per_second']} ({f['expected_checks_per_second']})",
            f"{f['window_seconds']:g} s window",
        ),
        (
            "lag p50 / p99 ms, 1 s guardians",
            f"{f['lag_1s_ms'].get('p50')} / {f['lag_1s_ms'].get('p99')}",
            "target p99 <= 1000",
        ),
        (
            "lag p50 / p99 ms, 30 s guardians",
            f"{f['lag_30s_ms'].get('p50')} / {f['lag_30s_ms'].get('p99')}",
            "target p99 <= 1000",
        ),
        ("worker cpu ms/check", f["worker_cpu_ms_per_check"], f"cores per worker {f['worker_cpu_cores']}"),
        ("dev server cpu ms/check", f["server_cpu_ms_per_check"], "Temporal on the same machine"),
        (
            "worker memory KiB/guardian",
            f["worker_kib_per_guardian"],
            f"rss MiB {f['worker_rss_mib']}, cached {f['cached_workflows']}",
        ),
        ("history events/check, 1 s", f["history"]["at_1s"]["events_per_check"], "target <= 7"),
        ("history events/check, 30 s", f["history"]["at_30s"]["events_per_check"], "target <= 7"),
        (
            "Temporal history MiB/guardian-day, 30 s / 1 s",
            f"{per_day['at_30s']['temporal_history']} / {per_day['at_1s']['temporal_history']}",
            "history bytes per check x checks per day",
        ),
        (
            "PostgreSQL MiB/guardian-day, 30 s / 1 s",
            f"{per_day['at_30s']['postgres']} / {per_day['at_1s']['postgres']}",
            f"{f['persistence_bytes_per_check']['postgres_audit']} B/check",
        ),
        ("load average before / after", f"{f['load_average'][0]} / {f['load_average'][1]}", "the machine is shared"),
    ]
    emit("fleet scale: guardians on two worker processes", rows, f, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
