"""Processes of the production-path test: every `govfleet` process in its own session (process
group), its output in a log file, and a `Processes` set that ends every one of them — SIGTERM to
the group, then SIGKILL — whatever happened in the test. A `Proc` has what
`fleet_support.wait_for` shows of a process when a wait times out (`pid`, `alive()`, `log_tail()`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO_ROOT


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        self._group(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int | None:
        if self.alive():
            self._group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._group(signal.SIGKILL)
                self.proc.wait(10)
        self._group(signal.SIGKILL)  # children left in the group, if any
        return self.proc.returncode


@dataclass
class Processes:
    """`govfleet` processes of one test; `stop_all` ends every one, in reverse order."""

    env: dict[str, str]
    logs: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "govfleet.cli", *args],
                cwd=REPO_ROOT,
                env={**self.env, **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        p = Proc(name, proc, log)
        self.started.append(p)
        return p

    def run(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A one-shot command to completion (its own group, killed at the timeout)."""
        p = self.start(name, *args)
        try:
            p.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            p.stop(1)
            raise AssertionError(
                f"`govfleet {' '.join(args)}` did not finish in {timeout:g}s:\n{p.log_tail()}"
            ) from None
        return subprocess.CompletedProcess(p.proc.args, p.proc.returncode, p.log_tail(100_000), "")

    def stop_all(self) -> None:
        for p in reversed(self.started):
            p.stop()

    def dump(self) -> str:
        return "\n".join(
            f"--- {p.name} (pid {p.pid}, {'alive' if p.alive() else p.proc.returncode}):\n{p.log_tail(3000)}"
            for p in self.started
        )


def listening(proc: Proc, after: str) -> str | None:
    """The `http://host:port` a process printed after `after` (servers started on port 0)."""
    text = proc.log_tail(200_000)
    at = text.find(after)
    if at < 0:
        return None
    url = text[at + len(after) :].split()[0]
    return url.rstrip("/.,)") if url.startswith("http://") else None
