"""What activities hold: the connection pool, the HTTP client, the configuration.

Created once per worker process; activity classes are instantiated from it and registered
from those instances (Temporal's recommended pattern for activities with dependencies).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from temporalio.client import Client

from govfleet.db import DbPool, create_pool
from govfleet.settings import Config


@dataclass
class Resources:
    config: Config
    database_url: str
    pool: DbPool
    http: httpx.AsyncClient
    client: Client

    @classmethod
    async def open(cls, config: Config, database_url: str, client: Client, *, pool_size: int = 10) -> Resources:
        pool = await create_pool(database_url, max_size=pool_size)
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        return cls(config=config, database_url=database_url, pool=pool, http=http, client=client)

    async def close(self) -> None:
        await self.http.aclose()
        await self.pool.close()
