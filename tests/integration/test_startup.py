"""Fail fast: the worker refuses to start with one clear line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg

from tests.conftest import REPO_ROOT
from tests.operator_spec import operator_spec

# The repo-spec of a deployment: the example's with the operator's own admins.
OPERATOR_SPEC = operator_spec()


def run_govfleet(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "govfleet.cli", *args],
        env={**base, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("govfleet: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_worker_refuses_a_bad_cron(tmp_path, database_url):
    spec = tmp_path / "repo-spec.yaml"
    spec.write_text(OPERATOR_SPEC.read_text().replace('cron: "0 */6 * * *"', 'cron: "61 * * * *"'))
    result = run_govfleet(
        "worker", env={"REPO_SPEC_PATH": str(spec), "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )
    assert_one_line_error(result, "governance.schedules[0].cron: '61 * * * *' is not a valid 5-field cron expression")


def test_worker_refuses_without_the_system_tenant(make_database):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM execution_grants")
        conn.execute("DELETE FROM billing_accounts WHERE id = 'cogni_system'")
    result = run_govfleet(
        "worker", env={"REPO_SPEC_PATH": str(OPERATOR_SPEC), "DATABASE_URL": url, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )
    assert_one_line_error(result, "system tenant 'cogni_system'", "govfleet migrate")


def test_worker_refuses_an_unreachable_database_after_a_bounded_retry():
    started = time.monotonic()
    result = run_govfleet(
        "worker",
        env={
            "REPO_SPEC_PATH": str(OPERATOR_SPEC),
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing",
            "DATABASE_CONNECT_TIMEOUT_SECONDS": "1",
            "TEMPORAL_ADDRESS": "127.0.0.1:1",
        },
    )
    assert_one_line_error(result, "database unreachable at postgresql://postgres@127.0.0.1:1/nothing after 1s")
    assert time.monotonic() - started < 30


def test_worker_needs_its_addresses():
    result = run_govfleet("worker", env={"REPO_SPEC_PATH": str(OPERATOR_SPEC)})
    assert_one_line_error(result, "DATABASE_URL is not set")


def test_invalid_environment_is_one_line():
    result = run_govfleet("migrate", env={"REPO_SPEC_PATH": str(OPERATOR_SPEC), "SYSTEM_TENANT_REVENUE_SHARE": "2"})
    assert_one_line_error(result, "SYSTEM_TENANT_REVENUE_SHARE", "between 0 and 1")


def test_migrate_is_idempotent(make_database):
    url = make_database(migrate=False)
    env = {"REPO_SPEC_PATH": str(OPERATOR_SPEC), "DATABASE_URL": url}
    first = run_govfleet("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "0001_schema" in first.stdout and "0002_rls_and_system_tenant" in first.stdout
    second = run_govfleet("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "none (up to date)" in second.stdout
