"""`/health` probes the tracker the running guardian uses (the `tracker_url` its memo carries:
`--tracker-port`, `VOTING_TRACKER_URL` of the worker that started it), not the address in the API
process's own configuration. The guardian here is a stand-in: a workflow with the guardian's id
and memo on a task queue no worker polls (describe needs no worker)."""

from __future__ import annotations

import httpx

from govfleet.domain.declared import memo_for
from govfleet.simulator import start_simulator
from tests.integration.test_status_support import api_stack, unique

DEAD = "http://127.0.0.1:9"  # the discard port: nothing answers there


async def test_health_probes_the_tracker_in_the_guardians_memo(dev_env, make_database, tmp_path):
    sim = await start_simulator()
    try:
        async with (
            api_stack(
                dev_env,
                make_database(),
                tmp_path,
                schedules=[],
                environ={"VOTING_TRACKER_URL": DEAD},  # the API's own configuration points nowhere
            ) as s,
            httpx.AsyncClient(base_url=s.url, timeout=15) as http,
        ):
            guardian = s.config.spec.declared_guardians()[0].workflow_id
            assert s.config.spec.guardian.tracker.url == DEAD
            handle = await s.client.start_workflow(
                "GuardianStandIn",
                id=guardian,
                task_queue=unique("idle"),
                memo=memo_for("hash", tracker_url=sim.url),
            )
            try:
                [item] = [w for w in (await http.get("/health")).json()["workflows"] if w["kind"] == "guardian"]
                assert item["tracker_url"] == sim.url and item["tracker_connected"] is True
            finally:
                await handle.terminate()
            # A guardian whose memo names no tracker: the API's configuration is all there is.
            handle = await s.client.start_workflow(
                "GuardianStandIn", id=guardian, task_queue=unique("idle"), memo=memo_for("hash")
            )
            try:
                body = (await http.get("/health")).json()
                [item] = [w for w in body["workflows"] if w["kind"] == "guardian"]
                assert item["tracker_url"] == DEAD and item["tracker_connected"] is False
                assert f"the tracker of {guardian} at {DEAD} does not answer" in body["problems"]
            finally:
                await handle.terminate()
    finally:
        await sim.stop()
