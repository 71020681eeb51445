"""Signed admin actions: a manual pause; a resume in two halves (signatures and pause state, then
holder control at that moment); the completion of the forensic audit an emergency requires. A
rejection is audited and raised as `AdminRejected`. A signature that is not genuine uses no
nonce; genuine signatures on an action that is refused are spent, so a refused request can
never become an accepted one later. See docs/admin-actions.md and docs/guardian.md, "Breakers"."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from govfleet.domain.admin_auth import (
    AuthorizationError,
    Scheme,
    VerifiedSignature,
    parse_authorizations,
    prune_used_nonces,
)
from govfleet.domain.admin_signing import GovernanceApproval
from govfleet.domain.guardian import notices
from govfleet.domain.guardian.book import GuardianBook
from govfleet.domain.guardian.levels import LEVEL_ALERTS, fmt_pct, round2, to_decimal
from govfleet.domain.guardian.models import (
    AdminRejected,
    ForensicAuditInput,
    ForensicAuditResult,
    PauseInput,
    PauseResult,
    ResumeInput,
    ResumeResult,
)
from govfleet.domain.guardian.readings import Reading, TrackerFailure
from govfleet.domain.text import clip
from govfleet.domain.timestamps import iso_utc


def _signers(verified: list[VerifiedSignature]) -> str:
    return ",".join(sorted({v.signer for v in verified}))


def approval_text(approval: GovernanceApproval) -> str:
    return f"{approval.reference} {approval.url}"


class GuardianAdmin(GuardianBook):
    """Admin pause, resume and forensic-audit completion, verified against the configured admins
    and signing domain.

    `legacy=True` keeps the resume rules of runs from before the signed governance approval while
    they are replayed (docs/patches.md, `guardian-resume-rules`): the `governance_verified` flag,
    refusals that spend nothing, a resume that clears only the critical and emergency alerts."""

    def _authorize(
        self,
        action: str,
        authorization: str | list[str],
        reason: str,
        now: datetime,
        quorum: int,
        scheme: Scheme,
        *,
        approval: GovernanceApproval | None = None,
        spend_refused: bool = False,
    ) -> list[VerifiedSignature]:
        """The verified signatures, or AdminRejected (audited). The nonces are used when the action
        succeeds (`_use_nonces`) or, with `spend_refused`, when genuine signatures were too few;
        runs on the EIP-191 scheme used them here, even for an action rejected afterwards, and
        keep doing so while they are replayed."""
        self.state.used_nonces = prune_used_nonces(self.state.used_nonces, now)
        try:
            tokens = parse_authorizations(authorization)
            extra = {"approval": approval} if approval is not None else {}
            verified = self._verify(
                tokens,
                domain=self.config.signing_domain,
                action=action,
                guardian_id=self.config.guardian_id,
                reason=reason,
                now=now,
                admins=list(self.config.admins),
                used_nonces=frozenset(self.state.used_nonces),
                quorum=quorum,
                max_age_seconds=self.config.signature_max_age_seconds,
                scheme=scheme,
                **extra,
            )
        except AuthorizationError as exc:
            if spend_refused:
                self._use_nonces(exc.verified)
            self._reject(now, action, exc.code, exc.message)
        except (ValueError, TypeError) as exc:
            self._reject(now, action, "malformed", str(exc))
        if scheme == "eip191":
            self._use_nonces(verified)
        return verified

    def _use_nonces(self, verified: list[VerifiedSignature]) -> None:
        for v in verified:
            self.state.used_nonces[v.nonce] = v.expires_at

    def reject(self, now: datetime, action: str, code: str, message: str) -> None:
        """Refuse an admin action for a reason found outside the core (e.g. an unparsable body)."""
        self._reject(now, action, code, message)

    def _reject(self, now: datetime, action: str, code: str, message: str) -> NoReturn:
        message = clip(message)
        self._event(now, "admin_rejected", f"rejected_{action}", f"{code}: {message}")
        raise AdminRejected(code, message)

    def _refuse(
        self, now: datetime, action: str, code: str, message: str, verified: list[VerifiedSignature], *, spend: bool
    ) -> NoReturn:
        """Refuse an action whose signatures are genuine: with `spend`, they are used up."""
        if spend:
            self._use_nonces(verified)
        self._reject(now, action, code, message)

    def pause(self, req: PauseInput, now: datetime, scheme: Scheme = "eip712") -> PauseResult:
        """Signed manual pause of everything. Raises AdminRejected (after auditing it)."""
        verified = self._authorize("pause", req.authorization, req.reason, now, quorum=1, scheme=scheme)
        if not req.reason.strip():
            self._reject(now, "pause", "malformed", "reason is required for a pause")
        self._use_nonces(verified)
        signers = _signers(verified)
        if self.system_status() == "fully_paused":
            # The pause that made it fully paused (an earlier redemptions pause is not it).
            first = min((p for p in self.active_pauses() if p.scope == "everything"), key=lambda p: p.paused_at)
            self._event(
                now,
                "pause",
                "none",
                f"already fully paused since {iso_utc(first.paused_at)}; requested by {signers}: {req.reason}",
            )
            return PauseResult(
                paused=True, paused_at=first.paused_at, reason=first.reason, resume_requires=self.resume_requires()
            )
        paused = self.paused_targets()
        targets = [t for t in self.config.breakers if t.name not in paused]
        pause = self._pause(
            now,
            pause_type="manual",
            scope="everything",
            emergency=False,
            reason=f"{req.reason} (by {signers})",
            targets=targets,
            paused_by=signers,
        )
        self._notify(
            now,
            "pause",
            True,
            notices.manual_pause(
                self.config.guardian_id, holder_control=self.current_h(), now=now, system_status=self.system_status()
            ),
            {"pause_id": pause.pause_id, "reason": req.reason, "signers": signers},
        )
        return PauseResult(paused=True, paused_at=now, reason=req.reason, resume_requires=self.resume_requires())

    def authorize_resume(
        self, req: ResumeInput, now: datetime, scheme: Scheme = "eip712", *, legacy: bool = False
    ) -> list[VerifiedSignature]:
        """First half of a resume: signatures (a quorum, and the DAO's approval signed into each,
        after an emergency pause), pause state. The workflow then takes a fresh reading and calls
        `resume`."""
        spend = not legacy
        verified = self._authorize(
            "resume",
            req.authorization,
            req.reason,
            now,
            quorum=self.resume_quorum(),
            scheme=scheme,
            approval=None if legacy else req.governance_approval,
            spend_refused=spend,
        )
        if not self.active_pauses():
            self._refuse(
                now,
                "resume",
                "not_paused",
                "the system is not paused; there is nothing to resume",
                verified,
                spend=spend,
            )
        if any(p.emergency for p in self.active_pauses()):
            if legacy and not req.governance_verified:
                self._reject(
                    now,
                    "resume",
                    "governance_unverified",
                    "resuming after an emergency pause requires governance_verified: true "
                    "(a governance vote) and a quorum of admin signatures",
                )
            if not legacy and req.governance_approval is None:
                self._refuse(
                    now,
                    "resume",
                    "governance_unverified",
                    "resuming after an emergency pause requires the DAO's approval (governance_approval: "
                    "the proposal id or transaction hash, and its URL) signed into the resume by a quorum of "
                    f"{self.resume_quorum()} admins (`govfleet sign resume --approval-ref … --approval-url …`)",
                    verified,
                    spend=spend,
                )
        return verified

    def resume(
        self,
        req: ResumeInput,
        verified: list[VerifiedSignature],
        now: datetime,
        fresh: Reading | None,
        failure: TrackerFailure | None,
        *,
        legacy: bool = False,
    ) -> ResumeResult:
        """Second half: holder control must be at or above the critical threshold now. A resume
        resolves every open level alert and returns to the interval of the current level."""
        spend = not legacy
        if fresh is None:
            why = f"{failure.code}: {failure.message}" if failure else "no reading"
            self._refuse(
                now,
                "resume",
                "holder_control_unknown",
                f"cannot verify holder control now (tracker reading invalid: {why}); resume refused",
                verified,
                spend=spend,
            )
        h = to_decimal(fresh.holder_control_percentage)
        if h < self.rules.critical_threshold:
            self._refuse(
                now,
                "resume",
                "unsafe_to_resume",
                f"holder control {fmt_pct(h)}% is below the critical threshold "
                f"{fmt_pct(self.rules.critical_threshold)}%; resume refused",
                verified,
                spend=spend,
            )
        self._use_nonces(verified)
        signers = _signers(verified)
        reason = req.reason.strip() or "admin resume"
        approval = None if legacy or req.governance_approval is None else approval_text(req.governance_approval)
        resumed = []
        by_name = {t.name: t for t in self.config.breakers}
        for p in self.active_pauses():
            p.resumed_at = now
            p.resumed_by = signers[:100]
            p.resume_reason = reason
            p.resume_approval = approval
            resumed.append(p)
            self._fx.record.pauses_resumed.append(p.model_copy())
            for name in p.targets:
                # Every target the pause reached, also one removed from the configuration since.
                target = by_name.get(name) if legacy else self.target(name)
                if target is not None:
                    self._fx.breaker_calls.append(self._breaker_call(target, "resume", p, now))
        self.state.retired_targets = {}  # nothing is paused any more
        signed = f"; governance approval {approval}" if approval else ""
        self._event(
            now,
            "resume",
            "resume",
            f"resumed {', '.join(p.pause_id for p in resumed)} by {signers} at {fmt_pct(h)}%: {reason}{signed}",
        )
        cleared = LEVEL_ALERTS if not legacy else ("critical", "emergency")
        for a in self.open_alerts():
            if a.alert_type in cleared:
                self._resolve_alert(now, a, "resolved by admin resume")
        self.state.level = self._effective_level()  # the fresh reading's level: its interval from now on
        self._notify(
            now,
            "resume",
            False,
            notices.resumed(
                self.config.guardian_id,
                holder_control=h,
                signers=signers,
                reason=reason,
                now=now,
                system_status=self.system_status(),
                approval=approval,
            ),
            {
                "signers": signers,
                "holder_control": float(h),
                "pauses": [p.pause_id for p in resumed],
                "governance_approval": approval,
            },
        )
        return ResumeResult(paused=False, resumed_at=now, current_holder_control=round2(float(h)), safe_to_resume=True)

    def complete_forensic_audit(self, req: ForensicAuditInput, now: datetime) -> ForensicAuditResult:
        """An admin signs the completion of the forensic audit an emergency pause required, with a
        reference to the report (signed as the reason). Audited; raises AdminRejected."""
        action = "complete_forensic_audit"
        verified = self._authorize(action, req.authorization, req.report, now, quorum=1, scheme="eip712")
        audit = self.state.forensic
        if audit is None or not audit.open:
            self._refuse(
                now,
                action,
                "no_forensic_audit",
                "no forensic audit is required: none was required, or its completion was already signed",
                verified,
                spend=True,
            )
        self._use_nonces(verified)
        signers = _signers(verified)
        audit.completed_at = now
        audit.completed_by = signers[:100]
        audit.report = clip(req.report, 500)
        self._fx.record.forensic.append(audit.model_copy())
        self._event(
            now,
            "forensic_audit",
            "completed",
            f"forensic audit after {audit.pause_key} completed by {signers}; report: {audit.report}",
        )
        self._notify(
            now,
            "forensic_audit_completed",
            False,
            notices.forensic_audit_completed(
                self.config.guardian_id, pause_key=audit.pause_key, signers=signers, report=audit.report, now=now
            ),
            {"pause_key": audit.pause_key, "signers": signers, "report": audit.report},
        )
        return ForensicAuditResult(
            completed_at=now, completed_by=audit.completed_by, report=audit.report, pause_key=audit.pause_key
        )
