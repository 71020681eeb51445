"""The guardian's alert template (docs/guardian.md), urgency, and the webhook HMAC helpers."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from govfleet.domain.alerts_template import alert_title, format_percent, is_urgent, render_alert
from govfleet.domain.webhook_signature import canonical_body, sign_body, verify_signature

NOW = datetime(2025, 11, 16, 9, 30, tzinfo=UTC)


def test_renders_the_seeds_template():
    text = render_alert(
        alert_type="caution",
        holder_control=54.2,
        threshold=Decimal("55.0"),
        action="increased_monitoring",
        timestamp=NOW,
        system_status="operational",
    )
    assert text == (
        "🚨 TIE GOVERNANCE ALERT\n"
        "\n"
        "Level: caution\n"
        "Holder Control: 54.2%\n"
        "Threshold: 55%\n"
        "Action Taken: increased_monitoring\n"
        "\n"
        "Timestamp: 2025-11-16T09:30:00Z\n"
        "System Status: operational"
    )


def test_critical_alert_with_other_zone_timestamp():
    text = render_alert(
        alert_type="critical",
        holder_control=Decimal("50.80"),
        threshold=51.0,
        action="paused_redemptions",
        timestamp=NOW.astimezone(timezone(timedelta(hours=2))),
        system_status="redemptions_paused",
    )
    assert "Level: critical\nHolder Control: 50.8%\nThreshold: 51%\nAction Taken: paused_redemptions\n" in text
    assert text.endswith("Timestamp: 2025-11-16T09:30:00Z\nSystem Status: redemptions_paused")


def test_tracker_unavailable_has_no_numbers():
    text = render_alert(
        alert_type="tracker_unavailable",
        holder_control=None,
        threshold=None,
        action="notified_admins",
        timestamp=NOW,
        system_status="operational",
    )
    assert "Holder Control: unknown%" in text and "Threshold: n/a%" in text


@pytest.mark.parametrize(
    "value, text",
    [
        (55.0, "55"),
        (54.99, "54.99"),
        (51, "51"),
        (50.855, "50.86"),
        (48.999, "49"),
        (Decimal("0.00"), "0"),
        (100, "100"),
        ("52.10", "52.1"),
        (0.1 + 0.2, "0.3"),
    ],
)
def test_format_percent(value, text):
    assert format_percent(value) == text


@pytest.mark.parametrize("bad", ["abc", float("nan"), float("inf"), True])
def test_format_percent_refuses_non_numbers(bad):
    with pytest.raises(ValueError, match="percentage must be"):
        format_percent(bad)


def test_bad_fields_are_named():
    with pytest.raises(ValueError, match="alert_type must be a non-empty string"):
        render_alert(alert_type="", holder_control=1, threshold=1, action="x", timestamp=NOW, system_status="x")
    with pytest.raises(ValueError, match="timezone-aware"):
        render_alert(
            alert_type="caution",
            holder_control=1,
            threshold=1,
            action="x",
            timestamp=datetime(2025, 1, 1),
            system_status="operational",
        )


def test_urgency_and_title():
    assert not is_urgent("caution") and not is_urgent("tracker_unavailable")
    assert is_urgent("warning") and is_urgent("critical") and is_urgent("emergency")
    assert alert_title("warning", 51.5) == "TIE governance alert: warning (holder control 51.5%)"


def test_webhook_signature_roundtrip():
    body = canonical_body({"b": 1, "a": "ü"})
    assert body == '{"a":"ü","b":1}'.encode()
    sig = sign_body("s3cret", body)
    assert sig == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", body, sig)
    assert not verify_signature("other", body, sig)
    assert not verify_signature("s3cret", body + b" ", sig)
    assert not verify_signature("s3cret", body, None)
    assert not verify_signature("s3cret", body, sig.removeprefix("sha256="))
    with pytest.raises(ValueError, match="must not be empty"):
        sign_body("", body)
