"""`govfleet guardian push`'s checks, pure: the refusal line of a stale reading says by how much."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from govfleet.commands.guardian import PushRefused, check_reading, duration, reading_from_args

NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def reading(age_seconds: float) -> dict:
    return {
        "holder_control_percentage": 48.0,
        "total_votes": 10000,
        "holder_votes": 4800,
        "seller_votes": 5200,
        "last_updated": (NOW - timedelta(seconds=age_seconds)).isoformat(),
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (119.4, "119 s"),
        (120, "2 min 0 s"),
        (125, "2 min 5 s"),
        (3599, "59 min 59 s"),
        (3 * 3600 + 240, "3 h 4 min"),
    ],
)
def test_duration(seconds, text):
    assert duration(seconds) == text
    assert duration(6 * 86400 + 10 * 3600 + 29) == "6 d 10 h"


def test_a_reading_within_the_limit_passes():
    check_reading(reading(120), now=NOW, staleness_seconds=120)  # at the limit: still valid


def test_a_stale_reading_says_how_old_and_by_how_much():
    with pytest.raises(PushRefused) as info:
        check_reading(reading(245), now=NOW, staleness_seconds=120)
    # 245 s old against 120 s: 125 s too old.
    assert str(info.value).startswith(
        "stale reading: last_updated 2026-11-28T12:55:55Z is 4 min 5 s old, "
        "2 min 5 s past the guardian's limit of 120 s"
    )
    assert str(info.value).endswith("Nothing was sent")


def test_a_reading_from_the_future_is_refused_with_its_code():
    with pytest.raises(PushRefused, match=r"^invalid reading \(future\): last_updated .* is 300 s in the future"):
        check_reading(reading(-300), now=NOW, staleness_seconds=120)


def test_fields_default_to_now_and_the_rest_of_the_votes():
    args = argparse.Namespace(
        input=None, holder_control=48.0, total_votes=10000, holder_votes=4800, seller_votes=None, last_updated=None
    )
    raw = reading_from_args(args, NOW)
    assert raw["seller_votes"] == 5200 and raw["last_updated"] == "2026-11-28T13:00:00Z"
    args.holder_votes = None
    with pytest.raises(PushRefused, match="give --holder-votes"):
        reading_from_args(args, NOW)
