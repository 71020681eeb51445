"""The abuse suite, PostgreSQL down: every route that reads the database answers within its
deadline (docs/security.md, "Database reads"), with a 503 that says what is unavailable and why
in our words, never the driver's error (hosts, ports, SQL).

Before: `/guardian/events` (and every route reading the database through the pool) waited for
the pool's 30 s timeout, then answered a 503 quoting psycopg's message.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.integration.fleet_support import OwnPostgres
from tests.integration.test_status_support import api_stack, seed

# Every route that reads the database, directly or through the status read model. The guardian
# does not run in this stack, so /guardian/status falls back to the audit log too.
DATABASE_ROUTES = [
    "/guardian/events",
    "/guardian/alerts",
    "/guardian/rejections",
    "/guardian/status",
    "/api/v1/governance/activity",
    "/api/v1/governance/holder-control",
    "/api/v1/governance/heartbeat",
    "/api/v1/governance/status",
    "/api/v1/governance/status/extended",
]
BOUND_SECONDS = 5.0  # the deadline is 2 s; the rest is slack for a busy machine


@pytest.fixture
async def own_postgres():
    pg = await asyncio.to_thread(OwnPostgres)
    await pg.start()
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.close)


async def timed_get(url: str, path: str) -> tuple[str, float, httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        started = time.monotonic()
        resp = await http.get(path)
        return path, time.monotonic() - started, resp


@pytest.mark.slow  # stops a PostgreSQL server
async def test_database_reads_fail_fast_and_say_why_while_postgresql_is_down(dev_env, own_postgres, tmp_path):
    pg = own_postgres
    url = await asyncio.to_thread(pg.make_database)
    seed(url, balance=1)
    async with api_stack(dev_env, url, tmp_path, schedules=[], worker=False, start_status=False) as stack:
        # The database answers (and the pool holds connections to it).
        assert (await timed_get(stack.url, "/guardian/events"))[2].status_code == 200

        await pg.stop()
        answers = await asyncio.gather(*(timed_get(stack.url, path) for path in [*DATABASE_ROUTES, "/health"]))
        report = ", ".join(f"{path} {resp.status_code} in {seconds:.2f} s" for path, seconds, resp in answers)
        answers = answers[:-1]  # /health is reported (its checks are its own: govfleet/api/health.py)
        print(f"\nPostgreSQL down: {report}")
        for path, seconds, resp in answers:
            assert resp.status_code == 503, (path, resp.text)
            err = resp.json()["error"]
            assert err["code"] in ("database_unavailable", "unavailable"), (path, err)
            assert "unavailable" in err["message"] and "try again" in err["message"], (path, err)
            # Our words only: nothing of the driver's message (its host, port, wording).
            for internal in (str(pg.port), "127.0.0.1", "psycopg", "terminating", "refused", "couldn't", "server"):
                assert internal not in resp.text, (path, internal, resp.text)
            assert seconds < BOUND_SECONDS, (path, seconds)
        alerts = next(resp for path, _, resp in answers if path == "/guardian/alerts")
        assert "the database did not answer within 2 s" in alerts.json()["error"]["message"]

        await pg.start()  # and back: the pool reconnects on its own
        deadline = time.monotonic() + 30
        while (await timed_get(stack.url, "/guardian/events"))[2].status_code != 200:
            assert time.monotonic() < deadline, "the API did not read the database again within 30 s"
            await asyncio.sleep(0.5)
