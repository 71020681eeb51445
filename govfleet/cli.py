"""`govfleet` command line. Each command lives in `govfleet/commands/<area>.py` and
registers its sub-parsers; this module only assembles them and turns operational errors
into one clear line and a non-zero exit (docs/cli.md).

Start-up time matters (`govfleet --help` must not wait seconds): this module and every
command module import only the standard library at the top; what a command needs (Temporal,
pydantic models, the database driver, HTTP clients, structlog) is imported inside the function
that runs it. tests/unit/test_cli_imports.py checks it; bench/cli_start_bench.py measures it.

Exit codes: 0 done; 1 refused or failed (the command's own meaning, see its help); 2 a
configuration or connection problem (invalid environment or repo-spec, a server unreachable,
a port taken); 130 interrupted. With `--debug` (or GOVFLEET_DEBUG=1) an unexpected error
prints its traceback; without, one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

COMMAND_MODULES = [
    "govfleet.commands.fleet",  # up, worker, migrate
    "govfleet.commands.ledger",  # pay, ledger verify|balance
    "govfleet.commands.bench",  # bench
    "govfleet.commands.schedules",  # reconcile
    "govfleet.commands.status",  # api, status
    "govfleet.commands.sign",  # sign pause|resume, admin-key new
    "govfleet.commands.guardian",  # tracker-sim, guardian push
    "govfleet.commands.grant",  # grant show|renew
]

# Errors that are a configuration or connection problem, by (module, class): each is one line
# and exit 2. Looked up in sys.modules, so that checking for them imports nothing (a module
# that was never imported cannot have raised its error).
CONFIGURATION_ERRORS = [
    ("govfleet.errors", "StartupError"),
    ("govfleet.repo_spec", "RepoSpecError"),
    ("govfleet.settings", "ConfigError"),
]
DEBUG_ENV = "GOVFLEET_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govfleet", description="Run a DAO's governance operations on Temporal.")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"print the traceback of an unexpected error instead of one line (also {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def debug_enabled(args: argparse.Namespace | None = None) -> bool:
    return bool(args is not None and getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in (
        "",
        "0",
        "false",
    )


def is_configuration_error(exc: BaseException) -> bool:
    for module_name, class_name in CONFIGURATION_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is not None and isinstance(exc, cls):
            return True
    return False


def one_line(exc: BaseException) -> str:
    """The error as one line: its first line, or its type when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command; returns the exit code (for in-process callers)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        os.environ[DEBUG_ENV] = "1"  # for what reads it later (a traceback in a log line)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if is_configuration_error(exc):
            print(f"govfleet: error: {exc}", file=sys.stderr)
            return 2
        if debug_enabled(args):
            raise
        # Anything else is a bug or an outage this command did not foresee: still one line,
        # naming its type, and how to see the rest.
        print(
            f"govfleet: error: {type(exc).__name__}: {one_line(exc)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    # SIGTERM means what Ctrl-C means, from the first instant (commands that run an event loop
    # install their own handlers for both; docs/deployment.md).
    signal.signal(signal.SIGTERM, _interrupt)
    code = 1
    try:
        code = run(argv)
    except KeyboardInterrupt:  # while the command was still being loaded: nothing started
        code = 130
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException:
        import traceback

        traceback.print_exc()  # only with --debug: run() turned everything else into one line
    # Skip interpreter teardown: the Temporal SDK's Rust runtime threads can abort a
    # finalizing interpreter (temporalio/sdk-python#300), which would turn a clean
    # exit into SIGABRT. Everything worth keeping is flushed first.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
