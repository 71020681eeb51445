"""`govfleet tracker-sim`, and the guardian's part of `govfleet up`: the tracker simulator for
the demo, and the configuration that points the `guardian` block at it (the guardian itself is
started by the same reconcile as everywhere: docs/declared-workflows.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from govfleet.errors import StartupError
from govfleet.logging import get_logger

if TYPE_CHECKING:
    from govfleet.domain.guardian.levels import GuardianRules
    from govfleet.settings import Config
    from govfleet.simulator import RunningSimulator, TrackerSimulator

log = get_logger("govfleet.guardian")

# The simulator (an HTTP server) is imported when it runs, not when the parser is built
# (docs/cli.md); its scenario names and step are named in the help text, so they are repeated
# here and tests/unit/test_cli_imports.py checks they match govfleet.simulator's.
SCENARIO_NAMES = ("steady", "gradual-decline", "rapid-drop", "recovery", "oscillate", "garbage")
DEFAULT_STEP_SECONDS = 8.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tracker-sim",
        help="serve a simulated voting-weight tracker and breaker targets on loopback",
        description=(
            "Serves GET /voting/governance following a scenario, POST /admin/pause and /admin/resume "
            "(recording calls, deduplicated by idempotency key), and a control API under /sim/ "
            "(state, calls, reading, scenario, fail, reset)."
        ),
    )
    p.add_argument("--scenario", default="steady", help=f"one of: {', '.join(SCENARIO_NAMES)} (default steady)")
    p.add_argument("--port", type=int, default=8922, help="port (default 8922; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--step-seconds",
        type=float,
        default=DEFAULT_STEP_SECONDS,
        help=f"seconds per scenario step (default {DEFAULT_STEP_SECONDS:g})",
    )
    p.add_argument("--per-request", action="store_true", help="advance one step per reading served instead")
    p.set_defaults(func=cmd_tracker_sim)

    p = sub.add_parser("guardian", help="talk to a running guardian: push a tracker reading")
    guardian_sub = p.add_subparsers(dest="guardian_command", required=True, metavar="SUBCOMMAND")
    push = guardian_sub.add_parser(
        "push",
        help="push a tracker reading to a guardian, checked first: a stale or invalid one is refused (exit 1)",
        description="Checks the reading as the guardian will (fields, votes, and last_updated against the "
        "guardian's tracker.staleness_seconds: the running guardian's own, asked through Temporal; with --api "
        "the repo-spec's), then sends it: as signal `reading` through Temporal, or with --api to "
        "POST /guardian/readings (bearer GUARDIAN_PUSH_TOKEN). "
        "A reading the guardian would refuse is not sent: one line says why (for a stale one, by how much). "
        "last_updated defaults to now.",
    )
    push.add_argument("--holder-control", type=float, help="holder_control_percentage (0-100)")
    push.add_argument("--total-votes", type=int, help="total_votes")
    push.add_argument("--holder-votes", type=int, help="holder_votes")
    push.add_argument("--seller-votes", type=int, help="seller_votes (default total - holder)")
    push.add_argument("--last-updated", default=None, help="ISO 8601 time of the reading (default: now)")
    push.add_argument(
        "--input", metavar="JSON", default=None, help="the whole reading as a JSON object (instead of the fields)"
    )
    push.add_argument(
        "--guardian", default=None, help="guardian workflow id (default: the first guardian the repo-spec declares)"
    )
    push.add_argument("--api", metavar="URL", default=None, help="push through the fleet's API instead of Temporal")
    push.set_defaults(func=cmd_guardian_push)


def make_simulator(
    scenario: str,
    *,
    step_seconds: float = DEFAULT_STEP_SECONDS,
    per_request: bool = False,
    rules: GuardianRules | None = None,
) -> TrackerSimulator:
    from govfleet.simulator import SCENARIOS, TrackerSimulator

    if scenario not in SCENARIOS:
        raise StartupError(f"--scenario {scenario!r} is not a tracker scenario; use one of {', '.join(SCENARIOS)}")
    if step_seconds <= 0:
        raise StartupError(f"--step-seconds must be positive, got {step_seconds:g}")
    return TrackerSimulator(scenario=scenario, step_seconds=step_seconds, per_request=per_request, rules=rules)


def cmd_tracker_sim(args: argparse.Namespace) -> int:
    sim = make_simulator(args.scenario, step_seconds=args.step_seconds, per_request=args.per_request)

    async def main() -> None:
        from govfleet.simulator import start_simulator

        try:
            running = await start_simulator(sim, host=args.host, port=args.port)
        except OSError as exc:
            raise StartupError(f"{exc}; choose another --port") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(
            f"tracker simulator on {running.url} (scenario {sim.scenario}, "
            f"{'one step per reading' if sim.per_request else f'one step every {sim.step_seconds:g} s'})\n"
            f"  GET  {running.url}/voting/governance\n"
            f"  POST {running.url}/admin/pause | /admin/resume\n"
            f"  GET  {running.url}/sim/state | /sim/calls"
            "    POST /sim/reading | /sim/scenario | /sim/fail | /sim/reset\n"
            "Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
        await running.stop()

    asyncio.run(main())
    return 0


def demo_config(config: Config, sim: RunningSimulator | None) -> Config:
    """`govfleet up`'s configuration: with the demo simulator running, the `guardian` block's
    tracker, and every breaker target that points at the repo-spec's tracker address, go to it.
    The reconciler, the API (/health probes that tracker) and the banner all use it."""
    from govfleet.settings import Config

    if sim is None or not config.spec.declares_default_guardian:
        return config  # a file without a `guardian` block gets none, not even in the demo
    g = config.spec.guardian
    tracker = g.tracker.url.rstrip("/")
    breakers = [b.model_copy(update={"url": sim.url}) if b.url.rstrip("/") == tracker else b for b in g.breakers]
    guardian = g.model_copy(update={"tracker": g.tracker.model_copy(update={"url": sim.url}), "breakers": breakers})
    return Config(settings=config.settings, spec=config.spec.model_copy(update={"guardian": guardian}))


async def start_simulator_for_up(
    args: argparse.Namespace, services, rules: GuardianRules | None = None
) -> RunningSimulator | None:
    """`govfleet up`: the tracker simulator for the demo, unless --no-simulator. The decline
    is fitted to the guardian's `rules`, so that the guardian shows every level on the way down."""
    from govfleet.simulator import start_simulator

    if getattr(args, "no_simulator", False):
        return None
    simulator = make_simulator(getattr(args, "scenario", "gradual-decline"), rules=rules)
    port = getattr(args, "tracker_port", 8922)
    try:
        sim = await start_simulator(simulator, port=port)
    except OSError as exc:
        raise StartupError(f"tracker simulator: {exc}; choose another --tracker-port or pass --no-simulator") from None
    services.stoppers.append(sim.stop)
    services.described.append(("Tracker sim", f"{sim.url} (scenario {simulator.scenario})"))
    return sim


