"""`govfleet up`, `govfleet worker`, `govfleet migrate`.

Stopping (docs/deployment.md): SIGINT and SIGTERM mean the same everywhere. A worker stops
polling and lets the activities it runs finish (`WORKER_SHUTDOWN_GRACE_SECONDS`). `govfleet up`
stops everything it started, at any moment including start-up, within `UP_STOP_SECONDS`; past
that, whatever is left is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govfleet.logging import get_logger

if TYPE_CHECKING:
    from govfleet.settings import Config

# Heavy modules (the database driver, Temporal, the embedded servers) are imported inside the
# functions that use them: the command line starts in well under a second (docs/cli.md).

log = get_logger("govfleet")

UP_STOP_SECONDS = 13.0  # after the first Ctrl-C / SIGTERM, `up` kills what is still running
UP_WORKER_GRACE_SECONDS = 3.0  # `up`'s in-process worker: in-flight activities get this long


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start the whole fleet (embedded Temporal and PostgreSQL unless configured)")
    p.add_argument("--data-dir", default=None, help="where embedded servers keep state (default ./.govfleet)")
    p.add_argument("--no-simulator", action="store_true", help="do not start the tracker simulator")
    p.add_argument("--scenario", default="gradual-decline", help="tracker simulator scenario for the demo")
    p.add_argument("--tracker-port", type=int, default=8922, help="tracker simulator port (default 8922)")
    p.add_argument("--temporal-port", type=int, default=7233, help="embedded Temporal frontend port (default 7233)")
    p.add_argument("--ui-port", type=int, default=8233, help="embedded Temporal UI port (default 8233)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run workers only (production); needs TEMPORAL_ADDRESS and DATABASE_URL")
    p.add_argument(
        "--no-reconcile",
        action="store_true",
        help="do not start or reconfigure the declared workflows (guardians, status, watchdog) at start-up",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="apply database migrations and seed the system tenant")
    p.set_defaults(func=cmd_migrate)


def require_database_url(config: Config) -> str:
    from govfleet import db

    url = config.settings.DATABASE_URL
    if not url:
        raise db.StartupError("DATABASE_URL is not set; set it, or use `govfleet up` to start an embedded PostgreSQL")
    return url


def prepare_database(config: Config, database_url: str) -> list[str]:
    """Bounded wait, migrations, then the fail-fast system-tenant check."""
    from govfleet import db

    db.wait_for_database(database_url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    applied = db.migrate(database_url)
    db.verify_system_tenant(database_url)
    store_tool_policy(config, database_url, "govfleet up")
    return applied


def store_tool_policy(config: Config, database_url: str, source: str) -> list[str]:
    """The repo-spec's `governance.system_tenant.tool_allowlist`, stored as the system tenant's
    policy (what every agent run is sent); the list stored."""
    from govfleet.store.policies import store_tool_allowlist

    tools = list(config.spec.governance.system_tenant.tool_allowlist)
    store_tool_allowlist(database_url, tools, source, connect_timeout=config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    return tools


def cmd_migrate(args: argparse.Namespace) -> int:
    from govfleet import db
    from govfleet.settings import load_config
    from govfleet.startup_guard import guard_admins

    config = load_config()
    guard_admins(config, "migrate", one_shot=True)
    url = require_database_url(config)
    db.wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    applied = db.migrate(url)
    db.verify_system_tenant(url)
    tools = store_tool_policy(config, url, "govfleet migrate")
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    print(f"system tenant tool allowlist: {', '.join(tools) if tools else '(none: no tools)'}")
    return 0


async def run_workers_until(
    config: Config,
    database_url: str,
    address: str,
    stop: asyncio.Event,
    *,
    plain: bool = False,
    grace_seconds: float | None = None,
    **worker_options: Any,
) -> None:
    """Poll until `stop` is set, then drain: no new tasks, in-flight activities get the grace.
    `worker_options` override the factory's (the failover benchmark compares settings)."""
    from datetime import timedelta

    from govfleet.temporal import connect
    from workers.factory import build_worker
    from workers.resources import Resources

    runtime = None
    if config.settings.METRICS_PORT:
        from govfleet.temporal import metrics_runtime

        runtime = metrics_runtime(config.settings.METRICS_PORT, config.settings.METRICS_HOST)
        log.info("metrics", url=f"http://{config.settings.METRICS_HOST}:{config.settings.METRICS_PORT}/metrics")
    client = await connect(address, config.settings.TEMPORAL_NAMESPACE, runtime=runtime, plain=plain)
    resources = await Resources.open(config, database_url, client)
    grace = config.settings.WORKER_SHUTDOWN_GRACE_SECONDS if grace_seconds is None else grace_seconds
    try:
        worker = build_worker(client, resources, graceful_shutdown_timeout=timedelta(seconds=grace), **worker_options)
        async with worker:
            log.info("worker polling", task_queue=config.settings.TEMPORAL_TASK_QUEUE, address=address)
            await stop.wait()
            log.info("worker stopping: no new tasks; in-flight activities may finish", grace_seconds=grace)
        log.info("worker stopped")
    finally:
        await resources.close()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def reconcile_declared_at_start(config: Config, client) -> None:
    """`govfleet worker` at start-up: start or reconfigure the declared workflows, as
    `govfleet reconcile` does (several workers starting at once is safe). Problems are logged,
    never fatal: a worker must poll even when it cannot reconcile."""
    from schedules.workflows import reconcile_workflows

    try:
        report = await reconcile_workflows(client, config.spec, task_queue=config.settings.TEMPORAL_TASK_QUEUE)
    except Exception as exc:
        log.warning("declared workflows not reconciled at start-up", error=f"{type(exc).__name__}: {exc}")
        return
    log.info("declared workflows reconciled", outcome=report.summary())
    for o in report.failed:
        log.warning("declared workflow not reconciled", workflow_id=o.workflow_id, error=o.detail)


