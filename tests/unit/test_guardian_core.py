"""GuardianCore: the alert state machine (one open alert per type, escalation, hysteresis
and dwell), breaker decisions (exactly once, never an automatic resume), tracker-failure
counting, notifications, and signed admin pause/resume — plain tests, real signatures.

The private keys below are the well-known, public Hardhat/Anvil development accounts 0
and 1 (the demo admins of .cogni/repo-spec.yaml) and account 2 (not an admin). Never use
them for anything of value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from govfleet.domain.admin_signing import GovernanceApproval, legacy_message, sign_authorization
from govfleet.domain.guardian.core import GuardianCore
from govfleet.domain.guardian.models import AdminRejected, ForensicAuditInput, GuardianState, PauseInput, ResumeInput
from govfleet.domain.guardian.readings import TrackerFailure, validate_reading
from govfleet.repo_spec import guardian_config, parse_repo_spec
from govfleet.simulator import reading_body
from tests.conftest import EXAMPLE_SPEC

ADMIN_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0 (public)
ADMIN_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1 (public)
OUTSIDER = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # Hardhat #2, not an admin
T0 = datetime(2025, 11, 16, 10, 0, tzinfo=UTC)
GID = "governance-guardian"


SEED_STATUS_FIELDS = {
    "monitoring_active",
    "last_check",
    "check_interval_seconds",
    "current_holder_control",
    "governance_level",
    "system_status",
    "paused",
    "alerts_active",
}


def make_core(**overrides) -> GuardianCore:
    spec = parse_repo_spec(EXAMPLE_SPEC.read_text())
    return GuardianCore(guardian_config(spec.guardian, spec.cogni_dao, **overrides), GuardianState(chain="c0ffee"))


class Driver:
    """Feeds readings one check at a time and collects every effect."""

    def __init__(self, core: GuardianCore, step_seconds: float = 1.0):
        self.core = core
        self.now = T0
        self.step = timedelta(seconds=step_seconds)
        self.events: list = []
        self.alerts_opened: list = []
        self.resolved: list = []
        self.calls: list = []
        self.notes: list = []
        self.attrs: list = []

    def collect(self):
        fx = self.core.drain()
        self.events += fx.record.events
        self.alerts_opened += fx.record.alerts_opened
        self.resolved += fx.record.alerts_resolved
        self.calls += fx.breaker_calls
        self.notes += fx.notifications
        if fx.search_attributes:
            self.attrs.append(fx.search_attributes)
        return fx

    def feed(self, *values: float, step: timedelta | None = None):
        for h in values:
            self.now += step or self.step
            self.core.on_reading(
                validate_reading(reading_body(h, now=self.now), now=self.now, staleness_seconds=120), self.now
            )
            self.collect()

    def fail(self, times: int = 1, code: str = "unreachable"):
        for _ in range(times):
            self.now += self.step
            self.core.on_invalid(TrackerFailure(code=code, message="connection refused"), self.now)
            self.collect()

    def notable(self) -> list[tuple[str, str]]:
        return [(e.event_type, e.action) for e in self.events if e.event_type != "governance_check"]

    def sign(
        self,
        key: str,
        action: str,
        reason: str = "",
        nonce: str | None = None,
        ttl: int = 600,
        approval: GovernanceApproval | None = None,
    ) -> str:
        n = nonce or f"nonce{len(self.events):04d}{key[-6:]}{action[:8]}"
        return sign_authorization(
            key,
            domain=self.core.config.signing_domain,
            action=action,
            guardian_id=GID,
            reason=reason,
            expires_at=self.now + timedelta(seconds=ttl),
            nonce=n,
            approval=approval,
        )


def test_gradual_decline_70_51_49():
    d = Driver(make_core())
    d.feed(*[float(v) for v in range(70, 51, -1)], 51.5, 51.0, 50.5, 50.0, 49.5, 49.0, 48.5)
    assert d.notable() == [
        ("threshold_crossed", "none"),  # excellent -> good
        ("threshold_crossed", "none"),  # good -> acceptable
        ("threshold_crossed", "alert_caution"),
        ("threshold_crossed", "alert_warning"),
        ("threshold_crossed", "pause_redemptions"),
        ("pause", "pause"),
        ("threshold_crossed", "pause_everything"),
        ("pause", "pause"),
        ("forensic_audit", "required"),  # after the emergency pause
    ]
    assert [(a.alert_type, a.holder_control, a.action_taken) for a in d.alerts_opened] == [
        ("caution", 54.0, "increased_monitoring"),
        ("warning", 51.5, "urgent_notification_prepare_pause"),
        ("critical", 50.5, "paused_redemptions"),
        ("emergency", 48.5, "paused_everything"),
    ]
    pauses = [p for p in d.core.state.pauses]
    assert [(c.target, c.action, c.idempotency_key) for c in d.calls] == [
        ("redemption-algorithm", "pause", f"{GID}:{pauses[0].pause_id}"),
        ("sol-treasury-core", "pause", f"{GID}:{pauses[1].pause_id}"),
    ]
    assert [(p.scope, p.emergency, p.pause_type) for p in pauses] == [
        ("redemptions", False, "automatic"),
        ("everything", True, "automatic"),
    ]
    assert [(n.kind, n.urgent) for n in d.notes] == [
        ("caution", False),
        ("warning", True),
        ("critical", True),
        ("emergency", True),
    ]
    status = d.core.status()
    assert status.model_dump(include=SEED_STATUS_FIELDS) == {
        "monitoring_active": True,
        "last_check": d.now,
        "check_interval_seconds": 1,
        "current_holder_control": 48.5,
        "governance_level": "emergency",
        "system_status": "fully_paused",
        "paused": True,
        "alerts_active": 4,
    }
    # The incident: fully paused since the emergency pause (not the earlier redemptions pause).
    emergency_pause = next(p for p in status.pauses if p.emergency)
    assert status.paused_since == emergency_pause.since
    assert [(p.scope, p.paused_by) for p in status.pauses] == [("redemptions", "guardian"), ("everything", "guardian")]
    assert status.pauses[0].since < status.paused_since
    assert status.open_alerts == ["emergency", "critical", "warning", "caution"]
    assert status.resume_requires is not None
    assert (status.resume_requires.quorum, status.resume_requires.governance_approval) == (2, True)
    assert d.core.resume_requires() == "governance_vote"
    levels = [a["GovernanceLevel"] for a in d.attrs]
    assert levels == ["excellent", "good", "acceptable", "caution", "warning", "critical", "emergency"]
    assert [a["SystemStatus"] for a in d.attrs][-3:] == ["operational", "redemptions_paused", "fully_paused"]


def test_every_check_is_audited_with_holder_control():
    d = Driver(make_core())
    d.feed(70.0, 69.5, 54.0)
    checks = [e for e in d.events if e.event_type == "governance_check"]
    assert [(e.holder_control, e.threshold_level, e.action) for e in checks] == [
        (70.0, "excellent", "none"),
        (69.5, "good", "none"),
        (54.0, "caution", "alert"),
    ]
    assert len({e.key for e in d.events}) == len(d.events)


def test_rapid_drop_pauses_everything_once_in_one_check():
    d = Driver(make_core())
    d.feed(70.0, 70.0, 48.0, 48.0, 47.0)
    assert d.notable() == [
        ("threshold_crossed", "pause_everything"),
        ("pause", "pause"),
        ("forensic_audit", "required"),
    ]
    assert [a.alert_type for a in d.alerts_opened] == ["caution", "warning", "critical", "emergency"]
    (pause,) = d.core.state.pauses
    assert sorted((c.target, c.idempotency_key) for c in d.calls) == [
        ("redemption-algorithm", pause.key),
        ("sol-treasury-core", pause.key),
    ]
    # One notification for the whole escalation: the most severe, naming the others.
    assert [(n.kind, n.urgent) for n in d.notes] == [("emergency", True)]
    assert d.notes[0].data["also_opened"] == ["caution", "warning", "critical"]
    assert "Level: emergency\nHolder Control: 48%\nThreshold: 49%\nAction Taken: paused_everything" in d.notes[0].body


def test_hovering_at_51_does_not_flap():
    d = Driver(make_core())
    d.feed(55.0, 51.5)
    before = len(d.notable())
    hover = [50.9, 51.1, 50.95, 51.05, 51.0, 50.9, 51.1] * 10
    d.feed(*hover)
    assert d.notable()[before:] == [("threshold_crossed", "pause_redemptions"), ("pause", "pause")]
    assert [a.alert_type for a in d.alerts_opened] == ["caution", "warning", "critical"]
    assert len(d.calls) == 1
    assert d.core.state.level == "critical"
    assert d.core.interval_seconds() == 1
    # 55 -> 51.5 opened caution and warning in one check: one (escalation) notification.
    assert [n.kind for n in d.notes] == ["warning", "critical"]


def test_alert_clears_only_after_hysteresis_and_dwell():
    d = Driver(make_core())
    d.feed(53.0)  # caution alert open
    d.feed(55.4, 55.4, 55.4, 55.4)  # above the threshold but inside the 0.5 hysteresis band
    assert d.core.open_alert("caution") is not None
    d.feed(55.5, 55.5)
    d.fail(1)  # an invalid reading neither counts nor resets
    d.feed(55.2)  # back inside the band: the dwell starts again
    d.feed(55.5, 55.6)
    assert d.core.open_alert("caution") is not None and d.core.state.level == "caution"
    d.feed(56.0)
    assert d.core.open_alert("caution") is None
    assert d.core.state.level == "acceptable"
    assert d.notable()[-2:] == [
        ("threshold_crossed", "decreased_monitoring"),
        ("alert_resolved", "cleared_caution_alert"),
    ]
    assert [n.kind for n in d.notes] == ["caution", "recovery"]
    assert d.core.alerts().alerts[0].resolved is True


def test_reminder_only_after_the_repeat_interval():
    d = Driver(make_core(), step_seconds=5)
    d.feed(53.0)
    d.feed(*[53.0] * (12 * 60 - 1))  # 5 s checks for 59 min 55 s
    assert [n.kind for n in d.notes] == ["caution"]
    d.feed(53.0)  # 60 minutes after the first notification
    assert [(n.kind, n.data["reminder"]) for n in d.notes] == [("caution", False), ("caution", True)]
    d.feed(51.5)  # escalation notifies at once
    assert [(n.kind, n.urgent) for n in d.notes][-1] == ("warning", True)
    assert len({n.idempotency_key for n in d.notes}) == len(d.notes)


def test_tracker_failures_raise_one_alert_and_recovery_resolves_it():
    d = Driver(make_core())
    d.feed(53.0)
    d.fail(2)
    assert d.core.open_alert("tracker_unavailable") is None
    d.fail(1, code="stale")
    d.fail(5)
    alert = d.core.open_alert("tracker_unavailable")
    assert alert is not None and "3 consecutive invalid readings (last: stale" in alert.message
    assert [a.alert_type for a in d.alerts_opened] == ["caution", "tracker_unavailable"]
    assert d.core.state.level == "caution" and d.calls == []
    assert [e.action for e in d.events if e.event_type == "tracker_error"] == ["none", "none", "alert"] + ["none"] * 5
    d.feed(53.0)
    assert d.core.open_alert("tracker_unavailable") is None
    assert ("alert_resolved", "cleared_tracker_unavailable_alert") in d.notable()
    assert [n.kind for n in d.notes] == ["caution", "tracker_unavailable", "recovery"]


def test_invalid_readings_never_move_the_level_or_trip_a_breaker():
    d = Driver(make_core())
    d.feed(70.0)
    for code in ("out_of_range", "votes_mismatch", "stale", "not_json", "http_error"):
        d.fail(1, code=code)
    assert d.core.state.level == "excellent" and d.calls == [] and d.core.system_status() == "operational"


def test_push_reading_is_validated_in_the_core():
    d = Driver(make_core())
    d.now += timedelta(seconds=1)
    assert d.core.on_push({**reading_body(52.5, now=d.now)}, d.now).holder_control_percentage == 52.5
    assert d.core.on_push({"holder_control_percentage": 10}, d.now) is None
    d.collect()
    assert d.events[-1].event_type == "tracker_error" and "push: missing_field" in d.events[-1].details
    assert d.core.state.level == "caution"


def test_never_resumes_automatically():
    d = Driver(make_core())
    d.feed(70.0, 50.0)
    d.feed(*[70.0] * 20)
    assert d.core.system_status() == "redemptions_paused"
    assert [c.action for c in d.calls] == ["pause"]
    # Alerts clear with the dwell, the pause stays.
    assert d.core.open_alerts() == []
    assert d.core.state.level == "excellent"


def test_resume_from_redemptions_pause_with_one_signature():
    d = Driver(make_core())
    d.feed(70.0, 50.5, 51.2)
    req = ResumeInput(authorization=d.sign(ADMIN_0, "resume"))
    verified = d.core.authorize_resume(req, d.now)
    fresh = validate_reading(reading_body(51.2, now=d.now), now=d.now, staleness_seconds=120)
    result = d.core.resume(req, verified, d.now, fresh, None)
    d.collect()
    assert result.model_dump() == {
        "paused": False,
        "resumed_at": d.now,
        "current_holder_control": 51.2,
        "safe_to_resume": True,
    }
    (pause,) = d.core.state.pauses
    assert [(c.target, c.action, c.idempotency_key) for c in d.calls] == [
        ("redemption-algorithm", "pause", pause.key),
        ("redemption-algorithm", "resume", pause.key),
    ]
    assert pause.resumed_by == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert d.core.system_status() == "operational"
    assert d.core.open_alert("critical") is None
    assert ("resume", "resume") in d.notable()
    # Multiple crossings: a new drop is a new pause with a new key.
    d.feed(50.8)
    assert [c.action for c in d.calls] == ["pause", "resume", "pause"]
    assert d.calls[2].idempotency_key != pause.key


def test_resume_requires_holder_control_at_or_above_critical_now():
    d = Driver(make_core())
    d.feed(70.0, 50.5)
    req = ResumeInput(authorization=d.sign(ADMIN_0, "resume"))
    verified = d.core.authorize_resume(req, d.now)
    fresh = validate_reading(reading_body(50.99, now=d.now), now=d.now, staleness_seconds=120)
    with pytest.raises(AdminRejected) as info:
        d.core.resume(req, verified, d.now, fresh, None)
    assert info.value.code == "unsafe_to_resume" and "50.99% is below the critical threshold 51%" in info.value.message
    with pytest.raises(AdminRejected) as info:
        d.core.resume(req, verified, d.now, None, TrackerFailure(code="stale", message="old"))
    assert info.value.code == "holder_control_unknown"
    d.collect()
    assert d.core.system_status() == "redemptions_paused"
    assert [c.action for c in d.calls] == ["pause"]
    assert d.notable()[-2:] == [("admin_rejected", "rejected_resume"), ("admin_rejected", "rejected_resume")]


ADMINS = (ADMIN_0, ADMIN_1)
APPROVAL = GovernanceApproval(reference="proposal 0x1234", url="https://snapshot.example/cogni/proposal/0x1234")


def test_emergency_resume_needs_the_signed_approval_and_a_quorum():
    d = Driver(make_core())
    d.feed(70.0, 48.0)
    d.feed(*[60.0] * 5)
    fresh = validate_reading(reading_body(60.0, now=d.now), now=d.now, staleness_seconds=120)

    def refused(req: ResumeInput, code: str) -> None:
        with pytest.raises(AdminRejected) as info:
            d.core.authorize_resume(req, d.now)
        assert info.value.code == code, info.value.message
        d.collect()

    # One admin, with the approval: quorum — and that genuine signature is spent.
    alone = d.sign(ADMIN_0, "resume", nonce="quorumA0001", approval=APPROVAL)
    refused(ResumeInput(authorization=alone, governance_approval=APPROVAL), "quorum")
    assert "quorumA0001" in d.core.state.used_nonces
    second = d.sign(ADMIN_1, "resume", nonce="quorumB0001", approval=APPROVAL)
    refused(ResumeInput(authorization=[alone, second], governance_approval=APPROVAL), "replayed")
    # A quorum without the approval, even with the old flag set: refused, and spent.
    plain = [d.sign(ADMIN_0, "resume", nonce="plainA00001"), d.sign(ADMIN_1, "resume", nonce="plainB00001")]
    refused(ResumeInput(authorization=plain, governance_verified=True), "governance_unverified")
    assert {"plainA00001", "plainB00001"} <= set(d.core.state.used_nonces)
    # Tokens signed without the approval never verify as an approved resume: they recover to strangers.
    unapproved = [d.sign(ADMIN_0, "resume", nonce="plainA00002"), d.sign(ADMIN_1, "resume", nonce="plainB00002")]
    refused(ResumeInput(authorization=unapproved, governance_approval=APPROVAL), "foreign")
    other = GovernanceApproval(reference="proposal 0x9999", url=APPROVAL.url)
    signed_other = [
        d.sign(k, "resume", nonce=f"otherap{i}001", approval=other) for i, k in enumerate((ADMIN_0, ADMIN_1))
    ]
    refused(ResumeInput(authorization=signed_other, governance_approval=APPROVAL), "foreign")
    # The quorum, each signing the approval: resumed, and the approval recorded.
    both = ResumeInput(
        authorization=[
            d.sign(ADMIN_0, "resume", nonce="quorumA0002", approval=APPROVAL),
            d.sign(ADMIN_1, "resume", nonce="quorumB0002", approval=APPROVAL),
        ],
        governance_approval=APPROVAL,
    )
    verified = d.core.authorize_resume(both, d.now)
    assert {v.approval for v in verified} == {APPROVAL.reference}
    d.core.on_reading(fresh, d.now, "resume")
    d.core.resume(both, verified, d.now, fresh, None)
    d.collect()
    assert d.core.system_status() == "operational"
    assert sorted((c.target, c.action) for c in d.calls if c.action == "resume") == [
        ("redemption-algorithm", "resume"),
        ("sol-treasury-core", "resume"),
    ]
    pause = d.core.state.pauses[0]
    assert pause.resumed_by == "0x70997970c51812dc3a010c7d01b50e0d17dc79c8,0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert pause.resume_approval == f"{APPROVAL.reference} {APPROVAL.url}"
    resume_event = next(e for e in reversed(d.events) if e.event_type == "resume")
    assert APPROVAL.reference in (resume_event.details or "") and APPROVAL.url in (resume_event.details or "")
    assert d.notes[-1].data["governance_approval"] == pause.resume_approval
    # A resume clears every open level alert and checks at the interval of the current level.
    assert [a.alert_type for a in d.core.open_alerts()] == []
    assert (d.core.state.level, d.core.interval_seconds()) == ("good", 30)


def test_runs_from_before_the_signed_approval_keep_the_flag_while_replayed():
    d = Driver(make_core())
    d.feed(70.0, 48.0)
    d.feed(*[60.0] * 5)
    both = ResumeInput(
        authorization=[d.sign(ADMIN_0, "resume", nonce="legacyA0001"), d.sign(ADMIN_1, "resume", nonce="legacyB0001")],
        governance_verified=True,
    )
    verified = d.core.authorize_resume(both, d.now, legacy=True)
    fresh = validate_reading(reading_body(60.0, now=d.now), now=d.now, staleness_seconds=120)
    d.core.resume(both, verified, d.now, fresh, None, legacy=True)
    assert d.core.system_status() == "operational"


def test_refused_resumes_spend_their_genuine_signatures():
    d = Driver(make_core())
    d.feed(70.0)
    req = ResumeInput(authorization=d.sign(ADMIN_0, "resume", nonce="notpaused01"))
    with pytest.raises(AdminRejected) as info:
        d.core.authorize_resume(req, d.now)
    assert info.value.code == "not_paused"
    assert set(d.core.state.used_nonces) == {"notpaused01"}
    # Refused while unsafe: spent too; a new signature resumes once it is safe.
    d.feed(50.5)
    req = ResumeInput(authorization=d.sign(ADMIN_0, "resume", nonce="unsafe00001"))
    verified = d.core.authorize_resume(req, d.now)
    low = validate_reading(reading_body(50.5, now=d.now), now=d.now, staleness_seconds=120)
    with pytest.raises(AdminRejected, match="below the critical threshold"):
        d.core.resume(req, verified, d.now, low, None)
    assert "unsafe00001" in d.core.state.used_nonces
    with pytest.raises(AdminRejected) as info:
        d.core.authorize_resume(req, d.now)
    assert info.value.code == "replayed"
    again = ResumeInput(authorization=d.sign(ADMIN_0, "resume", nonce="safe0000001"))
    safe = validate_reading(reading_body(60.0, now=d.now), now=d.now, staleness_seconds=120)
    d.core.resume(again, d.core.authorize_resume(again, d.now), d.now, safe, None)
    assert d.core.system_status() == "operational"
    # Signatures that are not genuine spend nothing (an attacker cannot burn an admin's nonce).
    forged = ResumeInput(authorization=[d.sign(ADMIN_0, "resume", nonce="genuine0001"), "x.1.0x00"])
    with pytest.raises(AdminRejected):
        d.core.authorize_resume(forged, d.now)
    assert "genuine0001" not in d.core.state.used_nonces


def test_emergency_requires_a_forensic_audit_until_an_admin_signs_its_completion():
    d = Driver(make_core())
    d.feed(70.0, 48.0)
    audit = d.core.status().forensic_audit
    assert audit is not None and audit.required and audit.pause_key == d.core.state.pauses[0].key
    assert d.notes[-1].data["forensic_audit_required"] is True
    with pytest.raises(AdminRejected) as info:
        d.core.complete_forensic_audit(ForensicAuditInput(report="https://r.example/1", authorization="x"), d.now)
    assert info.value.code == "malformed"
    report = "https://reports.example/forensic/2026-12"
    token = d.sign(ADMIN_1, "complete_forensic_audit", reason=report, nonce="forensic001")
    result = d.core.complete_forensic_audit(ForensicAuditInput(report=report, authorization=token), d.now)
    fx = d.collect()
    assert result.report == report and result.completed_by == "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    done = d.core.status().forensic_audit
    assert done is not None and not done.required and done.report == report
    assert [f.completed_at for f in fx.record.forensic] == [d.now]
    assert ("forensic_audit", "completed") in d.notable()
    again = d.sign(ADMIN_0, "complete_forensic_audit", reason=report, nonce="forensic002")
    with pytest.raises(AdminRejected) as info:
        d.core.complete_forensic_audit(ForensicAuditInput(report=report, authorization=again), d.now)
    assert info.value.code == "no_forensic_audit"


def test_entering_warning_probes_every_breaker_target_and_names_one_that_does_not_answer():
    d = Driver(make_core())
    d.feed(70.0)
    d.now += d.step
    d.core.on_reading(validate_reading(reading_body(51.5, now=d.now), now=d.now, staleness_seconds=120), d.now)
    fx = d.collect()
    assert sorted(p.target for p in fx.probes) == ["redemption-algorithm", "sol-treasury-core"]
    d.feed(51.4)  # still warning: no new probes
    d.core.on_probe("sol-treasury-core", "GET http://x/admin/status answered 503", d.now)
    d.core.on_probe("redemption-algorithm", None, d.now)
    fx = d.collect()
    assert [(n.kind, n.urgent) for n in fx.notifications] == [("breaker_unreachable", True)]
    assert "sol-treasury-core" in fx.notifications[0].title
    assert d.core.status().unreachable_targets == ["sol-treasury-core"]
    assert "breaker_unreachable" in d.core.status().open_alerts
    d.core.on_call_answered("sol-treasury-core", "pause", d.now)
    fx = d.collect()
    assert d.core.status().unreachable_targets == []
    assert [n.kind for n in fx.notifications] == ["breaker_recovered"]
    assert "breaker_unreachable" not in d.core.status().open_alerts


def test_manual_pause_and_replay_forgery_expiry():
    d = Driver(make_core())
    d.feed(70.0)
    token = d.sign(ADMIN_0, "pause", reason="Manual intervention required")
    result = d.core.pause(PauseInput(reason="Manual intervention required", authorization=token), d.now)
    d.collect()
    assert result.model_dump() == {
        "paused": True,
        "paused_at": d.now,
        "reason": "Manual intervention required",
        "resume_requires": "admin_approval",
    }
    assert d.core.system_status() == "fully_paused"
    assert sorted(c.target for c in d.calls) == ["redemption-algorithm", "sol-treasury-core"]
    state_before = d.core.state.model_dump()

    def rejected(req, code):
        with pytest.raises(AdminRejected) as info:
            d.core.pause(req, d.now)
        assert info.value.code == code, info.value.message
        d.collect()

    rejected(PauseInput(reason="Manual intervention required", authorization=token), "replayed")
    rejected(
        PauseInput(
            reason="Manual intervention required",
            authorization=d.sign(OUTSIDER, "pause", reason="Manual intervention required"),
        ),
        "foreign",
    )
    rejected(
        PauseInput(
            reason="something else", authorization=d.sign(ADMIN_0, "pause", reason="Manual intervention required")
        ),
        "foreign",
    )
    rejected(PauseInput(reason="x", authorization="not-a-token"), "malformed")
    rejected(PauseInput(reason="x", authorization=""), "malformed")
    rejected(PauseInput(reason="x", authorization=d.sign(ADMIN_0, "pause", reason="x", ttl=3600)), "expired")
    rejected(PauseInput(reason="x", authorization=d.sign(ADMIN_0, "resume", reason="x")), "foreign")
    after = d.core.state.model_dump()
    # A rejected action changes nothing but the audit trail.
    for key in ("pauses", "alerts", "used_nonces", "level", "reading"):
        assert after[key] == state_before[key], key
    assert [a for e, a in d.notable() if e == "admin_rejected"] == ["rejected_pause"] * 7
    assert len(d.calls) == 2


def test_runs_on_the_eip191_scheme_keep_using_nonces_of_rejected_actions():
    d = Driver(make_core())
    d.feed(70.0)
    cfg = d.core.config
    expires_at = d.now + timedelta(seconds=600)
    text = legacy_message(action="resume", guardian_id=GID, nonce="notpaused01", expires_at=expires_at, reason="")
    sig = Account.sign_message(encode_defunct(text=text), ADMIN_0).signature.hex().removeprefix("0x")
    req = ResumeInput(authorization=f"notpaused01.{int(expires_at.timestamp())}.0x{sig}")
    with pytest.raises(AdminRejected) as info:
        d.core.authorize_resume(req, d.now, "eip191")
    assert info.value.code == "not_paused" and "notpaused01" in d.core.state.used_nonces
    assert cfg.signing_domain.chain_id == 8453  # the example repo-spec's cogni_dao


def test_fractional_vote_counts_are_an_invalid_reading():
    d = Driver(make_core())
    d.feed(70.0)
    body = {**reading_body(60.0, now=d.now), "total_votes": 10000.5, "holder_votes": 6000.5}
    assert d.core.on_push(body, d.now) is None
    d.collect()
    assert d.events[-1].event_type == "tracker_error" and "total_votes must be a whole number" in d.events[-1].details
    assert d.core.governance().total_votes == 10000  # the last valid reading
    whole = {**reading_body(60.0, now=d.now), "total_votes": 10000.0, "holder_votes": 6000.0, "seller_votes": 4000}
    assert d.core.on_push(whole, d.now) is not None
    assert d.core.governance().model_dump()["total_votes"] == 10000
    # Runs from before the rule took fractional counts; their answer still has the documented shape.
    assert d.core.on_push(body, d.now, whole_votes=False) is not None
    assert d.core.governance().total_votes is None and d.core.governance().holder_control_percentage == 60.0


def test_queries_have_the_seed_shapes():
    d = Driver(make_core())
    d.feed(70.5, 54.2)
    # The seed's fields, and beyond them only the incident's (clients ignore unknown fields).
    assert set(d.core.status().model_dump()) == SEED_STATUS_FIELDS | {
        "paused_since",
        "pauses",
        "resume_requires",
        "open_alerts",
        "forensic_audit",
        "unreachable_targets",
    }
    gov = d.core.governance().model_dump()
    assert gov == {
        "holder_control_percentage": 54.2,
        "total_votes": 10000,
        "holder_votes": 5420,
        "seller_votes": 4580,
        "threshold_level": "caution",
        "margin_above_critical": 3.2,
        "is_stable": False,
        "last_updated": d.now,
    }
    assert set(d.core.alerts().alerts[0].model_dump()) == {
        "id",
        "timestamp",
        "alert_type",
        "holder_control",
        "message",
        "action_taken",
        "resolved",
        "resolved_at",
    }
    assert d.core.alerts().alerts[0].message == "Holder control dropped below 55%"
    ev = d.core.events(limit=2).events
    assert len(ev) == 2 and ev[0].timestamp >= ev[1].timestamp
    assert d.core.rules_view().model_dump() == {
        "critical_threshold": 51.0,
        "caution_threshold": 55.0,
        "warning_threshold": 52.0,
        "pause_redemptions_at": 51.0,
        "pause_system_at": 49.0,
        "monitoring_interval_normal": 30,
        "monitoring_interval_caution": 5,
        "monitoring_interval_critical": 1,
    }


def test_state_survives_a_round_trip_through_json():
    d = Driver(make_core())
    d.feed(70.0, 50.0)
    d.core.pause(PauseInput(reason="hold", authorization=d.sign(ADMIN_0, "pause", reason="hold")), d.now)
    d.collect()
    copy = GuardianState.model_validate_json(d.core.state.model_dump_json())
    assert copy == d.core.state


def test_a_manual_pause_on_a_fully_paused_system_answers_with_the_pause_that_made_it_so():
    d = Driver(make_core())
    d.feed(70.0, 50.5)  # redemptions paused
    redemptions = d.core.state.pauses[0]
    d.feed(48.0)  # then everything: the emergency pause
    emergency = d.core.state.pauses[1]
    assert redemptions.paused_at < emergency.paused_at
    d.now += d.step
    token = d.sign(ADMIN_0, "pause", reason="belt and braces", nonce="manualpause1")
    result = d.core.pause(PauseInput(reason="belt and braces", authorization=token), d.now)
    assert (result.paused_at, result.reason) == (emergency.paused_at, emergency.reason)
    assert result.resume_requires == "governance_vote"
    assert d.core.status().paused_since == emergency.paused_at
    # A manual pause names who paused; an automatic one, the guardian.
    d2 = Driver(make_core())
    d2.feed(70.0)
    token = d2.sign(ADMIN_1, "pause", reason="maintenance", nonce="manualpause2")
    d2.core.pause(PauseInput(reason="maintenance", authorization=token), d2.now)
    [view] = d2.core.status().pauses
    assert (view.paused_by, view.pause_type) == ("0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "manual")


def test_a_target_removed_while_paused_is_still_resumed_under_its_key():
    d = Driver(make_core())
    d.feed(70.0, 50.5)  # redemptions paused
    (pause,) = d.core.state.pauses
    without = d.core.config.model_copy(
        update={"breakers": [t for t in d.core.config.breakers if t.scope != "redemptions"]}
    )
    d.core.reconfigure(without, d.now)
    assert "redemption-algorithm" in d.core.state.retired_targets
    d.feed(*[60.0] * 3)
    req = ResumeInput(authorization=d.sign(ADMIN_0, "resume", nonce="retired0001"))
    fresh = validate_reading(reading_body(60.0, now=d.now), now=d.now, staleness_seconds=120)
    d.core.resume(req, d.core.authorize_resume(req, d.now), d.now, fresh, None)
    d.collect()
    assert [(c.target, c.action, c.idempotency_key) for c in d.calls if c.action == "resume"] == [
        ("redemption-algorithm", "resume", pause.key)
    ]
    assert d.core.state.retired_targets == {}
