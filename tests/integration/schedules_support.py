"""Support for the heartbeat, governance-run and reconcile tests: a recording HTTP server on
loopback (port 0), a fleet worker on the dev server with real Resources, ledger-consistent funding,
and the `govfleet` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from govfleet.contracts.notifications import SEND_NOTIFICATION_ACTIVITY, NotificationRequest
from govfleet.settings import Config
from tests.conftest import REPO_ROOT
from workers.factory import LogContextInterceptor
from workers.registry import activities_for, workflows
from workers.resources import Resources


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class LoopbackServer:
    """A real HTTP server on 127.0.0.1:<free port>. `responses` is a queue of status codes to
    answer with (then 200); every request is recorded."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.responses: list[int] = []
        self.reply_json: dict | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                outer.received.append(
                    Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = outer.responses.pop(0) if outer.responses else 200
                payload = json.dumps(outer.reply_json if outer.reply_json is not None else {"ok": True}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class NotificationLog:
    sent: list[NotificationRequest] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [n.kind for n in self.sent]


def _activity_names(acts: list) -> set[str]:
    names = set()
    for a in acts:
        defn = getattr(a, "__temporal_activity_definition", None)
        if defn is not None:
            names.add(defn.name)
    return names


@asynccontextmanager
async def fleet_worker(
    client: Client, config: Config, database_url: str, task_queue: str, interceptors=()
) -> AsyncIterator[tuple[Resources, NotificationLog]]:
    """The fleet's registered workflows and activities (workers/registry.py) on a fresh task queue,
    as the factory builds them, except that `send_notification` (the guardian's delivery path,
    tested in its own area) is replaced by a recorder so these tests see exactly what the
    heartbeat asked to send."""
    resources = await Resources.open(config, database_url, client, pool_size=4)
    log = NotificationLog()

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def record_notification(req: NotificationRequest) -> None:
        log.sent.append(req)

    acts = [a for a in activities_for(resources) if SEND_NOTIFICATION_ACTIVITY not in _activity_names([a])]
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=workflows(),
        activities=[*acts, record_notification],
        interceptors=[LogContextInterceptor(), *interceptors],
    )
    try:
        async with worker:
            yield resources, log
    finally:
        await resources.close()


def fund_system_tenant(database_url: str, amount: int) -> int:
    """Credit cogni_system through a ledger entry (balance = sum of entries stays true)."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        (balance,) = conn.execute(
            "SELECT balance_credits FROM billing_accounts WHERE id = 'cogni_system' FOR UPDATE"
        ).fetchone()
        after = balance + amount
        conn.execute("UPDATE billing_accounts SET balance_credits = %s WHERE id = 'cogni_system'", (after,))
        conn.execute(
            "INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference)"
            " VALUES ('cogni_system', %s, %s, 'test_funding', %s)",
            (amount, after, uuid.uuid4().hex),
        )
    return after


def system_balance(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT balance_credits FROM billing_accounts WHERE id = 'cogni_system'").fetchone()[0]


def govfleet(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`govfleet ARGS` in a fresh process with only `env` (plus PATH, HOME, LANG) set."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", *args],
        env={**base, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