def log_notification_channels(config: Config) -> None:
    """The worker's banner line(s): where its notifications go, or, loudly, that they go nowhere
    (docs/notifications.md, "Never silent")."""
    from govfleet.notify_channels import banner_lines

    for ok, line in banner_lines(config, os.environ):
        if ok:
            log.info("notifications go to", channels=line)
        else:
            log.warning(line, notifications="none")


def cmd_worker(args: argparse.Namespace) -> int:
    from govfleet import db
    from govfleet.logging import configure_logging
    from govfleet.settings import load_config
    from govfleet.startup_guard import guard_admins
    from govfleet.temporal import configured_address, connect, describe_connection, ensure_search_attributes

    config = load_config()
    configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
    guard_admins(config, "worker", one_shot=False)
    url = require_database_url(config)
    address = configured_address()
    if not address:
        raise db.StartupError(
            "TEMPORAL_ADDRESS is not set (nor an address in a Temporal profile file); set it, "
            "or use `govfleet up` to start an embedded Temporal"
        )
    db.wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    db.verify_system_tenant(url)
    store_tool_policy(config, url, "govfleet worker")

    async def main() -> None:
        from govfleet.temporal import client_config

        stop = _stop_event()
        client = await connect(address, config.settings.TEMPORAL_NAMESPACE)
        log.info("temporal", address=address, namespace=client.namespace, security=describe_connection(client_config()))
        log_notification_channels(config)
        await ensure_search_attributes(client)
        if not args.no_reconcile:
            await reconcile_declared_at_start(config, client)
        await run_workers_until(config, url, address, stop)

    asyncio.run(main())
    return 0


# --- govfleet up -----------------------------------------------------------------------------


