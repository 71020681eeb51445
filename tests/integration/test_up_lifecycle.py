"""`govfleet up` starting and stopping at any moment: a port already taken is one line and exit 2
before anything starts; SIGTERM (like Ctrl-C) during start-up or after it ends every process it
started within 15 s; a PostgreSQL left running by an `up` killed with -9 is taken over by the
next `up` and stopped with it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.integration.test_up import Fleet, free_port, server_pids

pytestmark = pytest.mark.slow

STOP_WITHIN = 15.0


@pytest.fixture
def data_dir():
    """Outside pytest's /tmp/pytest-of-<user>: a pytest session starting meanwhile makes that 0700
    again, which locks out the system user PostgreSQL runs as under root."""
    root = Path(tempfile.mkdtemp(prefix="govfleet-up-"))
    try:
        yield root / "data"
    finally:
        kill_leftovers(root / "data")
        shutil.rmtree(root, ignore_errors=True)


def stop_and_time(fleet: Fleet, sig: int = signal.SIGTERM) -> tuple[int, float]:
    started = time.monotonic()
    assert fleet.proc is not None
    fleet.proc.send_signal(sig)
    try:
        code = fleet.proc.wait(STOP_WITHIN + 10)
    except subprocess.TimeoutExpired:
        fleet.proc.kill()
        raise AssertionError(
            f"`govfleet up` still running {STOP_WITHIN + 10:g} s after {sig!r}:\n{fleet.output}"
        ) from None
    return code, time.monotonic() - started


def leftovers(data_dir) -> list[str]:
    """Processes of ours still alive: anything naming the data dir (Temporal, PostgreSQL)."""
    time.sleep(0.5)
    found = []
    for pid in server_pids(data_dir):
        with contextlib.suppress(psutil.NoSuchProcess):
            found.append(" ".join(psutil.Process(pid).cmdline())[:200])
    return found


def kill_leftovers(data_dir) -> None:
    for pid in server_pids(data_dir):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def up_until_exit(fleet: Fleet, *args: str) -> subprocess.CompletedProcess:
    """`govfleet up` on the fleet's data dir with `args`, expected to end by itself."""
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", "up", "--data-dir", str(fleet.data_dir), *args],
        env=fleet.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_port_in_use_is_one_line_and_exit_2_before_anything_starts(data_dir):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        fleet = Fleet(data_dir)
        fleet.env["SERVICE_PORT"] = str(port)
        out = up_until_exit(
            fleet, "--no-simulator", "--temporal-port", str(fleet.temporal_port), "--ui-port", str(fleet.ui_port)
        )
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [
        f"govfleet: error: port {port} for the API (SERVICE_PORT) on 127.0.0.1 is already in use; "
        "stop what holds it or choose another port"
    ]
    assert not (data_dir / "postgres").exists() and not (data_dir / "temporal").exists()  # nothing started
    assert leftovers(data_dir) == []


MOMENTS = {
    "at once": None,
    "while PostgreSQL starts": "postgres/pgdata",
    "while Temporal starts": "temporal/temporal.log",
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigterm_during_start_up_ends_everything_within_15_s(data_dir, moment):
    fleet = Fleet(data_dir)
    try:
        fleet.start(wait=False)
        if MOMENTS[moment] is not None:
            deadline = time.monotonic() + 120
            while not (data_dir / MOMENTS[moment]).exists():
                assert fleet.proc is not None and fleet.proc.poll() is None, fleet.output
                assert time.monotonic() < deadline, f"start-up never reached {moment}:\n{fleet.output}"
                time.sleep(0.05)
        code, took = stop_and_time(fleet)
        print(f"SIGTERM {moment}: `govfleet up` ended in {took:.1f} s (exit {code})")
        assert took <= STOP_WITHIN, (took, fleet.output)
        # 0 stopped; 130 interrupted before anything started; 1 the deadline had to kill something;
        # -SIGTERM: the signal came while the interpreter was still starting (nothing started)
        assert code in (0, 1, 130, -signal.SIGTERM), fleet.output
        assert leftovers(data_dir) == [], fleet.output
        assert "Traceback" not in fleet.output, fleet.output
    finally:
        kill_leftovers(data_dir)


def test_sigterm_after_start_up_is_like_ctrl_c(data_dir):
    fleet = Fleet(data_dir)
    try:
        fleet.start()
        code, took = stop_and_time(fleet)
        assert code == 0 and took <= STOP_WITHIN, (code, took, fleet.output)
        assert leftovers(data_dir) == []
        assert not (data_dir / "fleet.json").exists()
    finally:
        kill_leftovers(data_dir)


def test_a_postgres_left_by_a_killed_up_is_reused_then_stopped(data_dir):
    first = Fleet(data_dir)
    again = Fleet(data_dir)
    try:
        first.start()
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        time.sleep(1)
        left = leftovers(data_dir)
        assert any("postgres" in cmd for cmd in left), left  # PostgreSQL is a daemon: it outlives a kill -9

        again.start()
        assert "PostgreSQL left running earlier, reused" in again.output, again.output
        code, took = stop_and_time(again, signal.SIGINT)
        assert code == 0 and took <= STOP_WITHIN, (code, took, again.output)
        assert leftovers(data_dir) == [], again.output
    finally:
        kill_leftovers(data_dir)


def test_ports_are_checked_for_the_simulator_and_temporal_too(data_dir):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        fleet = Fleet(data_dir)
        out = up_until_exit(
            fleet, "--temporal-port", str(port), "--ui-port", str(free_port()), "--tracker-port", str(free_port())
        )
    assert out.returncode == 2 and f"port {port} for the Temporal (--temporal-port)" in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1
