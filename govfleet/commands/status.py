"""`govfleet api` (the HTTP API and the /gov page) and `govfleet status` (the governance
status as a terminal table)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from govfleet.errors import StartupError

if TYPE_CHECKING:
    from govfleet.api.server import RunningApi
    from govfleet.settings import Config, Settings

CREDITS_PER_USD = 10_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the HTTP API and the /gov page (needs TEMPORAL_ADDRESS and DATABASE_URL)")
    p.add_argument("--host", default=None, help="listen address (default SERVICE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default SERVICE_PORT, 8926)")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("status", help="show the governance status (governance.status.v1) as a table")
    p.add_argument("--json", action="store_true", help="print the contract's JSON instead of a table")
    p.add_argument(
        "--api",
        metavar="URL",
        default=None,
        help="read it from a running API (e.g. http://127.0.0.1:8926); default: the API of a `govfleet up` "
        "running here when TEMPORAL_ADDRESS and DATABASE_URL are unset, else Temporal (and the database)",
    )
    p.set_defaults(func=cmd_status)


# --- govfleet api ----------------------------------------------------------------------------


def cmd_api(args: argparse.Namespace) -> int:
    from govfleet import db
    from govfleet.logging import configure_logging, get_logger
    from govfleet.settings import load_config

    config = load_config()
    configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
    s = config.settings
    from govfleet.temporal import configured_address

    address = configured_address()
    if not address:
        raise db.StartupError(
            "TEMPORAL_ADDRESS is not set (nor an address in a Temporal profile file); `govfleet api` serves the "
            "fleet of an existing Temporal (use `govfleet up` for everything in one process)"
        )
    if not s.DATABASE_URL:
        raise db.StartupError("DATABASE_URL is not set; `govfleet api` needs the fleet's database")
    db.wait_for_database(s.DATABASE_URL, s.DATABASE_CONNECT_TIMEOUT_SECONDS)
    db.verify_system_tenant(s.DATABASE_URL)
    host = args.host or s.SERVICE_HOST
    port = s.SERVICE_PORT if args.port is None else args.port

    async def main() -> None:
        from govfleet.api.app import create_app
        from govfleet.api.server import start_api
        from govfleet.api.sockets import limits_from
        from govfleet.temporal import connect

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = await connect(address, s.TEMPORAL_NAMESPACE)
        api = await start_api(create_app(config, client=client), host, port, access_log=True, limits=limits_from(s))
        # A log line (the process's one format), not a print: docs/cli.md, "Logs".
        get_logger("govfleet.api").info(
            f"govfleet api: serving on {api.url} (status page {api.url}/gov, OpenAPI {api.url}/openapi.json)",
            url=api.url,
        )
        try:
            await stop.wait()
        finally:
            await api.stop()

    try:
        asyncio.run(main())
    except OSError as err:
        raise db.StartupError(str(err)) from None
    return 0


async def start_in_up(config: Config, client, database_url: str) -> tuple[str, RunningApi]:
    """For `govfleet up`: start the status workflow and serve the API on SERVICE_HOST:SERVICE_PORT
    in this process. Returns (where it listens, the running server)."""
    from govfleet import db
    from govfleet.api.app import create_app
    from govfleet.api.server import start_api
    from govfleet.api.sockets import limits_from
    from govfleet.contracts.status import StatusUpdate
    from govfleet.status_client import tell_status

    await tell_status(client, config.settings.TEMPORAL_TASK_QUEUE, StatusUpdate(source="govfleet up"))
    s = config.settings
    try:
        api = await start_api(
            create_app(config, client=client, database_url=database_url),
            s.SERVICE_HOST,
            s.SERVICE_PORT,
            limits=limits_from(s),
        )
    except OSError as err:
        raise db.StartupError(f"{err}; set SERVICE_PORT to a free port") from None
    return api.url, api


# --- govfleet status -------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    """A declared guardian that is not running is listed in the table and named on stderr."""
    from govfleet.local_fleet import with_local_fleet
    from govfleet.logging import configure_logging
    from govfleet.settings import load_config, load_settings

    settings = load_settings()
    api = args.api or _local_api(settings)
    # --json prints exactly the contract: the extended status (paused schedules, cron-fallback
    # times) is read only for the table.
    want_extended = not args.json
    if api:  # the repo-spec is not needed: the API has it
        body, source, workflows, schedules = asyncio.run(_from_api(api.rstrip("/"), settings, want_extended))
    else:
        config = with_local_fleet(load_config())
        # What the status service logs (e.g. falling back to the database) in the one format.
        configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
        body, source, workflows, schedules = asyncio.run(_from_temporal(config, want_extended))
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(render_table(body, source=source, now=datetime.now(UTC), workflows=workflows, schedules=schedules))
    down = [w for w in workflows if w["kind"] == "guardian" and w["running"] is False]
    for w in down:
        print(f"govfleet: guardian {w['workflow_id']} is not running ({w['status']})", file=sys.stderr)
    return 0


def _local_api(s: Settings) -> str | None:
    """The API of a `govfleet up` running here, when the environment names no Temporal or
    database of its own: reading through it needs no Temporal client nor database driver in
    this process (a start in a fraction of a second: docs/cli.md)."""
    from govfleet.local_fleet import running

    if s.TEMPORAL_ADDRESS or s.DATABASE_URL:
        return None
    local = running(s)
    url = local.get("api_url") if local else None
    return url if isinstance(url, str) else None


async def _declared_states(config: Config, client) -> list[dict]:
    """Every declared long-lived workflow and whether it runs (describe: no worker needed)."""
    from schedules.declared import declared_workflows
    from schedules.workflows import describe_actual

    wanted = [(d.workflow_id, d.desired.kind) for d in declared_workflows(config.spec)]
    if client is None:
        return [{"workflow_id": w, "kind": k, "running": None, "status": "UNKNOWN"} for w, k in wanted]

    async def one(wid: str, kind: str) -> dict:
        try:
            status = (await describe_actual(client, wid)).status or "NOT_STARTED"
        except Exception:
            status = "UNKNOWN"
        return {
            "workflow_id": wid,
            "kind": kind,
            "running": None if status == "UNKNOWN" else status == "RUNNING",
            "status": status,
        }

    return list(await asyncio.gather(*(one(w, k) for w, k in wanted)))


@dataclass
class _Answer:
    status_code: int
    text: str
    headers: dict[str, str]

    def json(self):
        return json.loads(self.text)


def _get(base: str, path: str, headers: dict[str, str], timeout: float = 10) -> _Answer:
    """One GET with the standard library: `govfleet status` through an API loads no HTTP client
    package (a faster start: docs/cli.md). Error answers are answers; no answer is StartupError."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return _Answer(resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers.items()))
    except urllib.error.HTTPError as err:
        return _Answer(err.code, err.read().decode("utf-8", "replace"), dict(err.headers.items()))
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise StartupError(f"the API at {base} did not answer: {reason}") from None


