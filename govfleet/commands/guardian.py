"""`govfleet tracker-sim`, and the guardian's part of `govfleet up`: the tracker simulator
for the demo and the guardian workflow (started when not running, reconfigured when
repo-spec changed)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from govfleet.contracts.guardian import CONFIG_QUERY, CONFIGURE_SIGNAL, GUARDIAN_WORKFLOW, GuardianConfig, GuardianInput
from govfleet.db import StartupError
from govfleet.logging import get_logger
from govfleet.repo_spec import guardian_config
from govfleet.settings import Config
from govfleet.simulator import DEFAULT_STEP_SECONDS, SCENARIOS, RunningSimulator, TrackerSimulator, start_simulator

log = get_logger("govfleet.guardian")


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
    p.add_argument("--scenario", default="steady", help=f"one of: {', '.join(SCENARIOS)} (default steady)")
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
    if scenario not in SCENARIOS:
        raise StartupError(f"--scenario {scenario!r} is not a tracker scenario; use one of {', '.join(SCENARIOS)}")
    if step_seconds <= 0:
        raise StartupError(f"--step-seconds must be positive, got {step_seconds:g}")
    return TrackerSimulator(scenario=scenario, step_seconds=step_seconds, per_request=per_request)


def cmd_tracker_sim(args: argparse.Namespace) -> int:
    sim = make_simulator(args.scenario, step_seconds=args.step_seconds, per_request=args.per_request)

    async def main() -> None:
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


def demo_guardian_config(config: Config, sim: RunningSimulator | None) -> GuardianConfig:
    """The guardian's configuration from repo-spec; with the demo simulator running, the
    tracker, and every breaker target that points at the repo-spec's tracker address, go to it."""
    cfg = guardian_config(config.spec.guardian)
    if sim is None:
        return cfg
    tracker = config.spec.guardian.tracker.url.rstrip("/")
    breakers = [b.model_copy(update={"url": sim.url}) if b.url.rstrip("/") == tracker else b for b in cfg.breakers]
    return cfg.model_copy(update={"tracker_url": sim.url, "breakers": breakers})


async def ensure_guardian(client: Client, task_queue: str, cfg: GuardianConfig) -> tuple[WorkflowHandle, str]:
    """Start the guardian workflow unless it runs; send it `configure` when its configuration
    differs. Returns the handle and what was done: started | reconfigured | running."""
    try:
        handle = await client.start_workflow(
            GUARDIAN_WORKFLOW,
            GuardianInput(config=cfg),
            id=cfg.guardian_id,
            task_queue=task_queue,
        )
        return handle, "started"
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(cfg.guardian_id)
    current = await handle.query(CONFIG_QUERY, result_type=GuardianConfig)
    if current != cfg:
        await handle.signal(CONFIGURE_SIGNAL, cfg)
        return handle, "reconfigured"
    return handle, "running"


async def start_guardian_services(config: Config, client: Client, args: argparse.Namespace, services) -> None:
    """`govfleet up`: the tracker simulator (unless --no-simulator) and the guardian workflow."""
    sim: RunningSimulator | None = None
    if not getattr(args, "no_simulator", False):
        simulator = make_simulator(getattr(args, "scenario", "gradual-decline"))
        port = getattr(args, "tracker_port", 8922)
        try:
            sim = await start_simulator(simulator, port=port)
        except OSError as exc:
            log.warning("tracker simulator not started", reason=str(exc))
            services.described.append(("Tracker sim", f"not started ({exc})"))
        else:
            services.stoppers.append(sim.stop)
            services.described.append(("Tracker sim", f"{sim.url} (scenario {simulator.scenario})"))
    cfg = demo_guardian_config(config, sim)
    _, what = await ensure_guardian(client, config.settings.TEMPORAL_TASK_QUEUE, cfg)
    services.described.append(("Guardian", f"workflow {cfg.guardian_id} ({what}), tracker {cfg.tracker_url}"))
