"""Tracker readings: what counts as a usable one.

A reading whose holder control is not a finite number in [0, 100], whose vote counts are not
whole numbers (``1200`` or ``1200.0``, never ``1200.5``), whose votes do not add
up (or do not give the reported percentage within `VOTE_TOLERANCE_POINTS`), that is older
than the staleness limit or from the future is *invalid* (`InvalidReading` with a code):
it is audited as a `tracker_error` event, never moves the level and never trips a breaker.
See docs/guardian.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict

from govfleet.domain.guardian.levels import fmt_pct, to_decimal
from govfleet.domain.text import quote
from govfleet.domain.timestamps import iso_utc

VOTE_TOLERANCE_POINTS = Decimal("0.05")
MAX_NUMBER = 10**15  # no vote count (and no percentage) is larger; past 2^53 a float is not exact
FUTURE_TOLERANCE_SECONDS = 60


class InvalidReading(ValueError):
    """A tracker reading that must not be used. `code` is one of: unreachable,
    http_error, not_json, missing_field, not_a_number, out_of_range, votes_mismatch,
    stale, future."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class Reading(BaseModel):
    """A validated tracker reading (`GET {tracker}/voting/governance`)."""

    model_config = ConfigDict(frozen=True)

    holder_control_percentage: float
    total_votes: int | float
    holder_votes: int | float
    seller_votes: int | float
    last_updated: datetime


class ReadingPayload(BaseModel):
    """What signal `reading` (and `POST /guardian/readings`) carries: the tracker's
    fields, unvalidated, so that a bad push is audited as an invalid reading instead
    of being dropped by the data converter."""

    model_config = ConfigDict(extra="allow")

    holder_control_percentage: Any = None
    total_votes: Any = None
    holder_votes: Any = None
    seller_votes: Any = None
    last_updated: Any = None


class TrackerFailure(BaseModel):
    """A typed, non-exceptional failure of one reading (returned by the fetch activity)."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class FetchReadingInput(BaseModel):
    url: str  # the tracker's base URL; the activity GETs {url}/voting/governance
    timeout_seconds: float = 2.0
    staleness_seconds: int = 120


class FetchReadingResult(BaseModel):
    """Exactly one of `reading` (valid) and `failure` (typed: InvalidReading's codes)."""

    reading: Reading | None = None
    failure: TrackerFailure | None = None


def _number(raw: Mapping[str, Any], name: str) -> int | float:
    if name not in raw or raw[name] is None:
        raise InvalidReading("missing_field", f"{name} is missing")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidReading("not_a_number", f"{name} must be a number, got {type(value).__name__} {quote(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidReading("not_a_number", f"{name} must be a finite number, got {quote(value)}")
    if abs(value) > MAX_NUMBER:  # before any arithmetic: a 10,000-digit integer costs nothing here
        raise InvalidReading("out_of_range", f"{name} {quote(value)} is larger than 10^15")
    return value


VOTE_FIELDS = ("total_votes", "holder_votes", "seller_votes")


def _count(raw: Mapping[str, Any], name: str) -> int | float:
    """A vote count: a whole number. A whole float (``1200.0``) is taken as the int it is."""
    value = _number(raw, name)
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidReading("not_a_number", f"{name} must be a whole number of votes, got {quote(value)}")
        return int(value)
    return value


def fractional_votes(raw: Any) -> bool:
    """Whether a raw reading carries a vote count with a fractional part (see `validate_reading`)."""
    return isinstance(raw, Mapping) and any(
        isinstance(raw.get(n), float) and math.isfinite(raw[n]) and not raw[n].is_integer() for n in VOTE_FIELDS
    )


def _timestamp(value: Any) -> datetime:
    if value is None:
        raise InvalidReading("missing_field", "last_updated is missing")
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidReading("not_a_number", f"last_updated {quote(value)} is not an ISO 8601 timestamp") from None
    else:
        raise InvalidReading("not_a_number", f"last_updated must be an ISO 8601 string, got {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=UTC)  # trackers write UTC
    return dt.astimezone(UTC)


def validate_reading(raw: Any, *, now: datetime, staleness_seconds: int, whole_votes: bool = True) -> Reading:
    """The reading if it is usable, else `InvalidReading` naming what is wrong. `whole_votes=False`
    accepts fractional vote counts, as guardians did before (only for replaying those runs)."""
    if not isinstance(raw, Mapping):
        raise InvalidReading("not_json", f"the reading must be a JSON object, got {type(raw).__name__}")
    h = _number(raw, "holder_control_percentage")
    if not (0 <= h <= 100):
        raise InvalidReading("out_of_range", f"holder_control_percentage {quote(h)} is outside [0, 100]")
    count = _count if whole_votes else _number
    total = count(raw, "total_votes")
    holder = count(raw, "holder_votes")
    seller = count(raw, "seller_votes")
    for name, v in (("total_votes", total), ("holder_votes", holder), ("seller_votes", seller)):
        if v < 0:
            raise InvalidReading("out_of_range", f"{name} {quote(v)} is negative")
    if total <= 0:
        raise InvalidReading(
            "votes_mismatch", f"total_votes is {quote(total)}: holder control is undefined without votes"
        )
    try:
        d_total, d_holder, d_seller = (to_decimal(v) for v in (total, holder, seller))
    except InvalidOperation:  # pragma: no cover - finite numbers always convert
        raise InvalidReading("not_a_number", "votes are not numbers") from None
    if abs(d_holder + d_seller - d_total) > d_total * Decimal("1e-9"):
        raise InvalidReading(
            "votes_mismatch",
            f"holder_votes {quote(holder)} + seller_votes {quote(seller)} != total_votes {quote(total)}",
        )
    implied = d_holder * 100 / d_total
    if abs(implied - to_decimal(h)) > VOTE_TOLERANCE_POINTS:
        raise InvalidReading(
            "votes_mismatch",
            f"holder_control_percentage {quote(h)} does not match holder_votes/total_votes = "
            f"{fmt_pct(round(implied, 4))}% (tolerance {VOTE_TOLERANCE_POINTS} points)",
        )
    updated = _timestamp(raw.get("last_updated"))
    age = (now - updated).total_seconds()
    if age > staleness_seconds:
        raise InvalidReading(
            "stale", f"last_updated {iso_utc(updated)} is {age:.0f} s old, more than the {staleness_seconds} s allowed"
        )
    if -age > FUTURE_TOLERANCE_SECONDS:
        raise InvalidReading("future", f"last_updated {iso_utc(updated)} is {-age:.0f} s in the future")
    return Reading(
        holder_control_percentage=float(h),
        total_votes=total,
        holder_votes=holder,
        seller_votes=seller,
        last_updated=updated,
    )
