"""`govfleet up` on a fresh data dir: embedded Temporal (UI) and PostgreSQL, migrated, workers polling;
Ctrl-C leaves no server process behind; a second `up` finds the earlier state."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from govfleet.settings import DEFAULT_TASK_QUEUE
from govfleet.temporal import connect
from tests import processes
from tests.conftest import EXAMPLE_SPEC, REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.temporal_port, self.ui_port = free_port(), free_port()
        # No notification channel of this machine's: the banner says nobody is told.
        dropped = {"TEMPORAL_ADDRESS", "DATABASE_URL", "TEST_DATABASE_URL", "NOTIFY_URLS", "SLACK_WEBHOOK_URL"}
        dropped |= {
            "ADMIN_EMAIL",
            "GOVFLEET_ADMIN_NOTIFY_URL",
            "GOVFLEET_URGENT_NOTIFY_URL",
            "GOVFLEET_THROWAWAY_ENVIRONMENT",
        }
        self.env = {k: v for k, v in os.environ.items() if k not in dropped}
        self.env.update(
            {
                "REPO_SPEC_PATH": str(EXAMPLE_SPEC),
                "SERVICE_PORT": str(free_port()),
                "VOTING_TRACKER_URL": f"http://127.0.0.1:{free_port()}",
                "LOG_FORMAT": "json",
            }
        )
        self.proc: subprocess.Popen | None = None
        self._lines = []

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def start(self, timeout: float = 120, wait: bool = True) -> None:
        """Start `govfleet up`; unless `wait` is false, until its banner says it is up."""
        self.proc = processes.spawn(
            [
                sys.executable,
                "-m",
                "govfleet.cli",
                "up",
                "--data-dir",
                str(self.data_dir),
                "--temporal-port",
                str(self.temporal_port),
                "--ui-port",
                str(self.ui_port),
                "--no-simulator",
                "--tracker-port",
                str(free_port()),
            ],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        threading.Thread(target=lambda: self._lines.extend(iter(self.proc.stdout.readline, "")), daemon=True).start()
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while "governance-fleet is up" not in self.output:
            if self.proc.poll() is not None:
                time.sleep(0.5)
                pytest.fail(f"govfleet up exited with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"govfleet up did not come up:\n{self.output}")
            time.sleep(0.2)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a user would stop it (what it leaves behind is for the test to see)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        time.sleep(0.2)
        return code


@pytest.fixture
def fleets():
    """`Fleet`s started by a test; when it ends, also when it fails, whatever is left of them
    (the process, its process group, the servers it started) is ended."""
    started: list[Fleet] = []
    yield started
    for fleet in started:
        if fleet.proc is not None:
            processes.stop(fleet.proc, sig=signal.SIGINT, timeout=30)


def server_pids(data_dir: Path) -> list[int]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data_dir) in cmd:
            found.append(p.info["pid"])
    return found


async def _worker_is_polling(address: str) -> bool:
    client = await connect(address)
    for _ in range(50):
        resp = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name=DEFAULT_TASK_QUEUE),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        if resp.pollers:
            return True
        await asyncio.sleep(0.2)
    return False


async def test_up_runs_the_fleet_and_stops_everything(tmp_path, fleets):
    data_dir = tmp_path / "data"
    fleet = Fleet(data_dir)
    fleets.append(fleet)
    fleet.start()
    try:
        assert f"Temporal UI:   http://127.0.0.1:{fleet.ui_port}" in fleet.output
        # Never silent, and the demo's keys named (docs/notifications.md, docs/security.md).
        assert "  Notifications: governance-guardian: no notification channel: its alerts reach nobody" in fleet.output
        assert (
            "  Admins:        demo admins with public keys: 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" in fleet.output
        )
        with socket.create_connection(("127.0.0.1", fleet.ui_port), timeout=5):
            pass
        address = f"127.0.0.1:{fleet.temporal_port}"
        assert await _worker_is_polling(address)
        assert (data_dir / "temporal" / "temporal.db").exists()
        assert (data_dir / "postgres" / "pgdata" / "PG_VERSION").exists()
        # A second shell needs no configuration: commands find the running fleet.
        env = {k: v for k, v in fleet.env.items()}
        env["GOVFLEET_DATA_DIR"] = str(data_dir)
        status = subprocess.run(
            [sys.executable, "-m", "govfleet.cli", "status", "--json"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert '"systemCredits"' in status.stdout
        verify = subprocess.run(
            [sys.executable, "-m", "govfleet.cli", "ledger", "verify"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert verify.returncode == 0, verify.stderr
        client = await connect(address)
        handle = await client.start_workflow("StateSurvivesRestart", id="state-check", task_queue="nobody-polls")
        first_run_id = handle.result_run_id
    finally:
        code = fleet.interrupt()
    assert code == 0, fleet.output
    time.sleep(1)
    assert server_pids(data_dir) == [], "a server process outlived `govfleet up`"
    assert not (data_dir / "fleet.json").exists()

    again = Fleet(data_dir)
    fleets.append(again)
    again.start()
    try:
        client = await connect(f"127.0.0.1:{again.temporal_port}")
        desc = await client.get_workflow_handle("state-check").describe()
        assert desc.run_id == first_run_id
    finally:
        assert again.interrupt() == 0
    time.sleep(1)
    assert server_pids(data_dir) == []
