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
    from govfleet.startup_guard import guard_admins

    guard_admins(config, "api", one_shot=False)
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
    fleet: dict | None = None
    if api:  # the repo-spec is not needed: the API has it
        body, source, workflows, schedules, fleet = asyncio.run(_read_api(api.rstrip("/"), settings, want_extended))
    else:
        config = with_local_fleet(load_config())
        # What the status service logs (e.g. falling back to the database) in the one format.
        configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
        body, source, workflows, schedules, fleet = asyncio.run(_read_temporal(config, want_extended))
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        table = render_table(body, source=source, now=now, workflows=workflows, schedules=schedules)
        print(table + ("\n" + render_fleet(fleet, now=now) if fleet else ""))
    down = [w for w in workflows if w["kind"] == "guardian" and w["running"] is False]
    for w in down:
        print(f"govfleet: guardian {w['workflow_id']} is not running ({w['status']})", file=sys.stderr)
    for problem in (fleet or {}).get("problems") or []:  # nobody to tell: said on stderr too
        print(f"govfleet: {problem}", file=sys.stderr)
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
    body, source, workflows, schedules, _ = await _read_api(url, settings, want_extended)
    return body, source, workflows, schedules


async def _read_api(
    url: str, settings: Settings, want_extended: bool = False
) -> tuple[dict, str, list[dict], list[dict] | None, dict | None]:
    """The contract, the declared workflows (/health), and with `want_extended` the extended
    status's schedules and fleet part (guardians, notifications, problems, warnings)."""
    from govfleet.status_client import read_extended_fleet, read_extended_schedules, read_status_v1

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
    fleet = None
    if ext is not None and ext.status_code == 200:  # an API without it (older) answers 404: the contract alone
        try:
            extended = ext.json()
            schedules = read_extended_schedules(extended)
            fleet = read_extended_fleet(extended)
        except ValueError:
            schedules = None
    source = f"api ({resp.headers.get('x-govfleet-source', 'unknown')})"
    return body, source, workflows, schedules, fleet


async def _from_temporal(
    config: Config, want_extended: bool = False
) -> tuple[dict, str, list[dict], list[dict] | None]:
    body, source, workflows, schedules, _ = await _read_temporal(config, want_extended)
    return body, source, workflows, schedules


async def _read_temporal(
    config: Config, want_extended: bool = False
) -> tuple[dict, str, list[dict], list[dict] | None, dict | None]:
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
    fleet = None
    try:
        service = StatusService(config, client, pool, cache_ttl=0, restart_interval=float("inf"))
        try:
            status, source = await service.status()
            if want_extended:
                extended, _ = await service.extended()
                schedules = [s.model_dump(mode="json") for s in extended.schedules]
                fleet = await _fleet_from_temporal(config, client, pool)
        except Exception as err:
            raise db.StartupError(f"governance status is unavailable: {err}") from None
        finally:
            await service.close()
    finally:
        if pool is not None:
            await pool.close()
    return status.model_dump(mode="json"), source, await _declared_states(config, client), schedules, fleet


async def _fleet_from_temporal(config: Config, client, pool) -> dict:
    """The extended status's fleet part, read here: each guardian's `status` query, the
    notification state (this process's configuration, the database's records)."""
    from datetime import timedelta

    from govfleet.api.fleet_state import read_fleet_state
    from govfleet.contracts.guardian import STATUS_QUERY
    from govfleet.domain.guardian.views import GuardianStatus

    fleet = await read_fleet_state(config, pool)
    notifications = {n.scope: n.model_dump(mode="json") for n in fleet.notifications}
    now = datetime.now(UTC)

    async def one(g) -> dict:
        status = None
        if client is not None:
            try:
                status = await client.get_workflow_handle(g.workflow_id).query(
                    STATUS_QUERY, result_type=GuardianStatus, rpc_timeout=timedelta(seconds=5)
                )
            except Exception:
                status = None
        last = status.last_check if status else None
        return {
            "workflow_id": g.workflow_id,
            "name": g.name,
            "status": status.model_dump(mode="json") if status else None,
            "last_check_age_seconds": max(0, int((now - last).total_seconds())) if last else None,
            "notifications": notifications.get(g.workflow_id),
        }

    guardians = await asyncio.gather(*(one(g) for g in config.spec.declared_guardians()))
    return {
        "guardians": list(guardians),
        "notifications": list(notifications.values()),
        "problems": fleet.problems,
        "warnings": fleet.warnings,
    }


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


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


def _since(value: str | None, now: datetime) -> str:
    return f"{_short(value)} ({_age((now - _dt(value)).total_seconds())})" if value else "—"


