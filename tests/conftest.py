"""Fixtures: a fresh PostgreSQL database and the Temporal dev server per session, the Temporal
time-skipping server per test (both binaries from pip), a fresh task queue per test.

`TEST_DATABASE_URL` (a server URL; a fresh database is created on it) is used when set,
otherwise an embedded PostgreSQL from `pgserver` is started for the session.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from govfleet import db
from govfleet.settings import Config, load_config
from govfleet.temporal import SEARCH_ATTRIBUTES, temporal_cli_path, test_server_path
from tests import processes

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = REPO_ROOT / ".cogni" / "repo-spec.yaml"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


_exit_status = {"code": 0}


def pytest_configure(config):
    processes.start_session()


_leftovers: list[str] = []  # reported by the xdist workers, on the controller


def pytest_sessionfinish(session, exitstatus):
    # Every process started from this session carries its marker (tests/processes.py); one
    # still running now was left behind by a test or a fixture: end it and fail the run.
    config = session.config
    if hasattr(config, "workerinput"):  # an xdist worker: its controller reports and fails
        config.workeroutput["leftover_processes"] = processes.sweep_session()
    elif getattr(config.option, "dist", "no") == "no":
        _leftovers.extend(processes.sweep_session())
    # (the controller's own marker is inherited by its workers, which check their processes)
    if _leftovers:
        sys.stderr.write("\nprocesses left behind by the tests (now ended):\n  " + "\n  ".join(_leftovers) + "\n")
        if exitstatus == 0:
            exitstatus = session.exitstatus = pytest.ExitCode.TESTS_FAILED
    _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _leftovers.extend(getattr(node, "workeroutput", {}).get("leftover_processes", []))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # The Temporal SDK's Rust runtime threads can abort a finalizing interpreter
    # (temporalio/sdk-python#300): leave without teardown, keeping pytest's exit code.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status["code"])


@pytest.fixture(scope="session")
def database_server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    tmp = tempfile.mkdtemp(prefix="govfleet-test-pg-")
    os.environ.setdefault("XDG_RUNTIME_DIR", tmp)
    server = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(database_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session; dropped at the end."""
    name = f"govfleet_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_server_url, name)
    db.migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(database_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def make_database(database_server_url: str) -> Iterator:
    """Factory for extra fresh databases (migrated unless migrate=False), dropped at session end."""
    made: list[str] = []

    def make(migrate: bool = True) -> str:
        name = f"govfleet_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(database_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        url = with_database(database_server_url, name)
        if migrate:
            db.migrate(url)
        return url

    yield make
    with psycopg.connect(database_server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def config() -> Config:
    """The example repo-spec with no environment overrides."""
    return load_config(environ={}, repo_spec_path=EXAMPLE_SPEC)


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test (it starts in a fraction of a second): skipping is
    global to a server, so another test's activity still in flight would hold its clock still."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=pydantic_data_converter
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"
