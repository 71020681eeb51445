"""The guardian's rules for failed audit writes (PostgreSQL unreachable): back off between
attempts, alert once after `audit_failures_before_alert` consecutive failures, send a recovery
notice and leave an `audit_unavailable` event when a write succeeds again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from govfleet.domain.guardian.core import AUDIT_RETRY_SECONDS, GuardianCore
from govfleet.domain.guardian.levels import DATABASE_ALERT, DATABASE_RECOVERED
from govfleet.domain.guardian.models import GuardianConfig, GuardianState

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def core(before_alert: int = 2) -> GuardianCore:
    return GuardianCore(
        GuardianConfig(guardian_id="governance-guardian-t", audit_failures_before_alert=before_alert),
        GuardianState(chain="c0"),
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_writes_wait_between_attempts_only_while_failing():
    c = core()
    assert c.audit_write_due(T0)
    c.on_audit_failed(T0, "PoolTimeout: couldn't get a connection after 5.00 sec")
    assert not c.audit_write_due(at(AUDIT_RETRY_SECONDS - 0.5))
    assert c.audit_write_due(at(AUDIT_RETRY_SECONDS))
    c.on_audit_written(at(AUDIT_RETRY_SECONDS))
    assert c.audit_write_due(at(AUDIT_RETRY_SECONDS + 0.1))


def test_alert_once_after_consecutive_failures_then_recovery_notice_and_event():
    c = core(before_alert=2)
    c.on_audit_failed(T0, "first")
    assert c.take_notifications() == []
    c.on_audit_failed(at(5), "OperationalError: connection refused")
    [alert] = c.take_notifications()
    assert (alert.kind, alert.urgent) == (DATABASE_ALERT, True)
    assert "2 consecutive audit writes failed since 2026-01-05T12:00:00Z" in alert.body
    assert alert.data["error"] == "OperationalError: connection refused"
    c.on_audit_failed(at(10), "again")
    assert c.take_notifications() == []  # one alert per outage
    assert c.state.audit_failures == 3

    c.on_audit_written(at(31))
    [notice] = c.take_notifications()
    assert (notice.kind, notice.urgent) == (DATABASE_RECOVERED, False)
    assert notice.data["outage_seconds"] == 31.0 and notice.data["failures"] == 3
    assert notice.idempotency_key != alert.idempotency_key
    [event] = c.drain().record.events
    assert (event.event_type, event.action) == ("audit_unavailable", "recovered")
    assert event.details.startswith("3 audit writes failed from 2026-01-05T12:00:00Z to 2026-01-05T12:00:31Z")
    st = c.state
    assert (st.audit_failures, st.audit_failing_since, st.audit_last_failure, st.audit_alerted) == (
        0,
        None,
        None,
        False,
    )

    # A later outage alerts again.
    c.on_audit_failed(at(100), "x")
    c.on_audit_failed(at(105), "y")
    assert [n.kind for n in c.take_notifications()] == [DATABASE_ALERT]


def test_a_single_failed_write_is_not_an_outage():
    c = core(before_alert=2)
    c.on_audit_failed(T0, "blip")
    c.on_audit_written(at(5))
    assert c.take_notifications() == [] and c.drain().record.events == []
    c.on_audit_written(at(6))  # nothing to recover from
    assert c.take_notifications() == []


def test_alert_threshold_must_be_positive():
    with pytest.raises(ValidationError, match="audit_failures_before_alert"):
        GuardianConfig(audit_failures_before_alert=0)
