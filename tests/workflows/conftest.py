import contextlib

import pytest
from temporalio.service import RPCError

from tests.workflows.doubles import new_id, worker
from tests.workflows.guardian_outside import Outside, config
from workflows.guardian import GuardianInput, GuardianWorkflow


def pytest_collection_modifyitems(items):
    for item in items:
        if "/workflows/" in str(item.fspath):
            item.add_marker(pytest.mark.workflows)


@pytest.fixture
async def guardian(time_skipping_env, task_queue):
    """`handle, outside = await guardian(value, **config)`: a guardian with scripted surroundings.
    `recorded=lambda guardian_id: RestoreResult(...)` is what the database holds for its id at
    start; `database_down_at_start=True` starts it with the database unreadable."""
    env = time_skipping_env
    started = []
    outside = Outside()
    async with worker(env, task_queue, [GuardianWorkflow], outside.activities()):

        async def start(value: float, *, recorded=None, database_down_at_start: bool = False, **overrides):
            outside.value = value
            cfg = config(new_id("governance-guardian-t"), **overrides)
            if recorded is not None:
                outside.recorded = recorded(cfg.guardian_id)
            outside.database_down = database_down_at_start
            handle = await env.client.start_workflow(
                GuardianWorkflow.run, GuardianInput(config=cfg), id=cfg.guardian_id, task_queue=task_queue
            )
            started.append(handle)
            return handle, outside

        yield start
        for handle in started:
            with contextlib.suppress(RPCError):  # it already ended (the test says how)
                await handle.terminate("test over")
