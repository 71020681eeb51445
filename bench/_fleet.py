"""Shared pieces of the fleet benchmarks (not a benchmark itself): real worker processes that
can be killed, a repo-spec for them, many guardians started at once, and what the fleet did,
read from PostgreSQL, the worker processes and their Prometheus metrics.

- `WorkerProcess`: `python -m bench._fleet_worker` (the fleet's worker with options), in a
  process group of its own, logging to a file, serving its metrics on a free port;
- `start_guardians`: many guardians, started with bounded concurrency;
- `check_series`: each guardian's check times from its `governance_check` rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.guardian_support import EXAMPLE_SPEC, REPO_ROOT
from govfleet.domain.eth import Account
from govfleet.embedded import die_with_parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiet_spec(directory: Path) -> Path:
    """The example repo-spec without notification channels (delivery is not measured here) and
    with an admin of its own (`govfleet worker` refuses the example's public demo keys)."""
    data = yaml.safe_load(EXAMPLE_SPEC.read_text())
    data["guardian"]["notifications"] = {}
    data["guardian"]["admins"] = [Account.create().address]
    path = directory / "repo-spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- worker processes ------------------------------------------------------------------


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log: Path
    metrics_port: int

    @property
    def identity(self) -> str:
        """The Temporal SDK's default identity, `<pid>@<host>`, recorded in the histories."""
        return f"{self.proc.pid}@{socket.gethostname()}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    async def wait_polling(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while "worker polling" not in self.log.read_text(errors="replace"):
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.proc.pid} did not start polling:\n{self.log_tail()}")
            await asyncio.sleep(0.1)

    def kill9(self) -> float:
        """SIGKILL; returns the moment (time.monotonic()) it was sent."""
        os.kill(self.proc.pid, signal.SIGKILL)
        at = time.monotonic()
        self.proc.wait(10)
        return at

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def cpu_seconds(self) -> float:
        import psutil

        try:
            t = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return t.user + t.system

    def rss_bytes(self) -> int:
        import psutil

        try:
            return psutil.Process(self.proc.pid).memory_info().rss
        except psutil.Error:
            return 0

    async def metrics(self, http) -> dict[str, float]:
        """The worker's Prometheus metrics, summed over label sets (name -> value)."""
        resp = await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10)
        out: dict[str, float] = {}
        for line in resp.text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
        return out


def start_worker(
    *,
    address: str,
    database_url: str,
    task_queue: str,
    spec_path: Path,
    log_dir: Path,
    sticky_seconds: float | None = None,
    max_cached: int | None = None,
    max_tasks: int | None = None,
) -> WorkerProcess:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "GOVFLEET_"))}
    env.update(
        TEMPORAL_ADDRESS=address,
        DATABASE_URL=database_url,
        TEMPORAL_TASK_QUEUE=task_queue,
        REPO_SPEC_PATH=str(spec_path),
        METRICS_PORT=str(port),
        METRICS_HOST="127.0.0.1",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",  # "worker polling" is an INFO line
    )
    args = [sys.executable, "-m", "bench._fleet_worker"]
    if sticky_seconds is not None:
        args += ["--sticky-seconds", str(sticky_seconds)]
    if max_cached is not None:
        args += ["--max-cached", str(max_cached)]
    if max_tasks is not None:
        args += ["--max-tasks", str(max_tasks)]
    log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log", dir=log_dir)[1])
    with open(log, "ab") as out:
        # Its own process group (a kill reaches nothing else); it dies with the benchmark.
        proc = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    return WorkerProcess(proc, log, port)


# --- guardians -------------------------------------------------------------------------


async def start_guardians(client, task_queue: str, configs: list, *, task_timeout, concurrency: int = 32) -> list:
    from govfleet.contracts.guardian import GuardianInput
    from workflows.guardian import GuardianWorkflow

    gate = asyncio.Semaphore(concurrency)

    async def one(cfg):
        async with gate:
            return await client.start_workflow(
                GuardianWorkflow.run,
                GuardianInput(config=cfg),
                id=cfg.guardian_id,
                task_queue=task_queue,
                task_timeout=task_timeout,
            )

    return await asyncio.gather(*[one(c) for c in configs])


def fast_rules():
    """The example's rules with 1 s checks at the normal level (no alert needed to go fast)."""
    from bench.guardian_support import load_example_config

    return load_example_config().spec.guardian.rules.model_copy(update={"monitoring_interval_normal": 1})


async def start_fleet(
    client, task_queue: str, tracker_url: str, *, slow: int, fast: int, spread: float, task_timeout
) -> tuple[list, list, list]:
    """`fast` guardians at 1 s at once, then `slow` guardians at the normal 30 s spread over
    `spread` seconds in small batches (a fleet that grew over time, not one that checks in
    lockstep). Returns (fast configs, slow configs, handles)."""
    from bench.guardian_support import guardian_cfg

    def cfg(prefix: str, **over):
        return guardian_cfg(tracker_url, f"{prefix}-{uuid.uuid4().hex[:8]}", upsert_search_attributes=False, **over)

    fast_cfgs = [cfg("fleet-1s", rules=fast_rules()) for _ in range(fast)]
    slow_cfgs = [cfg("fleet-30s") for _ in range(slow)]
    started = time.monotonic()
    handles = await start_guardians(client, task_queue, fast_cfgs, task_timeout=task_timeout)
    batches = max(1, int(spread))
    for i in range(batches):
        part = slow_cfgs[i * slow // batches : (i + 1) * slow // batches]
        handles += await start_guardians(client, task_queue, part, task_timeout=task_timeout)
        await asyncio.sleep(max(0.0, started + (i + 1) * spread / batches - time.monotonic()))
    return fast_cfgs, slow_cfgs, handles


async def terminate_all(handles: list, concurrency: int = 32) -> None:
    from temporalio.service import RPCError

    gate = asyncio.Semaphore(concurrency)

    async def one(h):
        async with gate:
            with contextlib.suppress(RPCError):
                await h.terminate("benchmark over")

    await asyncio.gather(*[one(h) for h in handles])


async def check_series(pool, ids: list[str]) -> dict[str, list[float]]:
    """guardian id -> its check times (epoch seconds, workflow time), oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT guardian_id, array_agg(extract(epoch FROM timestamp)::float8 ORDER BY timestamp) AS ts "
            "FROM governance_events WHERE event_type = 'governance_check' AND guardian_id = ANY(%s) "
            "GROUP BY guardian_id",
            (ids,),
        )
        rows = await cur.fetchall()
        await conn.rollback()
    return {r["guardian_id"]: list(r["ts"]) for r in rows}


async def table_bytes(pool, tables: tuple[str, ...] = ("governance_events", "governance_alerts")) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(t::regclass)), 0)::bigint AS b FROM unnest(%s::text[]) AS t",
            (list(tables),),
        )
        row = await cur.fetchone()
        await conn.rollback()
    return int(row["b"])


def lags(series: dict[str, list[float]], interval: float, start: float, end: float) -> list[float]:
    """Gap between consecutive checks inside [start, end), minus the interval (seconds)."""
    out: list[float] = []
    for times in series.values():
        inside = [t for t in times if start <= t < end]
        out += [(b - a) - interval for a, b in itertools.pairwise(inside)]
    return out


def describe(values: list[float], scale: float = 1.0, digits: int = 1) -> dict[str, Any]:
    from bench.guardian_support import percentile

    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * scale, digits),
        "p90": round(percentile(values, 90) * scale, digits),
        "p99": round(percentile(values, 99) * scale, digits),
        "max": round(max(values) * scale, digits),
    }
