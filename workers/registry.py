"""Every workflow type and activity of the fleet. Each area adds its own lines."""

from __future__ import annotations

from typing import Any

from workers.resources import Resources


def workflows() -> list[type]:
    found: list[type] = []
    return found


def activities_for(resources: Resources) -> list[Any]:
    """Activity callables, bound to instances that hold their dependencies."""
    from activities.status import StatusActivities

    found: list[Any] = []
    found += [StatusActivities(resources).notify_status]
    return found