def check_ports(config: Config, args: argparse.Namespace, *, embedded_temporal: bool) -> None:
    """Every port `up` will listen on, checked before anything starts: one clear line (exit 2)
    naming the first one in use."""
    from govfleet import db, local_fleet
    from govfleet.api.server import bind

    wanted = [(config.settings.SERVICE_HOST, config.settings.SERVICE_PORT, "API (SERVICE_PORT)")]
    if embedded_temporal:
        wanted += [("127.0.0.1", args.temporal_port, "Temporal (--temporal-port)")]
        wanted += [("127.0.0.1", args.ui_port, "Temporal UI (--ui-port)")]
    if not args.no_simulator:
        wanted += [("127.0.0.1", args.tracker_port, "tracker simulator (--tracker-port)")]
    for host, port, what in wanted:
        try:
            bind(host, port).close()
        except OSError:
            running = local_fleet.running(config.settings)
            hint = f"; a `govfleet up` already runs here (pid {running['pid']})" if running else ""
            raise db.StartupError(
                f"port {port} for the {what} on {host} is already in use{hint}; stop what holds it or choose "
                "another port"
            ) from None


class _Stopping:
    """What `up` started, stopped in reverse order; a hard deadline after the first signal."""

    def __init__(self) -> None:
        self.stoppers: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self.killers: list[Callable[[], None]] = []
        self.signalled = threading.Event()
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """First signal: stop normally; if not done within UP_STOP_SECONDS, kill and leave."""
        if self.signalled.is_set():
            self._hard_stop("a second interrupt")
            return
        self.signalled.set()
        self._timer = threading.Timer(
            UP_STOP_SECONDS, self._hard_stop, args=(f"not stopped after {UP_STOP_SECONDS:g} s",)
        )
        self._timer.daemon = True
        self._timer.start()

    def _hard_stop(self, why: str) -> None:
        print(f"govfleet up: {why}: killing what is left", file=sys.stderr, flush=True)
        for kill in reversed(self.killers):
            try:
                kill()
            except Exception as exc:  # keep going: the rest must die too
                print(f"govfleet up: {exc}", file=sys.stderr, flush=True)
        os._exit(1)

    async def stop_all(self) -> None:
        for name, stop in reversed(self.stoppers):
            try:
                await asyncio.wait_for(stop(), 10)
            except Exception as exc:
                log.warning("not stopped cleanly", what=name, error=f"{type(exc).__name__}: {exc}")
        if self._timer is not None:
            self._timer.cancel()


def cmd_up(args: argparse.Namespace) -> int:
    from govfleet.logging import configure_logging
    from govfleet.settings import load_config

    config = load_config()
    configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
    from govfleet.temporal import configured_address

    data_dir = Path(args.data_dir or config.settings.GOVFLEET_DATA_DIR).resolve()
    address = configured_address()
    check_ports(config, args, embedded_temporal=not address)
    stopping = _Stopping()
    return asyncio.run(_up(config, args, data_dir, address, stopping))


