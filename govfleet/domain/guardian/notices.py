"""The texts of the guardian's notifications: title and body of each kind (docs/guardian.md,
"Notifications"). Pure functions of what the check or action decided; the alert template
itself is `govfleet.domain.alerts_template`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from govfleet.domain.alerts_template import render_alert
from govfleet.domain.guardian.levels import fmt_pct, to_decimal
from govfleet.domain.timestamps import iso_utc


@dataclass(frozen=True)
class Notice:
    title: str
    body: str


def _lines(*lines: str) -> str:
    return "\n".join(lines)


def level_alert(
    guardian_id: str,
    *,
    alert_type: str,
    holder_control: float | None,
    threshold: Decimal,
    action: str,
    now: datetime,
    system_status: str,
    reminder: bool,
) -> Notice:
    prefix = "Reminder: " if reminder else ""
    hc = "unknown" if holder_control is None else fmt_pct(round(to_decimal(holder_control), 2))
    return Notice(
        f"{prefix}Governance {alert_type}: holder control {hc}% ({guardian_id})",
        render_alert(
            alert_type=alert_type,
            holder_control=holder_control,
            threshold=threshold,
            action=action,
            timestamp=now,
            system_status=system_status,
        ),
    )


def tracker_unavailable(
    guardian_id: str, *, holder_control: float | None, action: str, now: datetime, system_status: str
) -> Notice:
    return Notice(
        f"Governance tracker unavailable ({guardian_id})",
        render_alert(
            alert_type="tracker_unavailable",
            holder_control=holder_control,
            threshold=None,
            action=action,
            timestamp=now,
            system_status=system_status,
        ),
    )


def recovery(
    kinds: list[str], *, holder_control: Decimal, level: str | None, now: datetime, system_status: str
) -> Notice:
    return Notice(
        f"Governance recovered: {', '.join(kinds)} alert{'s' if len(kinds) > 1 else ''} resolved",
        _lines(
            "✅ TIE GOVERNANCE RECOVERY",
            "",
            f"Resolved: {', '.join(kinds)}",
            f"Holder Control: {fmt_pct(round(holder_control, 2))}%",
            f"Level: {level}",
            "",
            f"Timestamp: {iso_utc(now)}",
            f"System Status: {system_status}",
        ),
    )


def manual_pause(guardian_id: str, *, holder_control: float | None, now: datetime, system_status: str) -> Notice:
    return Notice(
        f"Governance system paused by an admin ({guardian_id})",
        render_alert(
            alert_type="manual_pause",
            holder_control=holder_control,
            threshold=None,
            action="paused_everything",
            timestamp=now,
            system_status=system_status,
        ),
    )


def resumed(
    guardian_id: str,
    *,
    holder_control: Decimal,
    signers: str,
    reason: str,
    now: datetime,
    system_status: str,
    approval: str | None = None,
) -> Notice:
    return Notice(
        f"Governance system resumed ({guardian_id})",
        _lines(
            "✅ TIE GOVERNANCE RESUMED",
            "",
            f"Holder Control: {fmt_pct(round(holder_control, 2))}%",
            f"Resumed by: {signers}",
            f"Reason: {reason}",
            *([f"Governance approval: {approval}"] if approval else []),
            "",
            f"Timestamp: {iso_utc(now)}",
            f"System Status: {system_status}",
        ),
    )


def forensic_audit_completed(guardian_id: str, *, pause_key: str, signers: str, report: str, now: datetime) -> Notice:
    return Notice(
        f"Forensic audit completed ({guardian_id})",
        _lines(
            "✅ TIE GOVERNANCE FORENSIC AUDIT COMPLETED",
            "",
            f"After: {pause_key}",
            f"Signed by: {signers}",
            f"Report: {report}",
            "",
            f"Timestamp: {iso_utc(now)}",
        ),
    )


def breaker_unreachable(guardian_id: str, *, target: str, why: str, now: datetime, system_status: str) -> Notice:
    return Notice(
        f"Breaker target {target} does not answer ({guardian_id})",
        _lines(
            "🚨 TIE GOVERNANCE BREAKER TARGET NOT ANSWERING",
            "",
            f"Target: {target}",
            f"Problem: {why}",
            "A pause may not reach it when it is needed; calls to it are retried.",
            "",
            f"Timestamp: {iso_utc(now)}",
            f"System Status: {system_status}",
        ),
    )


def breakers_answer(guardian_id: str, *, targets: list[str], now: datetime, system_status: str) -> Notice:
    return Notice(
        f"Breaker targets answer again ({guardian_id})",
        _lines(
            "✅ TIE GOVERNANCE BREAKER TARGETS ANSWER",
            "",
            f"Answering again: {', '.join(targets)}",
            "",
            f"Timestamp: {iso_utc(now)}",
            f"System Status: {system_status}",
        ),
    )


def configuration_changed(guardian_id: str, *, changes: list[str], now: datetime) -> Notice:
    return Notice(
        f"Guardian configuration changed: admins, quorum or breakers ({guardian_id})",
        _lines(
            "🚨 TIE GOVERNANCE GUARDIAN CONFIGURATION CHANGED",
            "",
            *changes,
            "",
            "If you did not commit this change to repo-spec, someone with access to the Temporal",
            "namespace sent it: check the guardian's history (signal `configure`).",
            "",
            f"Timestamp: {iso_utc(now)}",
        ),
    )


def restore_failed(guardian_id: str, *, details: str, now: datetime) -> Notice:
    return Notice(
        f"Guardian started without its recorded state ({guardian_id})",
        _lines(
            "⚠️ TIE GOVERNANCE GUARDIAN STARTED WITHOUT ITS RECORDED STATE",
            "",
            details,
            "Open alerts, active pauses and used admin nonces recorded before were not taken back;",
            "monitoring continues. Check system_pauses before resuming anything.",
            "",
            f"Timestamp: {iso_utc(now)}",
        ),
    )


def audit_unavailable(
    guardian_id: str, *, failures: int, since: str | None, error: str, now: datetime, system_status: str
) -> Notice:
    return Notice(
        f"Governance audit log unavailable ({guardian_id})",
        _lines(
            "🚨 TIE GOVERNANCE AUDIT LOG UNAVAILABLE",
            "",
            f"{failures} consecutive audit writes failed since {since}.",
            f"Last error: {error}",
            "Monitoring and circuit breakers continue; the audit rows are kept and written once "
            "the database answers again.",
            "",
            f"Timestamp: {iso_utc(now)}",
            f"System Status: {system_status}",
        ),
    )


def audit_recovered(guardian_id: str, *, details: str, now: datetime, system_status: str) -> Notice:
    return Notice(
        f"Governance audit log recovered ({guardian_id})",
        _lines(
            "✅ TIE GOVERNANCE AUDIT LOG RECOVERED",
            "",
            details,
            "",
            f"Timestamp: {iso_utc(now)}",
            f"System Status: {system_status}",
        ),
    )
