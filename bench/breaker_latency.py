"""Push to breaker: a reading pushed to the HTTP API (`POST /guardian/readings`) drops holder
control to 48 %; the figure is the time until the breaker target (the loopback simulator)
receives the pause call, with a fleet of guardians running on the same two worker processes
(target p99 <= 50 ms), and where that time goes:

- `http_to_signal`: from sending the HTTP request to the signal in the guardian's history
  (the API's parsing and checks, the signal RPC, the server writing it);
- `signal_to_task`: until a worker starts the workflow task that handles it (the server's
  dispatch and the worker's poll; on a busy worker, its backlog);
- `task`: the workflow task itself (the decision, the breaker calls scheduled);
- `task_to_activity`: until the breaker activity starts (eager dispatch to the same worker,
  else through the server);
- `activity_to_target`: until the target receives the call (the activity's HTTP request).

Stage boundaries are the event times of the guardian's history (the dev server runs on this
machine, so its clock is this machine's); the request and the target's receipt are timed here.
Each trial starts the probe guardian afresh (a paused guardian stays paused), with a tracker
simulator of its own.

    python -m bench.breaker_latency [--quick] [--trials N] [--slow N] [--fast N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

import yaml

from bench._common import fill_defaults
from bench._fleet import describe, quiet_spec, start_fleet, start_worker, terminate_all
from bench.guardian_support import dev_server, fresh_database, guardian_cfg
from govfleet.simulator import TrackerSimulator, reading_body, start_simulator

STAGES = ("http_to_signal", "signal_to_task", "task", "task_to_activity", "activity_to_target")
PUSH_TOKEN = "bench-push-token"


def _ts(event) -> float:
    return event.event_time.ToMicroseconds() / 1e6


async def _breakdown(handle, t0: float, received: float) -> dict[str, float]:
    """Stage durations (ms) from the history events that follow the pushed reading."""
    from temporalio.api.enums.v1 import EventType as E

    signaled = task_started = task_completed = activity_started = None
    scheduled: set[int] = set()
    async for e in handle.fetch_history_events():
        t = _ts(e)
        if e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED and signaled is None and t >= t0 - 0.5:
            signaled = t
        elif signaled is not None and e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_STARTED and task_started is None:
            task_started = t
        elif task_started is not None and e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and not task_completed:
            task_completed = t
        elif task_completed is not None and e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "guardian_call_breaker":
                scheduled.add(e.event_id)
        elif (
            e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and activity_started is None
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
        ):
            activity_started = t
    marks = [t0, signaled, task_started, task_completed, activity_started, received]
    if any(m is None for m in marks):
        raise RuntimeError(f"incomplete history for the trial: {marks}")
    return {name: round((b - a) * 1000, 1) for name, a, b in zip(STAGES, marks, marks[1:], strict=False)}


async def _trial(ctx: dict, http) -> dict[str, float]:
    from govfleet.contracts.guardian import GUARDIAN_TASK_TIMEOUT, GuardianInput
    from workflows.guardian import GuardianWorkflow

    # A simulator of its own: a breaker call of an earlier trial that lands late cannot count.
    running = await start_simulator(TrackerSimulator())
    sim = running.sim
    sim.set_reading(70.5)
    cfg = guardian_cfg(running.url, ctx["guardian_id"], upsert_search_attributes=False)
    handle = await ctx["client"].start_workflow(
        GuardianWorkflow.run,
        GuardianInput(config=cfg),
        id=ctx["guardian_id"],
        task_queue=ctx["task_queue"],
        task_timeout=GUARDIAN_TASK_TIMEOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not sim.reading_arrivals:  # its first check (no query: a busy worker answers late)
            if time.monotonic() > deadline:
                raise RuntimeError("the probe guardian did not check within 60 s")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        sim.set_reading(48.0)
        wall_minus_mono = time.time() - time.monotonic()
        t0 = time.time()
        resp = await http.post(
            f"{ctx['api'].url}/guardian/readings",
            json=reading_body(48.0),
            headers={"Authorization": f"Bearer {PUSH_TOKEN}"},
        )
        if resp.status_code != 202:
            raise RuntimeError(f"push answered {resp.status_code}: {resp.text[:200]}")
        if not await sim.wait_for(lambda s: bool(s.pauses("redemption-algorithm")), timeout=30):
            raise RuntimeError("the pushed drop never reached the breaker target")
        received = sim.pauses("redemption-algorithm")[0].received_at + wall_minus_mono
        # A retried activity's start is written to the history when it completes.
        deadline = time.monotonic() + 10
        while True:
            try:
                stages = await _breakdown(handle, t0, received)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        stages["total"] = round((received - t0) * 1000, 1)
        return stages
    finally:
        deadline = time.monotonic() + 5  # let the other target's call land before the next trial
        while time.monotonic() < deadline and len(sim.pauses()) < 2:
            await asyncio.sleep(0.02)
        await terminate_all([handle])
        await running.stop()
        _forget(ctx["database_url"], ctx["guardian_id"])


def _forget(database_url: str, guardian_id: str) -> None:
    """Each trial starts the probe guardian afresh: the next one must not take back this one's
    pause from the database (a guardian started again after a terminate does: guardian.md)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("system_pauses", "governance_alerts", "forensic_audits", "admin_nonces"):
            conn.execute(f"DELETE FROM {table} WHERE guardian_id = %s", (guardian_id,))


