"""structlog: JSON off a terminal, and every activity log line names its workflow and activity."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

import structlog
from temporalio import activity, workflow
from temporalio.worker import Worker

from govfleet.logging import configure_logging, get_logger
from workers.factory import LogContextInterceptor


@activity.defn
async def log_something(word: str) -> str:
    get_logger("test").info("activity says", word=word)
    return word


@workflow.defn(sandboxed=False)  # a test-only workflow; the sandbox would re-import this test module
class LogsFromActivity:
    @workflow.run
    async def run(self, word: str) -> str:
        return await workflow.execute_activity(log_something, word, start_to_close_timeout=timedelta(seconds=10))


async def test_activity_log_lines_are_json_with_workflow_and_activity_ids(time_skipping_env, task_queue, monkeypatch):
    out = io.StringIO()
    configure_logging("json", "INFO")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=out))
    try:
        async with Worker(
            time_skipping_env.client,
            task_queue=task_queue,
            workflows=[LogsFromActivity],
            activities=[log_something],
            interceptors=[LogContextInterceptor()],
        ):
            wf_id = f"log-{uuid.uuid4().hex[:8]}"
            assert (
                await time_skipping_env.client.execute_workflow(
                    LogsFromActivity.run, "hello", id=wf_id, task_queue=task_queue
                )
                == "hello"
            )
    finally:
        configure_logging("console", "INFO")
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    (line,) = [entry for entry in lines if entry.get("event") == "activity says"]
    assert line["word"] == "hello"
    assert line["workflow_id"] == wf_id
    assert line["activity_type"] == "log_something"
    assert line["level"] == "info" and "timestamp" in line


def test_console_format_on_a_terminal_is_not_json(capsys):
    configure_logging("console", "INFO")
    get_logger("test").info("hello there", n=1)
    err = capsys.readouterr().err
    assert "hello there" in err
    assert not err.lstrip().startswith("{")


@activity.defn
async def does_nothing() -> None:
    return None


async def test_the_sdk_core_logs_in_the_one_format(time_skipping_env, task_queue, capfd):
    # The time-skipping test server lacks a capability the SDK's core (Rust) warns about when a
    # worker starts. Without forwarding, the core writes that warning to the stderr file
    # descriptor in a format of its own; with it (govfleet.temporal.connect), it is a JSON line.
    import asyncio

    from govfleet.temporal import connect

    configure_logging("json", "INFO")
    try:
        client = await connect(time_skipping_env.client.service_client.config.target_host, plain=True)
        async with Worker(client, task_queue=task_queue, activities=[does_nothing]):
            await asyncio.sleep(1.5)  # forwarded core lines are delivered in the background
    finally:
        configure_logging("console", "INFO")
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    for line in lines:
        assert line.startswith("{"), f"not a JSON log line: {line!r}"
        json.loads(line)
    core = [json.loads(line) for line in lines if "temporalio_sdk_core" in line]
    # Present while the test server lacks that capability (if a newer one stops the warning,
    # find another core warning to provoke): without forwarding it is not in this output at all.
    assert core, f"no forwarded core line in:\n{err}"
    assert all(r["logger"].startswith("temporalio.core") and r["level"] == "warning" for r in core), core
