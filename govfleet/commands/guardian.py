"""`govfleet tracker-sim`, and the guardian's part of `govfleet up`: the tracker simulator for
the demo, and the configuration that points the `guardian` block at it (the guardian itself is
started by the same reconcile as everywhere: docs/declared-workflows.md)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from govfleet.errors import StartupError
from govfleet.logging import get_logger

if TYPE_CHECKING:
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


def make_simulator(
    scenario: str, *, step_seconds: float = DEFAULT_STEP_SECONDS, per_request: bool = False
) -> TrackerSimulator:
    from govfleet.simulator import SCENARIOS, TrackerSimulator

    if scenario not in SCENARIOS:
        raise StartupError(f"--scenario {scenario!r} is not a tracker scenario; use one of {', '.join(SCENARIOS)}")
    if step_seconds <= 0:
        raise StartupError(f"--step-seconds must be positive, got {step_seconds:g}")
    return TrackerSimulator(scenario=scenario, step_seconds=step_seconds, per_request=per_request)


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

    if sim is None:
        return config
    g = config.spec.guardian
    tracker = g.tracker.url.rstrip("/")
    breakers = [b.model_copy(update={"url": sim.url}) if b.url.rstrip("/") == tracker else b for b in g.breakers]
    guardian = g.model_copy(update={"tracker": g.tracker.model_copy(update={"url": sim.url}), "breakers": breakers})
    return Config(settings=config.settings, spec=config.spec.model_copy(update={"guardian": guardian}))


async def start_simulator_for_up(args: argparse.Namespace, services) -> RunningSimulator | None:
    """`govfleet up`: the tracker simulator for the demo, unless --no-simulator."""
    from govfleet.simulator import start_simulator

    if getattr(args, "no_simulator", False):
        return None
    simulator = make_simulator(getattr(args, "scenario", "gradual-decline"))
    port = getattr(args, "tracker_port", 8922)
    try:
        sim = await start_simulator(simulator, port=port)
    except OSError as exc:
        raise StartupError(f"tracker simulator: {exc}; choose another --tracker-port or pass --no-simulator") from None
    services.stoppers.append(sim.stop)
    services.described.append(("Tracker sim", f"{sim.url} (scenario {simulator.scenario})"))
    return sim
