"""Failover: a guardian checking every second on a fleet of two worker processes; kill -9 of
the worker running it; the figure is the time from the kill to its next check (the next
reading the tracker serves), over several trials, for each setting of the two timeouts that
bound it — the workers' sticky-queue schedule-to-start timeout and the guardian's workflow
task timeout — with what each setting costs under load (workflow-task replays and worker CPU
per check, the fleet running beside it).

Trials per setting:
- `between`: the kill lands at a random moment between two checks (the usual case): the
  next task waits on the dead worker's sticky queue for the sticky timeout;
- `in_flight`: the kill lands while a check is running (the tracker holds the reading for
  0.5 s, so the workflow task is open): the task is retried after the task timeout;
- `breaker` (once per run, at the chosen setting): the kill lands on the worker running a
  breaker call whose answer is late; the call is retried, and the target sees it applied
  exactly once (every other arrival a duplicate of the same idempotency key).

Targets (chosen setting): next check within 3 s of the kill (median), never more than 5 s.

Temporal: a dev server started here; PostgreSQL as in bench/guardian_support.py; the
workers are real processes (`bench._fleet_worker`); the tracker is the loopback simulator.

    python -m bench.guardian_failover [--quick] [--setting STICKY,TASK[,MAX_TASKS] ...] [--trials N]
        [--load-1s N] [--load-30s N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench._common import fill_defaults
from bench._fleet import (
    WorkerProcess,
    check_series,
    describe,
    fast_rules,
    lags,
    quiet_spec,
    start_fleet,
    start_guardians,
    start_worker,
    terminate_all,
)
from bench.guardian_support import dev_server, fresh_database, guardian_cfg
from govfleet.simulator import TrackerSimulator, start_simulator

# The workers' Prometheus counter read around the load window: a workflow task for a workflow
# not in the worker's cache, which the worker replays from the start of its history.
CACHE_MISSES = "temporal_sticky_cache_miss"


async def _owner(handle) -> str | None:
    """The identity of the worker that ran the guardian's latest workflow task."""
    from temporalio.api.enums.v1 import EventType

    owner = None
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            owner = e.workflow_task_started_event_attributes.identity
    return owner


class Fleet:
    """Two worker processes on one task queue; a killed one is replaced."""

    def __init__(self, ctx: dict, sticky: float, tq: str, max_tasks: int | None = None):
        self.ctx, self.sticky, self.tq, self.max_tasks = ctx, sticky, tq, max_tasks
        self.workers: list[WorkerProcess] = []
        self.retired: list[WorkerProcess] = []

    def _start(self) -> WorkerProcess:
        w = start_worker(
            address=self.ctx["address"],
            database_url=self.ctx["database_url"],
            task_queue=self.tq,
            spec_path=self.ctx["spec"],
            log_dir=self.ctx["logs"],
            sticky_seconds=self.sticky,
            max_tasks=self.max_tasks,
        )
        self.workers.append(w)
        return w

    async def fill(self) -> None:
        while len(self.workers) < 2:
            self._start()
        await asyncio.gather(*[w.wait_polling() for w in self.workers])

    def by_identity(self, ident: str | None) -> WorkerProcess | None:
        return next((w for w in self.workers if w.identity == ident), None)

    def kill(self, w: WorkerProcess) -> float:
        at = w.kill9()
        self.workers.remove(w)
        self.retired.append(w)
        return at

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers.clear()

    def cpu_seconds(self) -> float:
        return sum(w.cpu_seconds() for w in self.workers)

    async def counters(self, http) -> dict[str, float]:
        got = await asyncio.gather(*[w.metrics(http) for w in self.workers])
        return {CACHE_MISSES: sum(m.get(CACHE_MISSES, 0.0) for m in got)}


async def _wait_checks(sim: TrackerSimulator, n: int, timeout: float = 60) -> None:
    since = time.monotonic()
    deadline = since + timeout
    while sum(1 for a in sim.reading_arrivals if a > since) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("the probe guardian stopped checking")
        await asyncio.sleep(0.02)


