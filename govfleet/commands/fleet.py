"""`govfleet up`, `govfleet worker`, `govfleet migrate`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from govfleet import db, local_fleet
from govfleet.embedded import EmbeddedPostgres, EmbeddedTemporal
from govfleet.logging import configure_logging, get_logger
from govfleet.settings import Config, load_config
from govfleet.temporal import connect, connect_when_ready, ensure_search_attributes, metrics_runtime

log = get_logger("govfleet")


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
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="apply database migrations and seed the system tenant")
    p.set_defaults(func=cmd_migrate)


def require_database_url(config: Config) -> str:
    url = config.settings.DATABASE_URL
    if not url:
        raise db.StartupError("DATABASE_URL is not set; set it, or use `govfleet up` to start an embedded PostgreSQL")
    return url


def prepare_database(config: Config, database_url: str) -> list[str]:
    """Bounded wait, migrations, then the fail-fast system-tenant check."""
    db.wait_for_database(database_url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    applied = db.migrate(database_url)
    db.verify_system_tenant(database_url)
    return applied


def cmd_migrate(args: argparse.Namespace) -> int:
    config = load_config()
    url = require_database_url(config)
    db.wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    applied = db.migrate(url)
    db.verify_system_tenant(url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


async def run_workers_until(config: Config, database_url: str, address: str, stop: asyncio.Event) -> None:
    from workers.factory import build_worker
    from workers.resources import Resources

    runtime = None
    if config.settings.METRICS_PORT:
        runtime = metrics_runtime(config.settings.METRICS_PORT, config.settings.METRICS_HOST)
        log.info("metrics", url=f"http://{config.settings.METRICS_HOST}:{config.settings.METRICS_PORT}/metrics")
    client = await connect(address, config.settings.TEMPORAL_NAMESPACE, runtime=runtime)
    resources = await Resources.open(config, database_url, client)
    try:
        worker = build_worker(client, resources)
        async with worker:
            log.info("worker polling", task_queue=config.settings.TEMPORAL_TASK_QUEUE, address=address)
            await stop.wait()
    finally:
        await resources.close()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def cmd_worker(args: argparse.Namespace) -> int:
    config = load_config()
    configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
    url = require_database_url(config)
    address = config.settings.TEMPORAL_ADDRESS
    if not address:
        raise db.StartupError("TEMPORAL_ADDRESS is not set; set it, or use `govfleet up` to start an embedded Temporal")
    db.wait_for_database(url, config.settings.DATABASE_CONNECT_TIMEOUT_SECONDS)
    db.verify_system_tenant(url)

    async def main() -> None:
        client = await connect(address, config.settings.TEMPORAL_NAMESPACE)
        await ensure_search_attributes(client)
        await run_workers_until(config, url, address, _stop_event())

    asyncio.run(main())
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    config = load_config()
    configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
    data_dir = Path(args.data_dir or config.settings.GOVFLEET_DATA_DIR).resolve()
    started: list = []
    try:
        database_url = config.settings.DATABASE_URL
        if not database_url:
            pg = EmbeddedPostgres(data_dir / "postgres")
            database_url = pg.start()
            started.append(pg)
        prepare_database(config, database_url)

        address = config.settings.TEMPORAL_ADDRESS
        temporal: EmbeddedTemporal | None = None
        if not address:
            temporal = EmbeddedTemporal(data_dir / "temporal", port=args.temporal_port, ui_port=args.ui_port)
            temporal.start()
            started.append(temporal)
            address = temporal.address

        async def main() -> None:
            from govfleet.commands.up_services import start_services

            stop = _stop_event()
            client = await connect_when_ready(address, config.settings.TEMPORAL_NAMESPACE)
            if temporal is None:
                await ensure_search_attributes(client)
            local_fleet.record(data_dir, temporal_address=address, database_url=database_url)
            worker_task = asyncio.create_task(run_workers_until(config, database_url, address, stop))
            services = await start_services(config, client, database_url, args)
            print(
                "\n".join(
                    [
                        "",
                        "governance-fleet is up",
                        f"  Temporal UI:   {temporal.ui_url if temporal else '(external Temporal at ' + address + ')'}",
                        f"  Temporal:      {address}",
                        f"  Database:      {db.redact(database_url)}",
                        *[f"  {name + ':':<14} {where}" for name, where in services.described],
                        f"  State:         {data_dir}",
                        "  Stop:          Ctrl-C (stops everything started here)",
                        "",
                    ]
                ),
                file=sys.stderr,
                flush=True,
            )
            stop_task = asyncio.create_task(stop.wait())
            try:
                # Runs until Ctrl-C, or until the worker dies (then its error is raised).
                await asyncio.wait({stop_task, worker_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.set()
                await services.stop()
                await worker_task

        asyncio.run(main())
    finally:
        local_fleet.clear(data_dir)
        for thing in reversed(started):
            thing.stop()
    return 0
