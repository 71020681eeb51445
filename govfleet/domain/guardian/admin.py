"""Signed admin actions: a manual pause, and a resume in two halves (signatures and pause state,
then holder control at that moment). A rejection is audited and raised as `AdminRejected`; a
rejected action uses no nonce. See docs/admin-actions.md and docs/guardian.md, "Breakers"."""

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
from govfleet.domain.guardian import notices
from govfleet.domain.guardian.book import GuardianBook
from govfleet.domain.guardian.levels import fmt_pct, round2, to_decimal
from govfleet.domain.guardian.models import (
    AdminRejected,
    PauseInput,
    PauseResult,
    ResumeInput,
    ResumeResult,
)
from govfleet.domain.guardian.readings import Reading, TrackerFailure
from govfleet.domain.timestamps import iso_utc


class GuardianAdmin(GuardianBook):
    """Admin pause and resume, verified against the configured admins and signing domain."""

    def _authorize(
        self, action: str, authorization: str | list[str], reason: str, now: datetime, quorum: int, scheme: Scheme
    ) -> list[VerifiedSignature]:
        """The verified signatures, or AdminRejected (audited). The nonces are used only when the
        action succeeds (`_use_nonces`); runs on the EIP-191 scheme used them here, even for an
        action rejected afterwards, and keep doing so while they are replayed."""
        self.state.used_nonces = prune_used_nonces(self.state.used_nonces, now)
        try:
            tokens = parse_authorizations(authorization)
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
            )
        except AuthorizationError as exc:
            self._reject(now, action, exc.code, exc.message)
            raise  # unreachable: _reject raises
        except (ValueError, TypeError) as exc:
            self._reject(now, action, "malformed", str(exc))
            raise  # unreachable: _reject raises
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
        self._event(now, "admin_rejected", f"rejected_{action}", f"{code}: {message}")
        raise AdminRejected(code, message)

    def pause(self, req: PauseInput, now: datetime, scheme: Scheme = "eip712") -> PauseResult:
        """Signed manual pause of everything. Raises AdminRejected (after auditing it)."""
        verified = self._authorize("pause", req.authorization, req.reason, now, quorum=1, scheme=scheme)
        if not req.reason.strip():
            self._reject(now, "pause", "malformed", "reason is required for a pause")
        self._use_nonces(verified)
        signers = ",".join(sorted({v.signer for v in verified}))
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

    def authorize_resume(self, req: ResumeInput, now: datetime, scheme: Scheme = "eip712") -> list[VerifiedSignature]:
        """First half of a resume: signatures (quorum after an emergency pause), pause state.
        The workflow then takes a fresh reading and calls `resume`."""
        verified = self._authorize(
            "resume", req.authorization, req.reason, now, quorum=self.resume_quorum(), scheme=scheme
        )
        if not self.active_pauses():
            self._reject(now, "resume", "not_paused", "the system is not paused; there is nothing to resume")
        if any(p.emergency for p in self.active_pauses()) and not req.governance_verified:
            self._reject(
                now,
                "resume",
                "governance_unverified",
                "resuming after an emergency pause requires governance_verified: true "
                "(a governance vote) and a quorum of admin signatures",
            )
        return verified

    def resume(
        self,
        req: ResumeInput,
        verified: list[VerifiedSignature],
        now: datetime,
        fresh: Reading | None,
        failure: TrackerFailure | None,
    ) -> ResumeResult:
        """Second half: holder control must be at or above the critical threshold now."""
        if fresh is None:
            why = f"{failure.code}: {failure.message}" if failure else "no reading"
            self._reject(
                now,
                "resume",
                "holder_control_unknown",
                f"cannot verify holder control now (tracker reading invalid: {why}); resume refused",
            )
        h = to_decimal(fresh.holder_control_percentage)
        if h < self.rules.critical_threshold:
            self._reject(
                now,
                "resume",
                "unsafe_to_resume",
                f"holder control {fmt_pct(h)}% is below the critical threshold "
                f"{fmt_pct(self.rules.critical_threshold)}%; resume refused",
            )
        self._use_nonces(verified)
        signers = ",".join(sorted({v.signer for v in verified}))
        reason = req.reason.strip() or "admin resume"
        resumed = []
        for p in self.active_pauses():
            p.resumed_at = now
            p.resumed_by = signers[:100]
            p.resume_reason = reason
            resumed.append(p)
            self._fx.record.pauses_resumed.append(p.model_copy())
            by_name = {t.name: t for t in self.config.breakers}
            for name in p.targets:
                if name in by_name:
                    self._fx.breaker_calls.append(self._breaker_call(by_name[name], "resume", p, now))
        self._event(
            now,
            "resume",
            "resume",
            f"resumed {', '.join(p.pause_id for p in resumed)} by {signers} at {fmt_pct(h)}%: {reason}",
        )
        for a in self.open_alerts():
            if a.alert_type in ("critical", "emergency"):
                self._resolve_alert(now, a, "resolved by admin resume")
        self.state.level = self._effective_level()
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
            ),
            {"signers": signers, "holder_control": float(h), "pauses": [p.pause_id for p in resumed]},
        )
        return ResumeResult(paused=False, resumed_at=now, current_holder_control=round2(float(h)), safe_to_resume=True)