def _forensic(audit: dict | None, now: datetime) -> str:
    if not audit:
        return "not required"
    if audit.get("completed_at"):
        by, report = audit.get("completed_by") or "?", audit.get("report") or "?"
        return f"completed {_since(audit['completed_at'], now)} by {by} (report {report})"
    if audit.get("required"):
        after = audit.get("pause_key") or "an emergency"
        return f"REQUIRED since {_since(audit.get('required_since'), now)} (after {after})"
    return "not required"


def _notifications(state: dict | None, now: datetime) -> list[str]:
    """A guardian's notification state in a few lines: where its alerts go, or that they go nowhere."""
    if not state:
        return ["unknown"]
    name = state.get("state")
    channels = state.get("channels") or []
    if name in ("none", "declared_none"):
        head = "NONE: its alerts reach nobody" + (" (NOTIFY_URLS=none, on purpose)" if name == "declared_none" else "")
        if state.get("skipped"):
            head += f"; not set: {', '.join(state['skipped'])}"
        lines = [head]
    else:
        lines = [("FAILING: " if name == "failing" else "ok: ") + ", ".join(c["name"] for c in channels)]
        for c in channels:
            if c.get("state") == "failing":
                lines.append(
                    f"{c['name']} failing ({c.get('consecutive_failures')} in a row, last "
                    f"{_since(c.get('last_failed_at'), now)}): {c.get('last_error')}"
                )
    if state.get("pending_urgent"):
        lines.append(f"{state['pending_urgent']} urgent notice(s) PENDING: they reached nobody yet")
    return lines


def _guardian_rows(g: dict, now: datetime) -> list[tuple[str, str]]:
    st = g.get("status")
    rows: list[tuple[str, str]] = []
    if st:
        hc = st.get("current_holder_control")
        rows.append(("level", f"{st.get('governance_level')}, holder control {'—' if hc is None else f'{hc:g} %'}"))
        system = st.get("system_status", "?")
        if st.get("paused"):
            system += f" since {_since(st.get('paused_since'), now)}"
        rows.append(("system", system))
        for pause in st.get("pauses") or []:
            by, why = pause.get("paused_by") or "?", pause.get("reason") or ""
            rows.append(("pause", f"{pause.get('scope')} since {_since(pause.get('since'), now)} by {by}: {why}"))
        needs = st.get("resume_requires")
        if needs:
            approval = " + the DAO's signed approval" if needs.get("governance_approval") else ""
            rows.append(
                (
                    "resume needs",
                    f"{needs.get('quorum')} of {needs.get('admins')} admins' signatures{approval}, holder control "
                    f"at least {needs.get('holder_control_at_least')} %",
                )
            )
        alerts = st.get("open_alerts") or []
        rows.append(("open alerts", ", ".join(alerts) if alerts else str(st.get("alerts_active", 0))))
        every = st.get("check_interval_seconds")
        rows.append(("last check", f"{_age(g.get('last_check_age_seconds'))} (every {every} s)"))
        rows.append(("forensic audit", _forensic(st.get("forensic_audit"), now)))
        if st.get("unreachable_targets"):
            rows.append(("UNREACHABLE", ", ".join(st["unreachable_targets"])))
    for i, line in enumerate(_notifications(g.get("notifications"), now)):
        rows.append(("notifications" if i == 0 else "", line))
    return rows


def render_fleet(fleet: dict, *, now: datetime) -> str:
    """Each guardian (level, holder control, paused since, open alerts, age of the last check,
    forensic audit, notifications), then the fleet's problems and warnings."""
    lines = ["", "Guardians"]
    guardians = fleet.get("guardians") or []
    if not guardians:
        lines.append("  (none declared)")
    for g in guardians:
        lines.append(f"  {g['workflow_id']}" + ("" if g.get("status") else "  (does not answer its status query)"))
        lines += [f"    {k:<15} {v}" for k, v in _guardian_rows(g, now)]
    shown = {g["workflow_id"] for g in guardians}
    for n in fleet.get("notifications") or []:
        if n.get("scope") not in shown:  # the `guardian` block's channels, which the heartbeat uses
            lines.append(f"  {n.get('label') or n.get('scope')}")
            lines += [
                f"    {'notifications' if i == 0 else '':<15} {line}" for i, line in enumerate(_notifications(n, now))
            ]
    for title, key in (("Problems", "problems"), ("Warnings", "warnings")):
        items = fleet.get(key) or []
        if items:
            lines += ["", title, *[f"  - {item}" for item in items]]
    return "\n".join(lines)