async def _kill_trial(fleet: Fleet, handle, sim: TrackerSimulator, kind: str, rng: random.Random) -> float:
    await fleet.fill()
    victim = None
    for _ in range(10):  # the latest task may still be the one a killed worker held
        await _wait_checks(sim, 2)
        victim = fleet.by_identity(await _owner(handle))
        if victim is not None:
            break
    if victim is None:
        raise RuntimeError("the probe guardian's worker is not one of the fleet's")
    if kind == "in_flight":
        sim.reading_delay_seconds = 0.5
        await _wait_checks(sim, 1)
        await asyncio.sleep(0.1)  # the reading is held: the check's workflow task is open
    else:
        await _wait_checks(sim, 1)
        await asyncio.sleep(rng.uniform(0.05, 0.95))
    killed_at = fleet.kill(victim)
    sim.reading_delay_seconds = 0.0
    deadline = time.monotonic() + 60
    while (got := sim.first_reading_after(killed_at + 0.002)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no check within 60 s of the kill ({kind})")
        await asyncio.sleep(0.01)
    return got - killed_at


async def _breaker_trial(fleet: Fleet, ctx: dict, task_timeout: timedelta) -> dict:
    """Kill the worker running a breaker call whose answer is late: applied exactly once."""
    from workflows.guardian import GuardianWorkflow

    await fleet.fill()
    sim = TrackerSimulator()
    running = await start_simulator(sim)
    sim.set_reading(70.5)
    gid = f"bench-failover-breaker-{uuid.uuid4().hex[:6]}"
    cfg = guardian_cfg(running.url, gid, rules=fast_rules(), upsert_search_attributes=False)
    [handle] = await start_guardians(ctx["client"], fleet.tq, [cfg], task_timeout=task_timeout)
    try:
        await _wait_checks(sim, 3)
        sim.breaker_delay_seconds = 3.0
        sim.set_reading(48.0)  # emergency: both targets are paused
        while not sim.calls:
            await asyncio.sleep(0.01)
        desc = await handle.describe()
        pending = list(desc.raw_description.pending_activities)
        ident = next((p.last_worker_identity for p in pending if p.last_worker_identity), None)
        victim = fleet.by_identity(ident)
        if victim is None:
            raise RuntimeError(f"no fleet worker runs the breaker call (pending: {ident!r})")
        killed_at = fleet.kill(victim)
        sim.breaker_delay_seconds = 0.0
        first_key = sim.calls[0].idempotency_key
        await fleet.fill()

        def landed() -> bool:
            return len(sim.pauses()) == 2 and sum(1 for c in sim.calls if c.idempotency_key == first_key) >= 2

        deadline = time.monotonic() + 90
        while not landed():
            if time.monotonic() > deadline:
                raise RuntimeError("the breaker calls did not land after the kill")
            await asyncio.sleep(0.05)
        while (await handle.query(GuardianWorkflow.stats)).pending_breaker_calls:
            await asyncio.sleep(0.1)
        retried = [c for c in sim.calls if c.received_at > killed_at]
        per_target = {}
        for c in sim.calls:
            per_target.setdefault(c.service, []).append(c)
        return {
            "targets": len(per_target),
            "applied_per_target": sorted(len(sim.pauses(s)) for s in per_target),
            "arrivals_per_target": sorted(len(v) for v in per_target.values()),
            "one_key_per_target": all(len({c.idempotency_key for c in v}) == 1 for v in per_target.values()),
            "exactly_once": all(len(sim.pauses(s)) == 1 for s in per_target),
            "retry_after_kill_s": round(min(c.received_at for c in retried) - killed_at, 2) if retried else None,
        }
    finally:
        await terminate_all([handle])
        await running.stop()


async def _task_timeouts(client, ids: list[str], t0: float, t1: float) -> int:
    """Workflow tasks that timed out (schedule-to-start on a sticky queue, or start-to-close)
    in [t0, t1): each sends the workflow to another poll, often to a full replay."""
    from temporalio.api.enums.v1 import EventType

    count = 0
    for gid in ids:
        async for e in client.get_workflow_handle(gid).fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                count += t0 <= e.event_time.ToMicroseconds() / 1e6 < t1
    return count


async def _load_window(fleet: Fleet, ctx: dict, ids_1s: list[str], ids_30s: list[str], seconds: float) -> dict:
    """Worker CPU and replays per check while the fleet runs undisturbed."""
    pool, http, env = ctx["pool"], ctx["http"], ctx["env"]
    t0 = (await env.get_current_time()).timestamp()
    cpu0, before = fleet.cpu_seconds(), await fleet.counters(http)
    await asyncio.sleep(seconds)
    cpu1, after = fleet.cpu_seconds(), await fleet.counters(http)
    t1 = (await env.get_current_time()).timestamp()
    await asyncio.sleep(6)  # routine rows of 1 s checks are written in batches at most 5 s old
    s1 = await check_series(pool, ids_1s)
    s30 = await check_series(pool, ids_30s)
    timeouts = await _task_timeouts(ctx["client"], [*ids_1s, *ids_30s], t0, t1)
    checks = sum(1 for ts in [*s1.values(), *s30.values()] for t in ts if t0 <= t < t1)
    return {
        "window_s": round(t1 - t0, 1),
        "checks": checks,
        "worker_cpu_ms_per_check": round((cpu1 - cpu0) * 1000 / max(1, checks), 2),
        "replays_per_1000_checks": round((after[CACHE_MISSES] - before[CACHE_MISSES]) * 1000 / max(1, checks), 2),
        "task_timeouts_per_1000_checks": round(timeouts * 1000 / max(1, checks), 2),
        "lag_1s_ms": describe(lags(s1, 1.0, t0, t1), 1000, 0),
        "lag_30s_ms": describe(lags(s30, 30.0, t0, t1), 1000, 0),
    }


async def _setting(ctx: dict, setting: tuple[float, float, int], args, rng: random.Random) -> dict:
    sticky, task, slots = setting
    tq = f"bench-failover-{uuid.uuid4().hex[:6]}"
    task_timeout = timedelta(seconds=task)
    fleet = Fleet(ctx, sticky, tq, slots)
    load: list = []
    probe_running = None
    try:
        await fleet.fill()
        cfgs_1s, cfgs_30s, load = await start_fleet(
            ctx["client"],
            tq,
            ctx["load_sim"].url,
            slow=args.load_30s,
            fast=args.load_1s,
            spread=min(30.0, args.load_30s / 30),
            task_timeout=task_timeout,
        )
        figures: dict = {"sticky_s": sticky, "task_timeout_s": task, "max_concurrent_workflow_tasks": slots}
        if load:
            await asyncio.sleep(args.warmup)
            figures["under_load"] = await _load_window(
                fleet, ctx, [c.guardian_id for c in cfgs_1s], [c.guardian_id for c in cfgs_30s], args.window
            )
        sim = TrackerSimulator()
        probe_running = await start_simulator(sim)
        sim.set_reading(70.5)
        gid = f"bench-failover-{uuid.uuid4().hex[:6]}"
        cfg = guardian_cfg(probe_running.url, gid, rules=fast_rules(), upsert_search_attributes=False)
        [probe] = await start_guardians(ctx["client"], tq, [cfg], task_timeout=task_timeout)
        gaps: dict[str, list[float]] = {"between": [], "in_flight": []}
        failures: list[str] = []
        for kind, n in (("between", args.trials), ("in_flight", args.in_flight)):
            for _ in range(n):
                try:
                    gaps[kind].append(await _kill_trial(fleet, probe, sim, kind, rng))
                except RuntimeError as exc:  # counted against the setting, the run goes on
                    failures.append(str(exc))
        figures["failed_trials"] = failures
        allg = gaps["between"] + gaps["in_flight"]
        figures["next_check_after_kill_s"] = {
            "between": describe(gaps["between"], 1, 2),
            "in_flight": describe(gaps["in_flight"], 1, 2),
            "all": describe(allg, 1, 2),
            "trials": [round(g, 2) for g in allg],
        }
        figures["target_met"] = not failures and bool(allg) and describe(allg)["p50"] <= 3.0 and max(allg) <= 5.0
        if args.breaker:
            try:
                figures["breaker_in_flight"] = await _breaker_trial(fleet, ctx, task_timeout)
            except RuntimeError as exc:
                figures["breaker_in_flight"] = {"exactly_once": False, "error": str(exc)}
        await terminate_all([probe])
        return figures
    finally:
        await terminate_all(load)
        fleet.stop()
        if probe_running is not None:
            await probe_running.stop()


async def _run(args) -> dict:
    import httpx

    from govfleet import db

    rng = random.Random(7)
    figures: dict = {"quick": args.quick, "settings": []}
    logs = Path(tempfile.mkdtemp(prefix="govfleet-bench-failover-"))
    with fresh_database() as database_url:
        async with dev_server() as env:
            pool = await db.create_pool(database_url, max_size=4)
            load_sim = await start_simulator(TrackerSimulator())
            load_sim.sim.set_reading(70.5)
            try:
                async with httpx.AsyncClient() as http:
                    ctx = {
                        "env": env,
                        "client": env.client,
                        "address": env.client.service_client.config.target_host,
                        "database_url": database_url,
                        "pool": pool,
                        "http": http,
                        "spec": quiet_spec(logs),
                        "logs": logs,
                        "load_sim": load_sim,
                    }
                    for setting in args.settings:
                        print(f"-- setting {setting}", file=sys.stderr, flush=True)
                        figures["settings"].append(await _setting(ctx, setting, args, rng))
                        print(json.dumps(figures["settings"][-1]), file=sys.stderr, flush=True)
            finally:
                await load_sim.stop()
                await pool.close()
    return figures


SDK_DEFAULTS = (10.0, 10.0, 100)  # sticky-queue timeout, workflow task timeout, concurrent workflow tasks


def _setting_arg(text: str) -> tuple[float, float, int]:
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"--setting {text!r}: give STICKY,TASK[,MAX_TASKS]")
    return float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else SDK_DEFAULTS[2]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run")
    p.add_argument(
        "--setting",
        action="append",
        default=None,
        help="STICKY,TASK[,MAX_TASKS]: sticky-queue and workflow task timeouts (s), concurrent workflow "
        "tasks per worker (repeatable; default: the SDK's 10,10,100 and the fleet's choice)",
    )
    p.add_argument("--trials", type=int, default=None, help="kills between checks per setting (default 6, quick 2)")
    p.add_argument("--in-flight", type=int, default=None, help="kills during a check per setting (default 3, quick 1)")
    p.add_argument("--load-1s", type=int, default=None, help="guardians at 1 s beside the probe (default 40)")
    p.add_argument("--load-30s", type=int, default=None, help="guardians at 30 s beside the probe (default 300)")
    p.add_argument("--warmup", type=float, default=None, help="seconds before the load window (default 20)")
    p.add_argument("--window", type=float, default=None, help="load window seconds (default 30)")
    p.add_argument("--no-breaker", dest="breaker", action="store_false", help="skip the breaker trial")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    return _defaults(args)


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    from govfleet.contracts.guardian import GUARDIAN_TASK_TIMEOUT
    from workers.factory import STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT

    chosen = (
        STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT.total_seconds(),
        GUARDIAN_TASK_TIMEOUT.total_seconds(),
        SDK_DEFAULTS[2],  # the fleet keeps the SDK's concurrent workflow tasks (fewer starve the sticky queue)
    )
    if args.setting:
        args.settings = [_setting_arg(s) for s in args.setting]
    else:
        args.settings = [chosen] if args.quick else [SDK_DEFAULTS, chosen]
    fill_defaults(
        args,
        trials=(2, 6),
        in_flight=(1, 3),
        # Beside the probe, a fleet this 2-core machine carries (about 50 checks a second).
        load_1s=(5, 40),
        load_30s=(0, 300),
        warmup=(3, 20),
        window=(5, 30),
    )
    return args


