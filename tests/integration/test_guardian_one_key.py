"""One pause per decision, whatever instant the guardian is interrupted (docs/guardian.md,
"Restart after terminate"): the guardian is terminated — and, separately, its worker killed with
SIGKILL — 0, 10, 50, 200, 500 and 1,000 ms after a breaker received the pause call; the guardian
started again (by reconcile, or by another worker) must not pause that breaker under a second
idempotency key. Counted per breaker target, from what the loopback target received."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from govfleet.simulator import TrackerSimulator, start_simulator
from tests import processes
from tests.integration.fleet_support import ensure_guardian
from tests.integration.guardian_support import (
    NotificationRecorder,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    rows,
    start_guardian,
    worker_process,
)
from workflows.guardian import GuardianWorkflow

DELAYS_MS = [0, 10, 50, 200, 500, 1000]


@pytest.fixture
async def sim():
    running = await start_simulator(TrackerSimulator())
    running.sim.set_reading(50.0)  # critical: the redemption target is paused at the first check
    try:
        yield running
    finally:
        await running.stop()


def pause_keys(sim, gid: str) -> dict[str, set[str]]:
    """Distinct idempotency keys of the pause calls each target received from this guardian."""
    keys: dict[str, set[str]] = {}
    for c in sim.sim.calls:
        if c.action == "pause" and (c.idempotency_key or "").startswith(f"{gid}:"):
            keys.setdefault(c.service or "", set()).add(c.idempotency_key or "")
    return keys


async def first_pause_call(sim, gid: str) -> None:
    assert await sim.sim.wait_for(lambda s: bool(pause_keys(sim, gid)), timeout=60), "no pause call arrived"


async def checks_after_restart(handle, count: int) -> None:
    """Let the guardian running again make `count` checks: a guardian that had forgotten its
    pause would have paused again by then."""
    first = (await handle.query(GuardianWorkflow.stats)).checks
    await eventually(
        lambda: _checks_at_least(handle, first + count),
        timeout=60,
    )


async def _checks_at_least(handle, n: int) -> bool:
    return (await handle.query(GuardianWorkflow.stats)).checks >= n


async def acknowledged(database_url: str, gid: str) -> None:
    await eventually(
        lambda: rows(
            database_url,
            "SELECT 1 FROM breaker_acks WHERE idempotency_key LIKE %s AND action = 'pause'",
            f"{gid}:%",
        ),
        timeout=60,
    )


@pytest.mark.slow
async def test_terminated_at_any_instant_after_the_call_one_key_per_breaker(
    dev_env, task_queue, config, database_url, sim
):
    client = dev_env.client
    table: dict[int, int] = {}
    async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
        for delay in DELAYS_MS:
            cfg = make_config(config, sim, new_guardian_id())
            gid = cfg.guardian_id
            first = await ensure_guardian(client, task_queue, cfg, expect="started")
            await first_pause_call(sim, gid)
            await asyncio.sleep(delay / 1000)
            await first.terminate("terminated at an unlucky instant")
            again = await ensure_guardian(client, task_queue, cfg, expect="started")  # as `govfleet reconcile`
            await checks_after_restart(again, 2)
            await acknowledged(database_url, gid)
            status = await again.query(GuardianWorkflow.status)
            assert status.system_status == "redemptions_paused", (delay, status)
            keys = pause_keys(sim, gid)
            table[delay] = max(len(k) for k in keys.values())
            assert list(keys) == ["redemption-algorithm"], (delay, keys)
            assert len(keys["redemption-algorithm"]) == 1, (delay, keys)
            await again.terminate("test over")
    print("terminated N ms after the call -> distinct keys per breaker:", table)


@pytest.mark.slow
async def test_worker_killed_at_any_instant_after_the_call_one_key_per_breaker(
    dev_env, task_queue, config, database_url, sim
):
    client = dev_env.client
    address = client.service_client.config.target_host
    table: dict[int, int] = {}
    for delay in DELAYS_MS:
        cfg = make_config(config, sim, new_guardian_id())
        gid = cfg.guardian_id
        proc = worker_process(address, task_queue, database_url)
        try:
            handle = await start_guardian(client, task_queue, cfg)
            await first_pause_call(sim, gid)
            await asyncio.sleep(delay / 1000)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            processes.stop(proc, sig=signal.SIGKILL)
        async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
            await checks_after_restart(handle, 2)
            await acknowledged(database_url, gid)
            keys = pause_keys(sim, gid)
            table[delay] = max(len(k) for k in keys.values())
            assert list(keys) == ["redemption-algorithm"], (delay, keys)
            assert len(keys["redemption-algorithm"]) == 1, (delay, keys)
            await handle.terminate("test over")
    print("worker killed N ms after the call -> distinct keys per breaker:", table)
