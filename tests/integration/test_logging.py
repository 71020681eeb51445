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