def run(quick: bool) -> dict:
    return asyncio.run(_run(_parse(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    from bench.guardian_support import emit

    args = _parse(argv)
    f = asyncio.run(_run(args))
    rows = []
    for s in f["settings"]:
        name = f"sticky {s['sticky_s']:g}s / task {s['task_timeout_s']:g}s / {s['max_concurrent_workflow_tasks']} tasks"
        g = s["next_check_after_kill_s"]
        rows += [
            (f"{name}: next check after kill p50 s", g["all"].get("p50"), f"{g['all']['n']} kills; target <= 3"),
            (f"{name}: next check after kill max s", g["all"].get("max"), "target <= 5"),
            (f"{name}: between checks p50 / max s", f"{g['between'].get('p50')} / {g['between'].get('max')}", ""),
            (f"{name}: during a check p50 / max s", f"{g['in_flight'].get('p50')} / {g['in_flight'].get('max')}", ""),
            (f"{name}: trials s", " ".join(f"{t:g}" for t in g["trials"]), f"{len(s['failed_trials'])} failed"),
        ]
        if "under_load" in s:
            u = s["under_load"]
            rows += [
                (f"{name}: worker cpu ms/check", u["worker_cpu_ms_per_check"], f"{u['checks']} checks under load"),
                (f"{name}: replays /1000 checks", u["replays_per_1000_checks"], "full-history replays (cache misses)"),
                (f"{name}: task timeouts /1000 checks", u["task_timeouts_per_1000_checks"], "workflow tasks timed out"),
                (f"{name}: lag p99 ms (1 s)", u["lag_1s_ms"].get("p99"), ""),
            ]
        if "breaker_in_flight" in s:
            b = s["breaker_in_flight"]
            rows += [
                (f"{name}: breaker call in flight at kill", "once" if b["exactly_once"] else "NOT ONCE", str(b)),
            ]
    emit("guardian failover (kill -9 of the worker running a 1 s guardian)", rows, f, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