async def _up(config: Config, args: argparse.Namespace, data_dir: Path, address: str | None, st: _Stopping) -> int:
    from govfleet import local_fleet

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        st.arm()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    worker_stop = asyncio.Event()
    startup = asyncio.create_task(_start_fleet(config, args, data_dir, address, st, worker_stop))
    stop_wait = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({startup, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return 0
        worker_task = startup.result()  # raises what start-up raised
        await asyncio.wait({stop_wait, worker_task}, return_when=asyncio.FIRST_COMPLETED)
        if worker_task.done() and not stop.is_set():
            worker_task.result()  # the worker died: its error ends `up`
        return 0
    finally:
        st.signalled.set()  # from here on a signal kills at once
        worker_stop.set()
        if not startup.done():
            startup.cancel()
            # Threads (a PostgreSQL or Temporal start) cannot be cancelled; they see the abort
            # flag or finish their bounded step, then everything is stopped below.
            await asyncio.wait({startup}, timeout=10)
        stop_wait.cancel()
        await st.stop_all()
        local_fleet.clear(data_dir)


async def _in_thread(fn: Callable, *args):
    """A blocking start-up step in a thread. Cancelled (Ctrl-C), it still waits for the step to
    end (each is bounded), so that what the step started is there to be stopped."""
    step = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(step)
    except asyncio.CancelledError:
        await asyncio.wait({step}, timeout=UP_STOP_SECONDS)
        if step.done() and not step.cancelled():
            step.exception()  # seen: its `Aborted` (or failure) is why we stop, not news
        raise


async def _start_fleet(
    config: Config,
    args: argparse.Namespace,
    data_dir: Path,
    address: str | None,
    st: _Stopping,
    worker_stop: asyncio.Event,
) -> asyncio.Task:
    from govfleet import db, local_fleet
    from govfleet.embedded import Aborted, EmbeddedPostgres, EmbeddedTemporal
    from govfleet.temporal import connect_when_ready, ensure_search_attributes

    database_url = config.settings.DATABASE_URL
    reused = False
    if not database_url:
        pg = EmbeddedPostgres(data_dir / "postgres")
        st.stoppers.append(("PostgreSQL", lambda: asyncio.to_thread(pg.stop)))
        st.killers.append(pg.kill)
        database_url = await _in_thread(pg.start)
        reused = pg.reused
    await _in_thread(prepare_database, config, database_url)

    temporal: EmbeddedTemporal | None = None
    if not address:
        temporal = EmbeddedTemporal(data_dir / "temporal", port=args.temporal_port, ui_port=args.ui_port)
        st.stoppers.append(("Temporal", lambda: asyncio.to_thread(temporal.stop, 5)))
        st.killers.append(temporal.kill)
        try:
            await _in_thread(temporal.start, 60, st.signalled)
        except Aborted:
            raise asyncio.CancelledError from None
        address = temporal.address
    plain = temporal is not None
    client = await connect_when_ready(address, config.settings.TEMPORAL_NAMESPACE, plain=plain)
    if temporal is None:
        await ensure_search_attributes(client)
    local_fleet.record(data_dir, temporal_address=address, database_url=database_url)

    worker_task = asyncio.create_task(
        run_workers_until(
            config, database_url, address, worker_stop, plain=plain, grace_seconds=UP_WORKER_GRACE_SECONDS
        )
    )

    async def stop_worker() -> None:
        worker_stop.set()
        await asyncio.wait({worker_task}, timeout=UP_WORKER_GRACE_SECONDS + 5)

    st.stoppers.append(("workers", stop_worker))
    from govfleet.commands.up_services import start_services

    services = await start_services(config, client, database_url, args)
    st.stoppers.append(("services", services.stop))
    security = "" if plain else " (" + _security() + ")"
    from govfleet.notify_channels import banner_lines
    from govfleet.startup_guard import demo_keys_notice, public_admins_of, throwaway_notice

    notify = banner_lines(config, os.environ)
    public = public_admins_of(config.spec)
    keys = (
        [f"  Admins:        {throwaway_notice(public)}"]
        if config.settings.throwaway_environment
        else [f"  Admins:        {demo_keys_notice(public)}"]
        if public
        else []
    )
    reuse_note = "  (PostgreSQL left running earlier, reused)" if reused else ""
    hints = local_fleet.shell_hints(
        temporal_address=address,
        embedded_temporal=temporal is not None,
        data_dir=data_dir,
        service_port=config.settings.SERVICE_PORT,
        venv_bin=Path(sys.prefix) / "bin" if sys.prefix != sys.base_prefix else None,
        cwd=Path.cwd(),
    )
    print(
        "\n".join(
            [
                "",
                "governance-fleet is up",
                f"  Temporal UI:   {temporal.ui_url if temporal else '(external Temporal at ' + address + ')'}",
                f"  Temporal:      {address}{security}",
                f"  Database:      {db.redact(database_url)}{reuse_note}",
                *[f"  {name + ':':<14} {where}" for name, where in services.described],
                *[f"  {'Notifications:' if i == 0 else '':<14} {line}" for i, (_, line) in enumerate(notify)],
                *keys,
                f"  State:         {data_dir}",
                "  Stop:          Ctrl-C (stops everything started here)",
                "  Another shell: " + hints[0],
                *[f"                 {line}" for line in hints[1:]],
                "",
            ]
        ),
        file=sys.stderr,
        flush=True,
    )
    return worker_task


def _security() -> str:
    from govfleet.temporal import client_config, describe_connection

    return describe_connection(client_config())
