"""`govfleet` command line. Each command lives in `govfleet/commands/<area>.py` and
registers its sub-parsers; this module only assembles them and turns fail-fast errors
into one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from govfleet.db import StartupError
from govfleet.repo_spec import RepoSpecError
from govfleet.settings import ConfigError

COMMAND_MODULES = [
    "govfleet.commands.fleet",  # up, worker, migrate
    "govfleet.commands.ledger",  # pay, ledger verify|balance
    "govfleet.commands.bench",  # bench
    "govfleet.commands.schedules",  # reconcile
    "govfleet.commands.status",  # api, status
    "govfleet.commands.sign",  # sign pause|resume
    "govfleet.commands.guardian",  # tracker-sim
    "govfleet.commands.grant",  # grant show|renew
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govfleet", description="Run a DAO's governance operations on Temporal.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command; returns the exit code (for in-process callers)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (StartupError, RepoSpecError, ConfigError) as exc:
        print(f"govfleet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    # SIGTERM means what Ctrl-C means, from the first instant (commands that run an event loop
    # install their own handlers for both; docs/deployment.md).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = run(argv)
    except KeyboardInterrupt:  # while the command was still being loaded: nothing started
        code = 130
    # Skip interpreter teardown: the Temporal SDK's Rust runtime threads can abort a
    # finalizing interpreter (temporalio/sdk-python#300), which would turn a clean
    # exit into SIGABRT. Everything worth keeping is flushed first.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
