"""Processes that tests start, and the guarantee that none outlives its test.

Every process a test starts (a `govfleet worker`, `govfleet up`, a tracker simulator) is
started with `spawn`: in a process group of its own, and with a marker variable in its
environment (`GOVFLEET_TEST_PROCESS=<session>/<process>`). Everything it starts in turn inherits
the marker, including servers that leave the process group (PostgreSQL's `pg_ctl` starts the
postmaster in a session of its own). `stop` ends the group (SIGTERM, then SIGKILL) and then
every process still carrying the marker, so a test that fails halfway leaves nothing behind as
long as its `finally` or fixture calls `stop`.

The session sets its own marker at start (inherited by the dev server, the embedded PostgreSQL
and anything else started from the test process), and `sweep_session` at the end finds every
process still carrying it: tests/conftest.py ends them and fails the run, naming them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psutil

MARKER = "GOVFLEET_TEST_PROCESS"
_session = {"tag": ""}


def start_session() -> str:
    """A fresh marker for this test process (an xdist worker gets its own)."""
    tag = uuid.uuid4().hex[:12]
    _session["tag"] = tag
    os.environ[MARKER] = tag
    return tag


def session_tag() -> str:
    return _session["tag"] or start_session()


def spawn(args: Sequence[str], *, env: dict[str, str] | None = None, **popen_kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen` in a new process group, marked for `stop` and the session sweep."""
    child_env = dict(os.environ if env is None else env)
    child_env[MARKER] = f"{session_tag()}/{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(list(args), env=child_env, start_new_session=True, **popen_kwargs)
    proc.govfleet_marker = child_env[MARKER]  # type: ignore[attr-defined]
    return proc


def marked(prefix: str) -> list[psutil.Process]:
    """Processes (other than this one) whose marker is `prefix` or starts with `prefix/`."""
    found = []
    me = os.getpid()
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            value = p.environ().get(MARKER)
        except (psutil.Error, OSError):
            continue
        if value is not None and (value == prefix or value.startswith(prefix + "/")):
            found.append(p)
    return found


def end(processes: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    """SIGTERM, then SIGKILL what is still alive after `timeout`; returns what was found alive."""
    alive = []
    for p in processes:
        try:
            p.terminate()
            alive.append(p)
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(alive, timeout=timeout)
    for p in still:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(still, timeout=5)
    return alive


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
    """End `proc`, its process group and everything carrying its marker. Returns its exit code.

    `sig` goes to the leader only (SIGINT asks `govfleet up` to stop what it started); after
    `timeout` the whole group gets SIGTERM, then SIGKILL."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _signal_group(pgid, 0):
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    marker = getattr(proc, "govfleet_marker", None)
    if marker:
        end(marked(marker))
    return proc.returncode


def sweep_session() -> list[str]:
    """End every process still carrying this session's marker; describe each one found."""
    tag = _session["tag"]
    if not tag:
        return []
    found = marked(tag)
    described = []
    for p in found:
        try:
            described.append(f"pid {p.pid}: {' '.join(p.cmdline())[:200]}")
        except psutil.Error:
            described.append(f"pid {p.pid}")
    end(found)
    return described
