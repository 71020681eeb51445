"""`govfleet guardian push` against a real guardian (dev server, the guardian workflow with its
real activities, PostgreSQL, the loopback tracker simulator): a stale reading is refused with
one line saying by how much, against the running guardian's own staleness limit, and is not
sent; a fresh one reaches the guardian. The CLI runs as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from govfleet.contracts.guardian import GOVERNANCE_QUERY
from govfleet.settings import load_config
from govfleet.simulator import TrackerSimulator, start_simulator
from tests.conftest import EXAMPLE_SPEC, REPO_ROOT
from tests.integration.guardian_support import (
    NotificationRecorder,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    notable_events,
    start_guardian,
)

STALENESS = 30  # the running guardian's limit; the repo-spec says 120


async def push(address: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(TEMPORAL_ADDRESS=address, REPO_SPEC_PATH=str(EXAMPLE_SPEC), GOVFLEET_DATA_DIR=str(tmp_path / "no-fleet"))
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "govfleet.cli", "guardian", "push", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
async def guardian(dev_env, make_database, task_queue):
    url = make_database()
    config = load_config(environ={"REPO_SPEC_PATH": str(EXAMPLE_SPEC), "DATABASE_URL": url})
    sim = await start_simulator(TrackerSimulator(per_request=True))
    sim.sim.set_reading(70.5)
    guardian_id = new_guardian_id()
    try:
        async with guardian_worker(dev_env.client, task_queue, config, url, NotificationRecorder()):
            cfg = make_config(config, sim, guardian_id, staleness_seconds=STALENESS)
            handle = await start_guardian(dev_env.client, task_queue, cfg)
            try:
                yield handle, sim, url
            finally:
                await handle.terminate("test over")
    finally:
        await sim.stop()


async def test_a_stale_reading_is_refused_by_how_much_and_not_sent(dev_env, guardian, tmp_path):
    handle, _sim, url = guardian
    address = dev_env.client.service_client.config.target_host
    # 90 s old: within the repo-spec's 120 s, but not the running guardian's 30 s.
    old = (datetime.now(UTC) - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = await push(
        address,
        tmp_path,
        "--guardian",
        handle.id,
        "--holder-control",
        "48",
        "--total-votes",
        "10000",
        "--holder-votes",
        "4800",
        "--last-updated",
        old,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"govfleet guardian push: error: stale reading: last_updated {old} is ")
    assert "past the guardian's limit of 30 s" in lines[0] and "Nothing was sent" in lines[0]
    # The documented example's fixed date: days old.
    fixed = await push(
        address,
        tmp_path,
        "--guardian",
        handle.id,
        "--input",
        '{"holder_control_percentage": 48.0, "total_votes": 10000, "holder_votes": 4800, '
        '"seller_votes": 5200, "last_updated": "2026-11-22T02:30:00Z"}',
    )
    assert fixed.returncode == 1 and " d " in fixed.stderr and "stale reading" in fixed.stderr, fixed.stderr
    # Nothing reached the guardian: no tracker error, holder control still the polled 70.5.
    gov = await handle.query(GOVERNANCE_QUERY)
    assert gov["holder_control_percentage"] != 48.0
    assert not [e for e in notable_events(url, handle.id) if e[0] == "tracker_error"]


async def test_a_fresh_reading_reaches_the_guardian(dev_env, guardian, tmp_path):
    handle, sim, _ = guardian
    sim.sim.set_reading(65.5)  # the polled value agrees, so the pushed one is not overwritten
    address = dev_env.client.service_client.config.target_host
    result = await push(
        address,
        tmp_path,
        "--guardian",
        handle.id,
        "--holder-control",
        "65.5",
        "--total-votes",
        "1000",
        "--holder-votes",
        "655",
    )
    assert result.returncode == 0, result.stderr
    assert f"pushed to {handle.id} via signal `reading`" in result.stderr
    assert "within the 30 s limit" in result.stderr

    async def seen() -> bool:
        return (await handle.query(GOVERNANCE_QUERY)).get("holder_control_percentage") == 65.5

    await eventually(seen, timeout=30)


async def test_an_invalid_reading_is_one_line(dev_env, guardian, tmp_path):
    handle, _, _ = guardian
    address = dev_env.client.service_client.config.target_host
    result = await push(
        address,
        tmp_path,
        "--guardian",
        handle.id,
        "--holder-control",
        "48",
        "--total-votes",
        "100",
        "--holder-votes",
        "60",
        "--seller-votes",
        "30",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "govfleet guardian push: error: invalid reading (votes_mismatch): holder_votes 60 + seller_votes 30 "
        "!= total_votes 100. Nothing was sent"
    ]
