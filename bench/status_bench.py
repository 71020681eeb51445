"""Status API throughput and latency: `GET /api/v1/governance/status` beside a static-JSON
endpoint on the same server, in the same run (target: ≥ 0.5× its throughput, p99 ≤ 50 ms),
checking that every answer's upcoming runs are in the future.

One server process runs what `govfleet up` runs for the API: the fleet's worker (with the
`governance-status` workflow), and the API under uvicorn. The load comes from this process
through a small keep-alive HTTP/1.1 client (so the client is not the bottleneck), with a
fixed number of concurrent connections, one endpoint at a time:

- `static`: a constant JSON document through the same FastAPI app (the baseline);
- `status`: the real route (read model cached for the API's default TTL, upcoming runs
  computed per request from the request's clock, output validated against the contract);
- `status_uncached`: the same route keeping no copy: every request reads the status version,
  the database's facts and the status workflow's snapshot (concurrent requests of one version
  share them) and renders the contract again (what the route costs without its caches).

The repo-spec's charters are installed in Temporal as the reconciler writes them (upcoming runs
are Temporal's next action times), starting their runs on a task queue no worker polls.

An upcoming run is "in the past" when it is not after the moment the request was sent; the
repo-spec includes a cron firing every minute, so a run of more than a minute crosses fire times.
Temporal is a dev server started here; PostgreSQL is a fresh database on DATABASE_URL's (or
TEST_DATABASE_URL's) server, or an embedded one from `pgserver`.

    python -m bench.status_bench [--quick] [--seconds S] [--connections C] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench._common import write_json

SCHEDULES = """\
governance:
  schedules:
    - {charter: COMMUNITY, cron: "0 */6 * * *", timezone: UTC}
    - {charter: ENGINEERING, cron: "30 9 * * 1-5", timezone: Europe/Berlin}
    - {charter: TREASURY, cron: "0 12 * * 1", timezone: America/New_York}
    - {charter: MINUTELY, cron: "* * * * *", timezone: UTC}
