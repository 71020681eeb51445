"""The alert message template, and which alerts are urgent (docs/guardian.md). Pure: no I/O, no clock.

    🚨 TIE GOVERNANCE ALERT

    Level: {alert_type}
    Holder Control: {holder_control}%
    Threshold: {threshold}%
    Action Taken: {action}

    Timestamp: {timestamp}
    System Status: {system_status}

Percentages are written as a person reads them (55.0 -> ``55``, 54.2 -> ``54.2``,
50.855 -> ``50.86``: at most two decimals), an unknown holder control as ``unknown`` and
an alert without a threshold (e.g. ``tracker_unavailable``) as ``n/a``; the timestamp is
ISO 8601 UTC with a ``Z``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from govfleet.domain.timestamps import iso_utc

HEADER = "🚨 TIE GOVERNANCE ALERT"

# Caution notifies admins; warning and above are urgent (admins and urgent channels).
URGENT_ALERT_TYPES = frozenset({"warning", "critical", "emergency"})


def is_urgent(alert_type: str) -> bool:
    return alert_type in URGENT_ALERT_TYPES


def format_percent(value: float | int | Decimal | str | None, *, missing: str = "unknown") -> str:
    """A percentage for a message: at most two decimals, no trailing zeros."""
    if value is None:
        return missing
    if isinstance(value, bool):
        raise ValueError(f"percentage must be a number, got {value!r}")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"percentage must be a number, got {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"percentage must be finite, got {value!r}")
    d = d.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def format_timestamp(ts: datetime) -> str:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {ts.isoformat()}")
    return iso_utc(ts)


def render_alert(
    *,
    alert_type: str,
    holder_control: float | Decimal | None,
    threshold: float | Decimal | None,
    action: str,
    timestamp: datetime,
    system_status: str,
) -> str:
    """The alert message, filled in."""
    for name, value in (("alert_type", alert_type), ("action", action), ("system_status", system_status)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return "\n".join(
        [
            HEADER,
            "",
            f"Level: {alert_type}",
            f"Holder Control: {format_percent(holder_control)}%",
            f"Threshold: {format_percent(threshold, missing='n/a')}%",
            f"Action Taken: {action}",
            "",
            f"Timestamp: {format_timestamp(timestamp)}",
            f"System Status: {system_status}",
        ]
    )


def alert_title(alert_type: str, holder_control: float | Decimal | None) -> str:
    """A one-line title for channels that have one (Slack, e-mail subject)."""
    return f"TIE governance alert: {alert_type} (holder control {format_percent(holder_control)}%)"
