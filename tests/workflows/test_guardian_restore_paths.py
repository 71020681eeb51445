"""A guardian started afresh over a database that already recorded its id (a start after
terminate), in the time-skipping server with the database and targets scripted: the recorded
pause and alert come back, holder control still below critical calls no breaker, a target that
never acknowledged the pause is called again with the pause's own key, and the database being
unreadable at start is said loudly instead of silently forgetting. Plus `configure`: an equal
configuration changes nothing, a new one is applied and its hash lands in the memo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

from govfleet.contracts.guardian import CONFIGURE_SIGNAL, GuardianConfigureInput
from govfleet.domain.declared import MEMO_KEY, config_hash
from govfleet.domain.guardian.models import GuardianConfig, RestoredAlert, RestoredPause, RestoreResult
from tests.integration.fleet_support import wait_for
from tests.workflows.guardian_outside import running, stats
from workflows.guardian import GuardianWorkflow


def recorded_for(guardian_id_prefix: str, *, acknowledged: list[str]) -> RestoreResult:
    """A redemption pause and the alerts open below 51 %, as the previous run wrote them."""
    now = datetime.now(UTC)
    return RestoreResult(
        alerts=[
            RestoredAlert(
                key=f"old:a{n}",
                id=n,
                alert_type=kind,
                timestamp=now - timedelta(minutes=3),
                holder_control=50.5,
                message=f"Holder control dropped below {threshold}%",
                action_taken=action,
            )
            for n, (kind, threshold, action) in enumerate(
                [
                    ("caution", 55, "increased_monitoring"),
                    ("warning", 52, "urgent_notification_prepare_pause"),
                    ("critical", 51, "paused_redemptions"),
                ],
                start=1,
            )
        ],
        pauses=[
            RestoredPause(
                key=f"{guardian_id_prefix}:pause-oldchain-1",
                pause_type="automatic",
                scope="redemptions",
                emergency=False,
                paused_at=now - timedelta(minutes=3),
                reason="Holder control 50.5% below 51%",
                holder_control_at_pause=50.5,
                targets=["redemption-algorithm"],
                acknowledged=acknowledged,
            )
        ],
        nonces={"0xabc": now + timedelta(minutes=10)},
    )


async def test_a_restored_pause_is_not_paused_again(guardian):
    acknowledged = ["redemption-algorithm"]
    handle, outside = await guardian(50.5, recorded=lambda gid: recorded_for(gid, acknowledged=acknowledged))
    await wait_for(lambda: outside.events("guardian_restored"), 20, "the restore event")
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check")
    status = await handle.query(GuardianWorkflow.status)
    assert status.paused and status.system_status == "redemptions_paused"
    assert status.governance_level == "critical" and status.alerts_active == 3  # none opened twice
    assert outside.breaker_calls == []  # below critical, already paused: no call at all
    [restored] = outside.events("guardian_restored")
    assert "3 open alert(s) [caution, warning, critical]" in restored.details
    assert "1 active pause(s)" in restored.details
    assert "1 admin nonce(s)" in restored.details
    assert (await stats(handle)).used_nonces == 1
    first_check = outside.events("governance_check")[0]
    assert first_check.action == "none"  # no new pause, no new alert


async def test_an_unacknowledged_restored_pause_is_called_again_with_its_own_key(guardian):
    handle, outside = await guardian(50.5, recorded=lambda gid: recorded_for(gid, acknowledged=[]))
    await wait_for(lambda: outside.breaker_calls, 20, "the repeated pause call")
    [(call, _)] = outside.breaker_calls
    assert call.action == "pause" and call.target == "redemption-algorithm"
    assert call.idempotency_key == f"{handle.id}:pause-oldchain-1"  # the target dedupes it
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check")
    assert len(outside.breaker_calls) == 1


async def test_an_unreadable_database_at_start_is_reported_and_monitoring_goes_on(time_skipping_env, guardian):
    handle, outside = await guardian(70.0, database_down_at_start=True, restore_timeout_seconds=2)
    await wait_for(lambda: "restore_failed" in outside.kinds(), 20, "the restore_failed notification")
    [note] = [n for n in outside.notifications.values() if n.kind == "restore_failed"]
    assert note.urgent
    outside.database_down = False
    await time_skipping_env.sleep(31)
    await wait_for(lambda: outside.events("restore_failed"), 20, "the restore_failed event, written later")
    assert (await stats(handle)).checks >= 1 and await running(handle)


async def test_configure_applies_a_new_configuration_once_and_records_its_hash(time_skipping_env, guardian):
    handle, outside = await guardian(70.0)
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check")
    current = await handle.query(GuardianWorkflow.config_query)
    await handle.signal(CONFIGURE_SIGNAL, configure(current))  # equal: nothing happens
    faster = current.model_copy(update={"rules": current.rules.model_copy(update={"monitoring_interval_normal": 7})})
    await handle.signal(CONFIGURE_SIGNAL, configure(faster))
    await handle.signal(CONFIGURE_SIGNAL, configure(faster))  # a second reconciler: ignored
    await time_skipping_env.sleep(31)
    await wait_for(lambda: outside.events("config_changed"), 20, "the config_changed event")

    async def memo_hash():
        memo = await (await handle.describe()).memo()
        return memo.get(MEMO_KEY, {}).get("config_hash")

    assert await wait_for(memo_hash, 20, "the memo") == config_hash(faster)
    assert [e.details for e in outside.events("config_changed")] == ["changed: rules"]
    assert (await handle.query(GuardianWorkflow.status)).check_interval_seconds == 7


def configure(cfg: GuardianConfig) -> GuardianConfigureInput:
    """What the reconciler sends: the whole configuration and its hash."""
    return GuardianConfigureInput(config=cfg, config_hash=config_hash(cfg))


def raw_json(text: bytes) -> RawValue:
    """A payload sent as these JSON bytes, whatever they hold (bypassing the client's encoder)."""
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=text))


