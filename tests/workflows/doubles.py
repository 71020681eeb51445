"""Test doubles for the fleet's activities, for workflow tests without PostgreSQL or HTTP.

Temporal's pattern: a double is an activity registered on the test worker under the real
activity's name (`@activity.defn(name=...)`), so the workflow code under test runs unchanged
and only the outside world is scripted. Names are taken from the real definitions, so a
double always stands in for exactly the activity the workflow calls.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


def name_of(fn: Any) -> str:
    """The name the fleet registers activity `fn` under."""
    definition = getattr(fn, "__temporal_activity_definition", None)
    if definition is None:
        raise TypeError(f"{fn!r} is not an activity")
    return definition.name


@dataclass
class Call:
    name: str
    arg: Any
    attempt: int


@dataclass
class Calls:
    """Every call the doubles received, in order, with its attempt number."""

    log: list[Call] = field(default_factory=list)

    def add(self, name: str, arg: Any = None) -> int:
        attempt = activity.info().attempt
        self.log.append(Call(name, arg, attempt))
        return attempt

    def of(self, name: str) -> list[Any]:
        return [c.arg for c in self.log if c.name == name]

    def attempts(self, name: str) -> list[int]:
        return [c.attempt for c in self.log if c.name == name]

    def names(self) -> list[str]:
        return [c.name for c in self.log]


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def worker(
    env: WorkflowEnvironment, task_queue: str, workflows: Sequence[type], activities: Sequence[Any]
) -> AsyncIterator[Worker]:
    async with Worker(env.client, task_queue=task_queue, workflows=list(workflows), activities=list(activities)) as w:
        yield w
