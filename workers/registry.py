"""Every workflow type and activity of the fleet. Each area adds its own lines."""

from __future__ import annotations

from typing import Any

from workers.resources import Resources


def workflows() -> list[type]:
    found: list[type] = []
    from workflows.governance_run import GovernanceRun
    from workflows.heartbeat import GovernanceHeartbeat

    found += [GovernanceHeartbeat, GovernanceRun]
    from workflows.payment import PaymentWorkflow

    found += [PaymentWorkflow]
    from workflows.status import GovernanceStatusWorkflow

    found += [GovernanceStatusWorkflow]
    from workflows.guardian import GuardianWorkflow

    found += [GuardianWorkflow]
    from workflows.watchdog import WatchdogWorkflow

    found += [WatchdogWorkflow]
    return found


def activities_for(resources: Resources) -> list[Any]:
    """Activity callables, bound to instances that hold their dependencies."""
    from activities.status import StatusActivities

    found: list[Any] = []
    from activities.governance_run import GovernanceRunActivities
    from activities.heartbeat import HeartbeatActivities

    hb = HeartbeatActivities(resources)
    found += [hb.gather, hb.record, hb.post_sink, hb.renew_grant]
    gr = GovernanceRunActivities(resources)
    found += [gr.begin, gr.charge, gr.finish, gr.entrypoint_heartbeat, gr.entrypoint_brief, gr.entrypoint_http]
    found += [gr.entrypoint_gateway]
    found += [StatusActivities(resources).notify_status]
    from activities.status_reads import StatusReadActivities

    reads = StatusReadActivities(resources)
    found += [reads.read_status_db, reads.read_schedules, reads.status_changed]
    from activities.ledger import LedgerActivities

    found += [LedgerActivities(resources).confirm_payment]
    from activities.notify import NotificationActivities

    notify = NotificationActivities(resources)
    found += [notify.send_notification, notify.resend_pending]
    from activities.guardian import GuardianActivities

    guardian = GuardianActivities(resources)
    found += [guardian.fetch_reading, guardian.record, guardian.call_breaker, guardian.probe_breaker, guardian.restore]
    from activities.watchdog import WatchdogActivities

    watchdog = WatchdogActivities(resources)
    found += [watchdog.inspect, watchdog.record]
    return found
