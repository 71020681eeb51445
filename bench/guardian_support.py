"""Shared pieces of the guardian benchmarks (not a benchmark itself: it has no `run`).

PostgreSQL: a fresh database on DATABASE_URL's server (or TEST_DATABASE_URL's), dropped
afterwards, else an embedded one from `pgserver`. Temporal: a dev server or the
time-skipping server from pip, started here. The tracker and the breaker targets are the
loopback tracker simulator. Notifications go to a sink activity that only counts them
(delivery is not what these benchmarks measure).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from govfleet.contracts.notifications import NotificationRequest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = REPO_ROOT / ".cogni" / "repo-spec.yaml"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg

    from govfleet import db

    server = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    pg = None
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
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if pg is not None:
            pg.cleanup()


def load_example_config():
    from govfleet.settings import load_config

    return load_config(environ={}, repo_spec_path=EXAMPLE_SPEC)


@asynccontextmanager
async def dev_server(extra_args: list[str] | None = None) -> AsyncIterator:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from govfleet.temporal import SEARCH_ATTRIBUTES, temporal_cli_path

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=extra_args or [],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from govfleet.temporal import test_server_path

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=pydantic_data_converter
    )
    try:
        yield env
    finally:
        await env.shutdown()


class NotificationSink:
    """Stands in for the notification channels: counts requests."""

    def __init__(self) -> None:
        self.count = 0

    def activity(self):
        from temporalio import activity

        from govfleet.contracts.notifications import SEND_NOTIFICATION_ACTIVITY

        @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
        async def send_notification(req: NotificationRequest) -> None:
            self.count += 1

        return send_notification


@asynccontextmanager
async def guardian_worker(
    client,
    task_queue: str,
    database_url: str,
    *,
    extra_workflows=(),
    extra_activities=(),
    pool_size: int = 10,
    **worker_kwargs,
) -> AsyncIterator:
    from temporalio.worker import Worker

    from activities.guardian import GuardianActivities
    from workers.resources import Resources
    from workflows.guardian import GuardianWorkflow

    config = load_example_config()
    resources = await Resources.open(config, database_url, client, pool_size=pool_size)
    acts = GuardianActivities(resources)
    sink = NotificationSink()
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[GuardianWorkflow, *extra_workflows],
            activities=[
                acts.fetch_reading,
                acts.record,
                acts.call_breaker,
                acts.probe_breaker,
                acts.restore,
                sink.activity(),
                *extra_activities,
            ],
            **worker_kwargs,
        ):
            yield resources
    finally:
        await resources.close()


def guardian_cfg(sim_url: str, guardian_id: str, **overrides):
    from govfleet.domain.guardian.models import BreakerTarget
    from govfleet.repo_spec import guardian_config

    example = load_example_config().spec
    spec = example.guardian
    breakers = [
        BreakerTarget(name="redemption-algorithm", url=sim_url, scope="redemptions"),
        BreakerTarget(name="sol-treasury-core", url=sim_url, scope="everything"),
    ]
    return guardian_config(
        spec, example.cogni_dao, guardian_id=guardian_id, tracker_url=sim_url, breakers=breakers, **overrides
    )


def emit(title: str, rows: list[tuple[str, object, str]], figures: dict, json_path: str | None) -> None:
    """Print a table (figure, value, note) and write the JSON figures when asked."""
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    print(f"{'figure':<{width}}  {'value':>12}  note")
    print(f"{'-' * width}  {'-' * 12}  ----")
    for name, value, note in rows:
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown:>12}  {note}")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2, default=str))
        print(f"\nwritten: {json_path}")