async def _run(args) -> dict:
    import httpx

    from govfleet.api.app import create_app
    from govfleet.api.server import start_api
    from govfleet.contracts.guardian import GUARDIAN_TASK_TIMEOUT, guardian_workflow_id
    from govfleet.settings import load_config

    work = Path(tempfile.mkdtemp(prefix="govfleet-bench-breaker-"))
    spec = quiet_spec(work)
    data = yaml.safe_load(spec.read_text())
    name = f"latency{uuid.uuid4().hex[:6]}"
    data["guardian"]["name"] = name
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    figures: dict = {"quick": args.quick, "background": {"at_30s": args.slow, "at_1s": args.fast}}
    with fresh_database() as database_url:
        async with dev_server() as env:
            client = env.client
            tq = f"bench-breaker-{uuid.uuid4().hex[:6]}"
            workers = [
                start_worker(
                    address=client.service_client.config.target_host,
                    database_url=database_url,
                    task_queue=tq,
                    spec_path=spec,
                    log_dir=work,
                )
                for _ in range(2)
            ]
            load_sim = await start_simulator(TrackerSimulator())
            load_sim.sim.set_reading(70.5)
            config = load_config(environ={"GUARDIAN_PUSH_TOKEN": PUSH_TOKEN}, repo_spec_path=spec)
            api = await start_api(create_app(config, client=client, database_url=database_url, pool_size=2))
            background: list = []
            try:
                await asyncio.gather(*[w.wait_polling() for w in workers])
                _, _, background = await start_fleet(
                    client,
                    tq,
                    load_sim.url,
                    slow=args.slow,
                    fast=args.fast,
                    spread=args.spread,
                    task_timeout=GUARDIAN_TASK_TIMEOUT,
                )
                await asyncio.sleep(args.warmup)
                ctx = {
                    "client": client,
                    "task_queue": tq,
                    "api": api,
                    "guardian_id": guardian_workflow_id(name),
                    "database_url": database_url,
                }
                async with httpx.AsyncClient(timeout=30) as http:
                    await _trial(ctx, http)  # warm-up: connections, the API's first requests
                    trials, failures = [], []
                    for _ in range(args.trials):
                        try:
                            trials.append(await _trial(ctx, http))
                        except RuntimeError as exc:  # counted, the run goes on
                            failures.append(str(exc))
                figures["failed_trials"] = failures
                totals = [t["total"] for t in trials]
                figures["trials"] = len(trials)
                figures["total_ms"] = describe(totals, 1, 1)
                figures["stages_ms"] = {s: describe([t[s] for t in trials], 1, 1) for s in STAGES}
                figures["target_met"] = not failures and figures["total_ms"].get("p99", 1e9) <= 50
            finally:
                await terminate_all(background)
                await api.stop()
                for w in workers:
                    w.stop()
                await load_sim.stop()
    return figures


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (a smoke test)")
    p.add_argument("--trials", type=int, default=None, help="pushes (default 40, quick 5)")
    p.add_argument("--slow", type=int, default=None, help="background guardians at 30 s (default 1000, quick 10)")
    p.add_argument("--fast", type=int, default=None, help="background guardians at 1 s (default 100, quick 2)")
    p.add_argument("--spread", type=float, default=None, help="seconds over which the 30 s ones start (30)")
    p.add_argument("--warmup", type=float, default=None, help="seconds after the fleet started (default 20)")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    fill_defaults(
        args,
        trials=(5, 40),
        slow=(10, 1000),
        fast=(2, 100),
        spread=(2, 30),
        warmup=(2, 20),
    )
    return args


def run(quick: bool) -> dict:
    return asyncio.run(_run(_parse(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    from bench.guardian_support import emit

    args = _parse(argv)
    f = asyncio.run(_run(args))
    bg = f["background"]
    rows = [
        (
            "push -> breaker p50 / p99 ms",
            f"{f['total_ms'].get('p50')} / {f['total_ms'].get('p99')}",
            f"{f['trials']} pushes ({len(f['failed_trials'])} failed); beside {bg['at_30s']} guardians at 30 s"
            f" + {bg['at_1s']} at 1 s; target p99 <= 50",
        ),
    ]
    for stage, d in f["stages_ms"].items():
        rows.append((f"  {stage} p50 / p99 ms", f"{d.get('p50')} / {d.get('p99')}", ""))
    emit("push to breaker, with where the time goes", rows, f, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