async def test_configure_is_refused_unless_whole_and_hashed_and_never_removes_every_admin(time_skipping_env, guardian):
    """Anyone who can reach the namespace can signal `configure`: what is not the reconciler's
    whole, hashed configuration is refused and audited, nothing applied in part; a change of who
    can act is audited old -> new and notified urgently (docs/security.md)."""
    admins = ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"]
    handle, outside = await guardian(70.0, admins=admins)
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check")
    current = await handle.query(GuardianWorkflow.config_query)
    assert current.admins == admins and current.breakers
    stranger = "0x000000000000000000000000000000000000dEaD"
    takeover = current.model_copy(update={"admins": [stranger]})
    no_admins = current.model_copy(update={"admins": []})
    await handle.signal(CONFIGURE_SIGNAL, {})  # `configure {}`
    await handle.signal(CONFIGURE_SIGNAL, takeover)  # a bare configuration, as before the guard
    await handle.signal(CONFIGURE_SIGNAL, {"config": takeover.model_dump(mode="json"), "config_hash": "0" * 64})
    partial = takeover.model_dump(mode="json")
    del partial["breakers"]
    await handle.signal(CONFIGURE_SIGNAL, {"config": partial, "config_hash": config_hash(takeover)})
    await handle.signal(CONFIGURE_SIGNAL, configure(no_admins))
    await handle.signal(CONFIGURE_SIGNAL, raw_json(b'{"config": "\\ud800"' + b"[" * 5000))
    refused = await wait_for(
        lambda: len(outside.events("config_refused")) >= 6 and outside.events("config_refused"), 20, "six refusals"
    )
    details = [e.details or "" for e in refused]
    assert "exactly config and config_hash" in details[0] and "exactly config and config_hash" in details[1]
    assert "is not the hash" in details[2]
    assert "missing breakers" in details[3]
    assert "no admins" in details[4]
    assert "cannot be decoded" in details[5]
    assert (await handle.query(GuardianWorkflow.config_query)).admins == current.admins  # nothing applied
    assert not outside.events("config_changed")

    # The reconciler's own change of admins: applied, audited old -> new, notified urgently.
    await handle.signal(CONFIGURE_SIGNAL, configure(takeover))
    await wait_for(lambda: len(outside.events("config_changed")) == 2, 20, "the config_changed events")
    changed = outside.events("config_changed")
    assert changed[0].details == "changed: admins"
    assert changed[1].action == "admins_or_breakers" and stranger.lower() in (changed[1].details or "")
    assert current.admins[0].lower() in (changed[1].details or "")  # the old admins, named
    [note] = [n for n in outside.notifications.values() if n.kind == "config_changed"]
    assert note.urgent and stranger.lower() in note.body


async def test_undecodable_admin_payloads_and_readings_leave_an_audit_event(guardian):
    handle, outside = await guardian(70.0)
    await wait_for(lambda: outside.events("governance_check"), 20, "the first check")
    lone_surrogate = raw_json(b'{"reason": "\\ud800", "authorization": "x"}')
    deep = raw_json(b"[" * 5000 + b"]" * 5000)
    await handle.signal(GuardianWorkflow.pause_signal, lone_surrogate)
    await handle.signal(GuardianWorkflow.resume_signal, deep)
    await handle.signal(GuardianWorkflow.reading_signal, deep)
    rejected = await wait_for(
        lambda: len(outside.events("admin_rejected")) >= 2 and outside.events("admin_rejected"), 20, "two rejections"
    )
    assert [(e.action, "malformed" in (e.details or "")) for e in rejected] == [
        ("rejected_pause", True),
        ("rejected_resume", True),
    ]
    await wait_for(lambda: outside.events("tracker_error"), 20, "the invalid reading")
    assert "not_json" in (outside.events("tracker_error")[0].details or "")
    assert await running(handle)
