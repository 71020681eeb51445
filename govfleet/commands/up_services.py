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

    # Schedules: reconcile Temporal Schedules from repo-spec on start.
    from govfleet.commands.schedules import reconcile_on_start

    services.described.append(("Schedules", await reconcile_on_start(config, client)))

    # Status surface: the status workflow and the HTTP API + /gov page on SERVICE_PORT, in-process.
    from govfleet.commands.status import start_in_up

    where, api = await start_in_up(config, client, database_url)
    services.stoppers.append(api.stop)
    services.described.append(("API", f"{where}  (status page {where}/gov)"))

    # Guardian: the tracker simulator for the demo (unless --no-simulator) and the guardian workflow.
    from govfleet.commands.guardian import start_guardian_services

    await start_guardian_services(config, client, args, services)
    return services
