"""What `govfleet up` starts beside the workers. Each area adds its block here."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from govfleet.settings import Config


@dataclass
class Services:
    described: list[tuple[str, str]] = field(default_factory=list)
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def stop(self) -> None:
        for stop in reversed(self.stoppers):
            await stop()


async def start_services(config: Config, client: Client, database_url: str, args: argparse.Namespace) -> Services:
    services = Services()
    try:
        await _start(services, config, client, database_url, args)
    except BaseException:
        await services.stop()  # what did start, stops (a later step failed or Ctrl-C came)
        raise
    return services


async def _start(services: Services, config: Config, client: Client, database_url: str, args) -> None:
    # Schedules: reconcile Temporal Schedules from repo-spec on start.
    from govfleet.commands.schedules import reconcile_on_start

    services.described.append(("Schedules", await reconcile_on_start(config, client)))

    # The tracker simulator for the demo (unless --no-simulator); the guardian block points at it.
    from govfleet.commands.guardian import demo_config, start_simulator_for_up

    config = demo_config(config, await start_simulator_for_up(args, services, config.spec.guardian.rules))

    # Declared workflows (guardians, status, watchdog): the same reconcile as `govfleet reconcile`.
    from govfleet.commands.schedules import reconcile_workflows_on_start

    for line in await reconcile_workflows_on_start(config, client):
        services.described.append(line)

    # Status surface: the HTTP API + /gov page on SERVICE_PORT, in-process.
    from govfleet.commands.status import start_in_up

    where, api = await start_in_up(config, client, database_url)
    services.stoppers.append(api.stop)
    from pathlib import Path

    from govfleet import local_fleet

    local_fleet.record_api(Path(args.data_dir or config.settings.GOVFLEET_DATA_DIR).resolve(), where)
    services.described.append(("API", f"{where}  (status page {where}/gov)"))
