"""Saving golden histories.

A test that drives a workflow through a representative path calls `save_golden(handle, name)`
when `GOVFLEET_RECORD_GOLDEN=1` is set; the file lands in tests/golden/<name>.json and
tests/integration/test_replay_golden.py replays every such file against today's code.
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHandle

GOLDEN_DIR = Path(__file__).resolve().parent


def recording() -> bool:
    return os.environ.get("GOVFLEET_RECORD_GOLDEN") == "1"


async def save_golden(handle: WorkflowHandle, name: str) -> Path:
    history = await handle.fetch_history()
    path = GOLDEN_DIR / f"{name}.json"
    path.write_text(history.to_json())
    return path
