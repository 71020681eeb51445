"""Datetimes as the fleet writes them: aware, UTC, ISO 8601 with a `Z` suffix.

`iso_utc` is `datetime.isoformat()` in UTC (seconds, microseconds only when non-zero): the
format of idempotency keys, CloudEvent times and messages, so it must not change. (The status
contract's millisecond format is `govfleet.domain.status.iso_z`.)
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(t: datetime) -> datetime:
    """`t` with a timezone: a naive datetime is taken to be UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def iso_utc(t: datetime) -> str:
    """`2026-01-05T12:00:00Z` (a naive `t` is taken to be UTC)."""
    return as_utc(t).astimezone(UTC).isoformat().replace("+00:00", "Z")
