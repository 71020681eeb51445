"""Serving an ASGI app in-process: a uvicorn `Server` in an asyncio task, on a socket bound by
us (port 0 picks a free port). Used for the API (`govfleet up`, `govfleet api`), the tracker
simulator, the tests' loopback receivers and the benchmarks. Signals stay with the host process:
uvicorn's own signal capture is disabled so Ctrl-C reaches `govfleet up`'s stop event. Every server
bounds its sockets the same way (`govfleet/api/sockets.py`: header and body timeouts, keep-alive,
a connection cap, one body framing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

from govfleet.api.sockets import SocketLimits, protocol_for

# uvicorn's life-cycle lines ("Started server process [pid]", "Waiting for application
# startup." ...) name no address, and every server of a process (the API, the tracker
# simulator) repeats them: the host process says what it serves, where, in its own line.
UVICORN_LIFECYCLE = (
    "Started server process",
    "Waiting for application startup",
    "Application startup complete",
    "Shutting down",
    "Waiting for application shutdown",
    "Application shutdown complete",
    "Finished server process",
)


class _QuietLifecycle(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith(UVICORN_LIFECYCLE))


def _quiet_uvicorn_lifecycle() -> None:
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietLifecycle) for f in error_log.filters):
        error_log.addFilter(_QuietLifecycle())


class _HostedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the host process owns SIGINT/SIGTERM
        yield


@dataclass
class RunningApi:
    server: uvicorn.Server
    task: asyncio.Task
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and accepted connections inherit it; without it Nagle + delayed ACKs add ~40 ms per response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


async def start_api(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    access_log: bool = False,
    timeout: float = 30.0,
    limits: SocketLimits | None = None,
) -> RunningApi:
    """Start serving any ASGI app; returns once its lifespan has started (or raises)."""
    limits = limits or SocketLimits()
    _quiet_uvicorn_lifecycle()
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from any loopback client as
    # the client's address, and the admin endpoints' per-address rate limit must see the real peer.
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=5,
        proxy_headers=False,
        http=protocol_for(limits),
        timeout_keep_alive=limits.keep_alive_seconds,  # type: ignore[arg-type]  # a float is fine: call_later
    )
    server = _HostedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"api:{bound_port}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not server.started:
        if task.done():
            sock.close()
            exc = task.exception()
            raise RuntimeError(f"the API did not start on {host}:{bound_port}: {exc or 'startup failed (see log)'}")
        if loop.time() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API did not start on {host}:{bound_port} within {timeout:g}s")
        await asyncio.sleep(0.02)
    return RunningApi(server=server, task=task, host=host, port=bound_port)
