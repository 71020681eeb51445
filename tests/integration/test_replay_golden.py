"""Golden histories: every saved history in tests/golden/ replays against today's workflow code.

A change to workflow code that would break running workflows (nondeterminism) fails here.
Record a new golden history with `GOVFLEET_RECORD_GOLDEN=1` (see tests/golden/record.py) after
an intentional, patched change, and keep the old file too while old runs may still be open.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.registry import workflows

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
HISTORIES = sorted(GOLDEN.glob("*.json"))


def test_there_is_a_golden_history_for_every_workflow_type():
    recorded = set()
    for path in HISTORIES:
        events = json.loads(path.read_text())["events"]
        recorded.add(events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])
    registered = {getattr(w, "__temporal_workflow_definition").name for w in workflows()}
    assert registered <= recorded, f"no golden history for {sorted(registered - recorded)}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_golden_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=workflows(), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
