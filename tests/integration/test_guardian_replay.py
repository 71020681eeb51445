"""Replay of a saved guardian history (tests/golden/guardian_pause.json) that includes an
automatic pause, a forged and a valid signed resume, a pushed reading and the breaker
calls: today's workflow code must make exactly the same decisions.

Re-record after an intentional, patched change with
`GOVFLEET_RECORD_GOLDEN=1 pytest tests/integration/test_guardian_replay.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from govfleet.contracts.guardian import READING_SIGNAL, RESUME_SIGNAL
from govfleet.simulator import TrackerSimulator, reading_body, start_simulator
from tests.golden.record import GOLDEN_DIR, recording, save_golden
from tests.integration.guardian_support import (
    ADMIN_0,
    OUTSIDER,
    NotificationRecorder,
    eventually,
    guardian_worker,
    make_config,
    settle,
    sign,
    start_guardian,
)
from workflows.guardian import GuardianWorkflow

# Every saved guardian history must keep replaying while runs of its code version may be open.
GOLDENS = [
    GOLDEN_DIR / "guardian_pause.json",  # before the guardian-audit-batches patch
    GOLDEN_DIR / "guardian_pause_v2.json",  # current code (recorded by the test below)
]
GOLDEN = GOLDENS[-1]


def _activity_types(history_json: str) -> list[str]:
    events = json.loads(history_json)["events"]
    return [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if "activityTaskScheduledEventAttributes" in e
    ]


def _signals(history_json: str) -> list[str]:
    events = json.loads(history_json)["events"]
    return [
        e["workflowExecutionSignaledEventAttributes"]["signalName"]
        for e in events
        if "workflowExecutionSignaledEventAttributes" in e
    ]


async def test_golden_scenario_records_the_shape_the_golden_has(time_skipping_env, task_queue, config, database_url):
    env = time_skipping_env
    running = await start_simulator(TrackerSimulator(per_request=True))
    try:
        running.sim.set_values([70.0, 50.5, 52.0, 52.0, 52.0, 53.0], per_request=True)
        async with guardian_worker(env.client, task_queue, config, database_url, NotificationRecorder()):
            cfg = make_config(config, running, "governance-guardian-golden", upsert_search_attributes=False)
            handle = await start_guardian(env.client, task_queue, cfg)
            await env.sleep(35)
            await eventually(lambda: len(running.sim.pauses()) == 1)
            now = await env.get_current_time()
            await handle.signal(
                RESUME_SIGNAL,
                {"authorization": sign(OUTSIDER, "resume", now, guardian_id=handle.id, nonce="goldenforged01")},
            )
            await handle.signal(
                RESUME_SIGNAL,
                {"authorization": sign(ADMIN_0, "resume", now, guardian_id=handle.id, nonce="goldenvalid001")},
            )
            await eventually(lambda: len(running.sim.resumes()) == 1)
            await handle.signal(READING_SIGNAL, reading_body(54.0, now=await env.get_current_time()))
            await env.sleep(3)
            await settle(handle)
            # The scenario runs in every test run, so the recorder cannot rot; GOVFLEET_RECORD_GOLDEN=1
            # also writes it as the newest golden (docs/patches.md).
            history = (await handle.fetch_history()).to_json()
            assert_pause_and_resume(history)
            if recording():
                await save_golden(handle, GOLDEN.stem)
            await handle.terminate("recorded")
    finally:
        await running.stop()


def assert_pause_and_resume(text: str) -> None:
    acts = _activity_types(text)
    assert acts.count("guardian_call_breaker") == 2  # pause, then resume, of the redemption target
    assert "send_notification" in acts
    assert _signals(text) == ["resume", "resume", "reading"]
    markers = [e for e in json.loads(text)["events"] if "markerRecordedEventAttributes" in e]
    assert len(markers) >= 8  # local activities: fetch + record per check


@pytest.mark.parametrize("path", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_golden_history_has_a_pause_and_a_resume(path):
    assert_pause_and_resume(path.read_text())


@pytest.mark.parametrize("path", GOLDENS, ids=[p.stem for p in GOLDENS])
async def test_saved_guardian_history_replays(path):
    history = WorkflowHistory.from_json("governance-guardian-golden", path.read_text())
    replayer = Replayer(workflows=[GuardianWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_a_changed_decision_is_detected_on_replay():
    """Guard against a vacuous replay: a history whose breaker call was removed must fail."""
    data = json.loads(GOLDEN.read_text())
    events = data["events"]
    first = next(
        i
        for i, e in enumerate(events)
        if "activityTaskScheduledEventAttributes" in e
        and e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "guardian_call_breaker"
    )
    events[first]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "something_else"
    history = WorkflowHistory.from_json("governance-guardian-golden", json.dumps(data))
    replayer = Replayer(workflows=[GuardianWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None


def test_golden_files_are_in_place():
    for path in GOLDENS:
        assert Path(path).exists(), f"{path.name}: record it with GOVFLEET_RECORD_GOLDEN=1"
