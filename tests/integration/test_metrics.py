"""Workers serve Prometheus metrics: the SDK's runtime metrics plus the fleet's own
(guardian level, holder control, checks, breaker calls)."""

from __future__ import annotations

import socket

import httpx

from govfleet.simulator import TrackerSimulator, start_simulator
from govfleet.temporal import connect, metrics_runtime
from tests.integration.guardian_support import (
    NotificationRecorder,
    eventually,
    guardian_worker,
    make_config,
    new_guardian_id,
    settle,
    start_guardian,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


async def test_worker_metrics_include_guardian_level_checks_and_breaker_calls(
    dev_env, config, database_url, task_queue
):
    port = free_port()
    client = await connect(dev_env.client.service_client.config.target_host, runtime=metrics_runtime(port, "127.0.0.1"))
    sim = await start_simulator(TrackerSimulator(per_request=True))
    sim.sim.set_values([70.0, 70.0, 48.0], per_request=True)
    gid = new_guardian_id()
    try:
        async with guardian_worker(client, task_queue, config, database_url, NotificationRecorder()):
            cfg = make_config(
                config,
                sim,
                gid,
                upsert_search_attributes=False,
                rules=config.spec.guardian.rules.model_copy(update={"monitoring_interval_normal": 1}),
            )
            handle = await start_guardian(client, task_queue, cfg)
            await eventually(lambda: len(sim.sim.pauses()) == 2, timeout=30)

            async def scraped() -> str | None:
                async with httpx.AsyncClient() as http:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                return text if sample(text, "governance_level", guardian=gid) == 6 else None

            text = await eventually(scraped, timeout=20, interval=0.5)
            assert sample(text, "governance_holder_control", guardian=gid) == 48.0
            assert sample(text, "governance_checks", guardian=gid) >= 3
            assert (
                sample(text, "governance_breaker_calls", guardian=gid, action="pause", target="redemption-algorithm")
                == 1
            )
            assert (
                sample(text, "governance_breaker_calls", guardian=gid, action="pause", target="sol-treasury-core") == 1
            )
            # The SDK's own runtime metrics are served beside ours.
            assert (
                "temporal_workflow_task_execution_latency" in text
                or "temporal_workflow_completed" in text
                or "temporal_activity_execution_latency" in text
            )
            await settle(handle)
            await handle.terminate("test over")
    finally:
        await sim.stop()