"""


# --- the server process ----------------------------------------------------------------------


def _serve(temporal_address: str, database_url: str, spec_path: str, task_queue: str, port_queue) -> None:
    asyncio.run(_serve_async(temporal_address, database_url, spec_path, task_queue, port_queue))


async def _serve_async(temporal_address, database_url, spec_path, task_queue, port_queue) -> None:
    import logging

    from fastapi.responses import JSONResponse, Response

    from govfleet.api import create_app
    from govfleet.api.server import start_api
    from govfleet.api.service import StatusService
    from govfleet.contracts.status import StatusUpdate
    from govfleet.settings import load_config
    from govfleet.status_client import tell_status
    from govfleet.temporal import connect
    from workers.factory import build_worker
    from workers.resources import Resources

    logging.disable(logging.WARNING)
    config = load_config(
        environ={
            "REPO_SPEC_PATH": spec_path,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "TEMPORAL_ADDRESS": temporal_address,
            "DATABASE_URL": database_url,
        }
    )
    client = await connect(temporal_address)
    resources = await Resources.open(config, database_url, client, pool_size=4)
    from govfleet.contracts.governance_run import GOVERNANCE_RUN_WORKFLOW
    from schedules.desired import default_owner, desired_schedules
    from schedules.reconciler import build_schedule, schedule_memo

    owner = default_owner(config.spec)
    for d in desired_schedules(config.spec, task_queue + "-idle"):
        if d.workflow == GOVERNANCE_RUN_WORKFLOW:
            await client.create_schedule(d.schedule_id, build_schedule(d, owner), memo=schedule_memo(d, owner))
    async with build_worker(client, resources, task_queue=task_queue):
        await tell_status(client, task_queue, StatusUpdate(source="bench"))
        app = create_app(config, client=client, database_url=database_url)
        static_body = None
        uncached: StatusService | None = None

        @app.get("/bench/static", include_in_schema=False)
        async def static() -> JSONResponse:
            return JSONResponse(static_body)

        @app.get("/bench/status-uncached", include_in_schema=False)
        async def status_uncached() -> Response:
            body, _ = await uncached.status_json()
            return Response(body, media_type="application/json")

        api = await start_api(app)
        ctx = app.state.ctx
        uncached = StatusService(config, client, ctx.pool, cache_ttl=0)
        # Wait until the status workflow has rebuilt (a workflow answer, not the fallback).
        for _ in range(200):
            snap = await ctx.status.snapshot()
            if snap.source == "workflow":
                break
            ctx.status._cached = None
            await asyncio.sleep(0.1)
        status, _ = await ctx.status.status()
        static_body = status.model_dump(mode="json")  # same size and shape, computed once
        port_queue.put(api.port)
        await asyncio.Event().wait()  # until terminated


# --- the load generator ----------------------------------------------------------------------


class Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.past_at_send = 0
        self.past_at_receipt = 0
        self.checked = 0


def _check_upcoming(body: bytes, sent: datetime, received: datetime, result: Result) -> None:
    doc = json.loads(body)
    for run in doc["upcomingRuns"]:
        at = datetime.fromisoformat(run["nextRunAt"].replace("Z", "+00:00"))
        result.checked += 1
        if at <= sent:
            result.past_at_send += 1
        if at <= received:
            result.past_at_receipt += 1


async def _connection(port: int, path: str, deadline: float, result: Result, check: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode()
    try:
        while time.perf_counter() < deadline:
            sent = datetime.now(UTC)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - started)
            if head[9:12] != b"200":
                result.errors += 1
            elif check:
                _check_upcoming(body, sent, datetime.now(UTC), result)
    finally:
        writer.close()


async def _load(port: int, path: str, seconds: float, connections: int, check: bool) -> dict:
    warm = Result()
    await asyncio.gather(*[_connection(port, path, time.perf_counter() + 0.5, warm, False) for _ in range(connections)])
    result = Result()
    started = time.perf_counter()
    await asyncio.gather(*[_connection(port, path, started + seconds, result, check) for _ in range(connections)])
    elapsed = time.perf_counter() - started
    lat = sorted(result.latencies)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [lat[0]] * 99
    figures = {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2),
        "errors": result.errors,
    }
    if check:
        figures.update(
            upcoming_checked=result.checked,
            upcoming_in_past=result.past_at_send,
            upcoming_passed_in_flight=result.past_at_receipt,
        )
    return figures


# --- orchestration ---------------------------------------------------------------------------


def _fresh_database() -> tuple[str, callable]:
    import psycopg

    from govfleet import db

    server = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    cleanup = []
    if not server:
        import pgserver

        tmp = tempfile.mkdtemp(prefix="govfleet-bench-pg-")
        os.environ.setdefault("XDG_RUNTIME_DIR", tmp)
        pg = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        server = pg.get_uri()
        cleanup.append(pg.cleanup)
    name = f"govfleet_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    db.migrate(url)
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE billing_accounts SET balance_credits = 8246000000 WHERE id = 'cogni_system'")
        for i in range(12):
            t = now - timedelta(hours=12 - i)
            conn.execute(
                """INSERT INTO governance_runs (id, owner_user_id, title, started_at, updated_at, status)
                            VALUES (%s, 'cogni_system_principal', %s, %s, %s, 'success')""",
                (f"bench-run-{i:02d}", f"Community — run {i}", t, t + timedelta(seconds=40)),
            )

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for c in cleanup:
            c()

    return url, drop


async def _run(seconds: float, connections: int) -> dict:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from govfleet.temporal import SEARCH_ATTRIBUTES, temporal_cli_path

    database_url, drop = _fresh_database()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
    )
    spec = Path(tempfile.mkdtemp(prefix="govfleet-bench-")) / "repo-spec.yaml"
    spec.write_text(SCHEDULES)
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(
        target=_serve,
        args=(
            env.client.service_client.config.target_host,
            database_url,
            str(spec),
            f"bench-status-{uuid.uuid4().hex[:6]}",
            ports,
        ),
        daemon=True,
    )
    server.start()
    try:
        port = await asyncio.to_thread(ports.get, True, 90)
        static = await _load(port, "/bench/static", seconds, connections, False)
        status = await _load(port, "/api/v1/governance/status", seconds, connections, True)
        uncached = await _load(port, "/bench/status-uncached", seconds, connections, True)
    finally:
        server.terminate()
        server.join(10)
        await env.shutdown()
        drop()
    ratio = status["rps"] / static["rps"] if static["rps"] else 0.0
    return {
        "connections": connections,
        "seconds_per_endpoint": seconds,
        "static": static,
        "status": status,
        "status_uncached": uncached,
        "ratio_status_to_static": round(ratio, 3),
        "ratio_uncached_to_static": round(uncached["rps"] / static["rps"], 3) if static["rps"] else 0.0,
        "target_met": ratio >= 0.5
        and status["p99_ms"] <= 50
        and status["upcoming_in_past"] == 0
        and status["errors"] == 0,
    }


def run(quick: bool) -> dict:
    return asyncio.run(_run(3.0 if quick else 15.0, 16))


def print_table(figures: dict) -> None:
    rows = [("endpoint", "rps", "p50 ms", "p99 ms", "max ms", "errors", "upcoming in past")]
    for name in ("static", "status", "status_uncached"):
        f = figures[name]
        rows.append(
            (name, f["rps"], f["p50_ms"], f["p99_ms"], f["max_ms"], f["errors"], f.get("upcoming_in_past", "-"))
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print(
            "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )
    print()
    print(
        f"status / static throughput: {figures['ratio_status_to_static']}  (target ≥ 0.5; uncached: "
        f"{figures['ratio_uncached_to_static']})"
    )
    print(
        f"status p99: {figures['status']['p99_ms']} ms (target ≤ 50); upcoming runs checked: "
        f"{figures['status']['upcoming_checked']}, in the past when the request was sent: "
        f"{figures['status']['upcoming_in_past']}"
    )
    print(
        f"{figures['connections']} connections, {figures['seconds_per_endpoint']} s per endpoint; "
        f"target met: {figures['target_met']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 s per endpoint instead of 15")
    p.add_argument("--seconds", type=float, default=None, help="seconds of load per endpoint")
    p.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    p.add_argument("--json", default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    if seconds <= 0 or args.connections < 1:
        p.error("--seconds must be positive and --connections at least 1")
    figures = asyncio.run(_run(seconds, args.connections))
    print_table(figures)
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
