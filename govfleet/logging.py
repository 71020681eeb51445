"""structlog set-up: JSON when not on a terminal, readable on one.

Workflow and activity ids are bound into the context by the worker's activity interceptor
(`workers.factory`), so every log line an activity writes names what it belongs to.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    import structlog


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (not at configuration time),
    so a replaced or captured stderr never leaves loggers pointing at a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: str | None = None, level: str = "INFO") -> None:
    """One format for every log line of the process: structlog's own loggers and the standard
    library's (the Temporal SDK, uvicorn, httpx, apprise, yoyo) are rendered by the same
    processors, as JSON or for the console (docs/cli.md, "Logs")."""
    import structlog

    use_json = (fmt == "json") or (fmt is None and not sys.stderr.isatty())
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # structlog asks for a TextIO but only print()s to it; write() and flush() are enough.
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    # The standard library's records go through the same processors (plus the logger's name).
    handler = logging.StreamHandler(cast(TextIO, _CurrentStderr()))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)  # configured again (tests): one handler, never two
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("yoyo", "httpx", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_OURS = "_govfleet_handler"


class _LazyLogger:
    """A module-level logger that imports structlog at its first use, not at the import of the
    module that declares it (the command line's start-up time: docs/cli.md)."""

    def __init__(self, name: str | None) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import structlog

        return getattr(structlog.get_logger(self._name), attr)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return cast("structlog.stdlib.BoundLogger", _LazyLogger(name))
