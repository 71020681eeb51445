"""Operational errors are one line on stderr, no traceback, exit code 2 (docs/cli.md): the real
command line in a subprocess, against loopback ports where nothing listens."""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.test_startup import run_govfleet
from tests.operator_spec import operator_spec


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(result, *fragments: str, code: int = 2) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, result.stderr
    assert lines[0].startswith("govfleet: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    # A data dir of its own: no `govfleet up` of this machine is found and used instead.
    return {"REPO_SPEC_PATH": str(operator_spec()), "GOVFLEET_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize("command", [["ledger", "verify"], ["ledger", "balance"], ["grant", "show"]])
def test_unreachable_database_is_one_line_within_the_connect_timeout(env, command):
    port = closed_port()
    started = time.monotonic()
    result = run_govfleet(
        *command,
        env={
            **env,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/nothing",
            "DATABASE_CONNECT_TIMEOUT_SECONDS": "1",
        },
    )
    one_line(result, f"database unreachable at postgresql://postgres@127.0.0.1:{port}/nothing after 1s")
    # Bounded by the timeout (plus start-up), not by the pool's 30 s of retries.
    assert time.monotonic() - started < 20


def test_status_with_temporal_unreachable_is_one_line(env):
    port = closed_port()
    result = run_govfleet("status", env={**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"})
    one_line(result, f"Temporal unreachable at 127.0.0.1:{port}", "start it or set TEMPORAL_ADDRESS")


def test_status_with_the_api_unreachable_is_one_line(env):
    port = closed_port()
    result = run_govfleet("status", "--api", f"http://127.0.0.1:{port}", env=env)
    one_line(result, f"the API at http://127.0.0.1:{port} did not answer")


def test_reconcile_with_temporal_unreachable_is_one_line(env):
    port = closed_port()
    result = run_govfleet("reconcile", env={**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"})
    one_line(result, f"Temporal unreachable at 127.0.0.1:{port}")


def test_worker_with_temporal_unreachable_is_one_line(env, database_url):
    port = closed_port()
    result = run_govfleet(
        "worker", "--no-reconcile", env={**env, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    )
    one_line(result, f"Temporal unreachable at 127.0.0.1:{port}")


def test_pay_with_the_api_unreachable_is_one_line(env):
    port = closed_port()
    result = run_govfleet(
        "pay",
        "--id",
        "p-1",
        "--user",
        "u-1",
        "--cents",
        "100",
        "--api",
        f"http://127.0.0.1:{port}",
        env={**env, "PAYMENT_SIGNING_SECRET": "0123456789abcdef0123"},
    )
    one_line(result, f"the API at http://127.0.0.1:{port} did not answer")


def test_up_with_its_port_taken_is_one_line_and_starts_nothing(env, tmp_path):
    # What a second `govfleet up` meets: the first one's ports are taken.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_govfleet("up", env={**env, "SERVICE_PORT": str(port)})
    one_line(result, f"port {port} for the API (SERVICE_PORT) on 127.0.0.1 is already in use")
    assert not (tmp_path / "data" / "postgres").exists()  # nothing was started


def test_an_unexpected_error_is_one_line_unless_debug(env):
    # A benchmark module that does not exist: not an operational error the command foresaw.
    result = run_govfleet("bench", "--only", "no_such_bench", "--output", "/dev/null", env=env)
    line = one_line(result, "ModuleNotFoundError", "--debug", code=1)
    assert "no_such_bench" in line
    debug = run_govfleet("--debug", "bench", "--only", "no_such_bench", "--output", "/dev/null", env=env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ModuleNotFoundError" in debug.stderr
    by_env = run_govfleet(
        "bench", "--only", "no_such_bench", "--output", "/dev/null", env={**env, "GOVFLEET_DEBUG": "1"}
    )
    assert "Traceback" in by_env.stderr