async def _from_api(
    url: str, settings: Settings, want_extended: bool = False
) -> tuple[dict, str, list[dict], list[dict] | None]:
    from govfleet.status_client import read_extended_schedules, read_status_v1

    headers = {}
    token = settings.API_READ_TOKEN or os.environ.get("API_READ_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"

    async def extended() -> _Answer | None:
        if not want_extended:
            return None
        return await asyncio.to_thread(_get, url, "/api/v1/governance/status/extended", headers)

    resp, health, ext = await asyncio.gather(
        asyncio.to_thread(_get, url, "/api/v1/governance/status", headers),
        asyncio.to_thread(_get, url, "/health", {}),
        extended(),
    )
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except Exception:
            message = resp.text[:200]
        raise StartupError(f"the API at {url} answered {resp.status_code}: {message}")
    try:
        body = read_status_v1(resp.json()).model_dump(mode="json")
    except ValueError as err:  # not JSON, or a known field is wrong (unknown ones are ignored)
        raise StartupError(f"the API at {url} answered a body that is not governance.status.v1: {err}") from None
    try:
        workflows = [
            {k: w.get(k) for k in ("workflow_id", "kind", "running", "status")} for w in health.json()["workflows"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        workflows = []
    schedules = None
    if ext is not None and ext.status_code == 200:  # an API without it (older) answers 404: the contract alone
        try:
            schedules = read_extended_schedules(ext.json())
        except ValueError:
            schedules = None
    source = f"api ({resp.headers.get('x-govfleet-source', 'unknown')})"
    return body, source, workflows, schedules


async def _from_temporal(
    config: Config, want_extended: bool = False
) -> tuple[dict, str, list[dict], list[dict] | None]:
    from govfleet import db
    from govfleet.api.service import StatusService
    from govfleet.local_fleet import connect_fleet

    s = config.settings
    if not s.TEMPORAL_ADDRESS and not s.DATABASE_URL:
        raise db.StartupError("set TEMPORAL_ADDRESS (and DATABASE_URL for a fallback), or pass --api URL")
    client = None
    if s.TEMPORAL_ADDRESS:
        try:
            client = await connect_fleet(config)
        except db.StartupError as err:
            if not s.DATABASE_URL:
                raise
            client = None
            print(f"govfleet: {err}; reading the database", file=sys.stderr)
    pool = None
    if s.DATABASE_URL:
        pool = await db.create_pool(s.DATABASE_URL, max_size=1, open_timeout=s.DATABASE_CONNECT_TIMEOUT_SECONDS)
    schedules = None
    try:
        service = StatusService(config, client, pool, cache_ttl=0, restart_interval=float("inf"))
        try:
            status, source = await service.status()
            if want_extended:
                extended, _ = await service.extended()
                schedules = [s.model_dump(mode="json") for s in extended.schedules]
        except Exception as err:
            raise db.StartupError(f"governance status is unavailable: {err}") from None
        finally:
            await service.close()
    finally:
        if pool is not None:
            await pool.close()
    return status.model_dump(mode="json"), source, await _declared_states(config, client), schedules


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _short(s: str) -> str:
    return _dt(s).strftime("%Y-%m-%d %H:%M:%SZ")


def _countdown(seconds: float) -> str:
    seconds = max(0, int(seconds))
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{sec:02d}"


def render_table(
    body: dict,
    *,
    source: str,
    now: datetime,
    workflows: list[dict] | None = None,
    schedules: list[dict] | None = None,
) -> str:
    """The contract as a table. With `schedules` (the extended status's, when the API offers it)
    the upcoming runs also say which times are cron arithmetic (Temporal unreachable) and list the
    paused schedules, which the contract leaves out."""
    credits = int(body["systemCredits"])
    cents = credits * 100 // CREDITS_PER_USD
    lines = [
        f"governance status (governance.status.v1) at {now.strftime('%Y-%m-%d %H:%M:%SZ')} — source: {source}",
        "",
        f"System credits  {credits:,}  (≈ ${cents // 100:,}.{cents % 100:02d})",
        "",
        "Upcoming runs",
    ]
    up = [
        [r["name"], _short(r["nextRunAt"]), _countdown((_dt(r["nextRunAt"]) - now).total_seconds())]
        for r in body["upcomingRuns"]
    ]
    if schedules is None:
        lines += _table(["NAME", "NEXT RUN (UTC)", "IN"], up) if up else ["  (no scheduled runs)"]
    else:
        estimated = {s["name"] for s in schedules if not s["paused"] and s["source"] != "temporal"}
        for row in up:
            row.append("estimated (cron fallback)" if row[0] in estimated else "")
        up += [[s["name"], "—", "—", "paused"] for s in schedules if s["paused"]]
        lines += _table(["NAME", "NEXT RUN (UTC)", "IN", "NOTE"], up) if up else ["  (no scheduled runs)"]
    lines += ["", "Recent runs"]
    recent = [
        [r["id"], r["title"] or "—", _short(r["startedAt"]), _short(r["lastActivity"])] for r in body["recentRuns"]
    ]
    lines += _table(["ID", "TITLE", "STARTED (UTC)", "LAST ACTIVITY (UTC)"], recent) if recent else ["  (no runs yet)"]
    if workflows:
        lines += ["", "Declared workflows"]
        rows = [
            [
                w["workflow_id"],
                w["kind"],
                "running" if w["running"] else ("unknown" if w["running"] is None else f"NOT RUNNING ({w['status']})"),
            ]
            for w in workflows
        ]
        lines += _table(["WORKFLOW", "KIND", "STATE"], rows)
    return "\n".join(lines)
