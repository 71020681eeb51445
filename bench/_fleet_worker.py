"""The fleet's worker (what `govfleet worker` runs) with worker options from the command line,
so that the fleet benchmarks can compare settings in real, killable worker processes.

    python -m bench._fleet_worker [--sticky-seconds S] [--max-cached N] [--max-tasks N]

Configured like `govfleet worker`: TEMPORAL_ADDRESS, DATABASE_URL, TEMPORAL_TASK_QUEUE,
REPO_SPEC_PATH, METRICS_PORT. Prints `worker polling` once it polls.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from govfleet.commands.fleet import require_database_url, run_workers_until
    from govfleet.logging import configure_logging
    from govfleet.settings import load_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sticky-seconds", type=float, default=None, help="sticky queue schedule-to-start timeout")
    p.add_argument("--max-cached", type=int, default=None, help="max cached workflows")
    p.add_argument("--max-tasks", type=int, default=None, help="max concurrent workflow tasks")
    args = p.parse_args(argv)
    options: dict[str, Any] = {}
    if args.sticky_seconds is not None:
        options["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=args.sticky_seconds)
    if args.max_cached is not None:
        options["max_cached_workflows"] = args.max_cached
    if args.max_tasks is not None:
        options["max_concurrent_workflow_tasks"] = args.max_tasks

    config = load_config()
    configure_logging(config.settings.LOG_FORMAT, config.settings.LOG_LEVEL)
    url = require_database_url(config)
    address = config.settings.TEMPORAL_ADDRESS
    if not address:
        p.error("TEMPORAL_ADDRESS is not set")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_workers_until(config, url, address, stop, **options)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