# --- govfleet guardian push ------------------------------------------------------------------

READING_FIELDS = ("holder_control_percentage", "total_votes", "holder_votes", "seller_votes", "last_updated")


class PushRefused(ValueError):
    """The reading would be refused by the guardian; nothing was sent."""


def reading_from_args(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The reading to push: --input's JSON object, or the fields (last_updated: now)."""
    if args.input is not None:
        try:
            raw = json.loads(args.input)
        except json.JSONDecodeError as exc:
            raise PushRefused(f"--input is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise PushRefused(f"--input must be a JSON object (a tracker reading), got {type(raw).__name__}")
        raw.setdefault("last_updated", iso_z(now))
        return raw
    missing = [
        f"--{n}"
        for n in ("holder-control", "total-votes", "holder-votes")
        if getattr(args, n.replace("-", "_")) is None
    ]
    if missing:
        raise PushRefused(f"give {', '.join(missing)} (or the whole reading with --input JSON)")
    seller = args.seller_votes if args.seller_votes is not None else args.total_votes - args.holder_votes
    return {
        "holder_control_percentage": args.holder_control,
        "total_votes": args.total_votes,
        "holder_votes": args.holder_votes,
        "seller_votes": seller,
        "last_updated": args.last_updated or iso_z(now),
    }


def iso_z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float) -> str:
    """A duration for people: `95 s`, `2 min 5 s`, `3 h 4 min`, `6 d 10 h`."""
    s = round(abs(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def check_reading(raw: dict[str, Any], *, now: datetime, staleness_seconds: int) -> None:
    """PushRefused, in one line, when the guardian would refuse this reading."""
    from govfleet.domain.guardian.readings import InvalidReading, validate_reading

    try:
        validate_reading(raw, now=now, staleness_seconds=staleness_seconds)
    except InvalidReading as exc:
        if exc.code == "stale":
            updated = _parse_time(raw["last_updated"])
            age = (now - updated).total_seconds()
            raise PushRefused(
                f"stale reading: last_updated {iso_z(updated)} is {duration(age)} old, "
                f"{duration(age - staleness_seconds)} past the guardian's limit of {staleness_seconds} s "
                "(tracker.staleness_seconds); give a fresh --last-updated (default: now). Nothing was sent"
            ) from None
        raise PushRefused(f"invalid reading ({exc.code}): {exc.message}. Nothing was sent") from None


def _parse_time(value: Any) -> datetime:
    dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def cmd_guardian_push(args: argparse.Namespace) -> int:
    from govfleet.local_fleet import with_local_fleet
    from govfleet.settings import load_config

    config = with_local_fleet(load_config())
    declared = config.spec.declared_guardians()
    guardian_id = args.guardian or (declared[0].workflow_id if declared else None)
    if not guardian_id:
        raise StartupError("the repo-spec declares no guardian; give --guardian WORKFLOW_ID")
    now = datetime.now(UTC)
    try:
        raw = reading_from_args(args, now)
    except PushRefused as exc:
        print(f"govfleet guardian push: error: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_push(config, guardian_id, raw, args.api))


async def _push(config: Config, guardian_id: str, raw: dict[str, Any], api: str | None) -> int:
    from govfleet.contracts.guardian import CONFIG_QUERY, READING_SIGNAL
    from govfleet.local_fleet import connect_fleet

    spec = config.spec.guardian_by_id(guardian_id)
    staleness = spec.tracker.staleness_seconds if spec is not None else None
    client = None
    if api is None:
        client = await connect_fleet(config)
        # The running guardian's own limit (a repo-spec edit not yet reconciled is not in force).
        try:
            running = await client.get_workflow_handle(guardian_id).query(CONFIG_QUERY)
            staleness = int(running["staleness_seconds"])
        except Exception as exc:
            raise StartupError(
                f"guardian {guardian_id!r} did not answer (is it running?): {_first_line(exc)}"
            ) from None
    if staleness is None:
        raise StartupError(f"guardian {guardian_id!r} is not declared in the repo-spec; give --guardian")
    try:
        check_reading(raw, now=datetime.now(UTC), staleness_seconds=staleness)
    except PushRefused as exc:
        print(f"govfleet guardian push: error: {exc}", file=sys.stderr)
        return 1
    payload = {k: raw.get(k) for k in READING_FIELDS}
    if client is not None:
        try:
            await client.get_workflow_handle(guardian_id).signal(READING_SIGNAL, payload)
        except Exception as exc:
            raise StartupError(f"signal to guardian {guardian_id!r} failed: {_first_line(exc)}") from None
        via = "signal `reading`"
    else:
        assert api is not None  # no client: the --api path
        await _push_http(config, api, payload)
        via = f"{api.rstrip('/')}/guardian/readings"
    print(
        f"pushed to {guardian_id} via {via}: holder control {payload['holder_control_percentage']}%, "
        f"last_updated {payload['last_updated']} (within the {staleness} s limit); the guardian checks it at once",
        file=sys.stderr,
    )
    return 0


async def _push_http(config: Config, api: str, payload: dict[str, Any]) -> None:
    import httpx

    token = config.settings.GUARDIAN_PUSH_TOKEN
    if not token:
        raise StartupError("GUARDIAN_PUSH_TOKEN is not set: POST /guardian/readings needs it as the bearer token")
    url = api.rstrip("/") + "/guardian/readings"
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            resp = await http.post(url, json=payload, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise StartupError(f"the API at {api} did not answer: {_first_line(exc)}") from None
    if resp.status_code >= 300:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise StartupError(f"the API refused the reading ({resp.status_code}): {message}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
