"""`govfleet up` runs the demo: the tracker simulator and the guardian workflow start with
the fleet, and a decline is visible in Temporal — the level in the workflow list (search
attribute GovernanceLevel), the pause in the history."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from temporalio.api.enums.v1 import EventType

from govfleet.temporal import connect
from tests import processes
from tests.conftest import EXAMPLE_SPEC, REPO_ROOT
from tests.integration.guardian_support import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_up_demo_decline_is_visible_in_temporal(tmp_path, make_database):
    temporal_port, ui_port, tracker_port, api_port = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "VOTING_TRACKER_URL")}
    env.update(
        {
            "REPO_SPEC_PATH": str(EXAMPLE_SPEC),
            "SERVICE_PORT": str(api_port),
            "LOG_FORMAT": "json",
            "DATABASE_URL": make_database(),
            "MONITORING_INTERVAL_NORMAL": "2",
        }
    )
    proc = processes.spawn(
        [
            sys.executable,
            "-m",
            "govfleet.cli",
            "up",
            "--data-dir",
            str(tmp_path / "data"),
            "--temporal-port",
            str(temporal_port),
            "--ui-port",
            str(ui_port),
            "--tracker-port",
            str(tracker_port),
            "--scenario",
            "steady",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while "governance-fleet is up" not in "".join(lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("govfleet up did not come up:\n" + "".join(lines))
            time.sleep(0.2)
        out = "".join(lines)
        assert f"http://127.0.0.1:{tracker_port} (scenario steady)" in out
        assert "workflow governance-guardian (started)" in out
        # /health probes the tracker the guardian uses (the simulator's port), not the repo-spec's.
        health = httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=10).json()
        [guardian] = [w for w in health["workflows"] if w["kind"] == "guardian"]
        assert guardian["tracker_url"] == f"http://127.0.0.1:{tracker_port}" != "http://127.0.0.1:8922"
        assert guardian["tracker_connected"] is True and health["voting_tracker_connected"] is True

        client = await connect(f"127.0.0.1:{temporal_port}")

        async def listed(query: str) -> bool:
            return [w.id async for w in client.list_workflows(query)] == ["governance-guardian"]

        await eventually(lambda: listed('GovernanceLevel = "excellent" AND SystemStatus = "operational"'), timeout=60)
        # The tracker drops: the guardian pauses everything; the list shows it.
        httpx.post(f"http://127.0.0.1:{tracker_port}/sim/reading", json={"holder_control_percentage": 48.0})
        await eventually(lambda: listed('GovernanceLevel = "emergency" AND SystemStatus = "fully_paused"'), timeout=60)
        calls = httpx.get(f"http://127.0.0.1:{tracker_port}/sim/calls").json()["calls"]
        assert sorted(c["service"] for c in calls if c["action"] == "pause") == [
            "redemption-algorithm",
            "sol-treasury-core",
        ]
        history = await client.get_workflow_handle("governance-guardian").fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        assert [a.activity_type.name for a in scheduled].count("guardian_call_breaker") == 2
    finally:
        try:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(60)
        finally:
            processes.stop(proc)  # what a failed or hung stop left behind (test_up checks that nothing is)
    assert code == 0, "".join(lines)
