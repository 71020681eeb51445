"""Whether the breaker targets answer: a read-only probe when the guardian enters warning (the
seed's "prepare pause mechanism"), and calls that keep failing. A target that does not answer is
named in an urgent `breaker_unreachable` alert and in the status until it answers again, so a pause
does not fail unseen when it is needed. See docs/guardian.md, "Breakers"."""

from __future__ import annotations

from datetime import datetime

from govfleet.domain.guardian import notices
from govfleet.domain.guardian.book import GuardianBook
from govfleet.domain.guardian.levels import ALERT_ACTIONS, BREAKER_ALERT
from govfleet.domain.text import clip

WHY_LIMIT = 200  # characters of a target's problem kept in the state


class GuardianBreakers(GuardianBook):
    """Reports about the breaker targets, from the workflow's probes and calls."""

    def on_probe(self, target: str, error: str | None, now: datetime) -> None:
        """A probe's answer: `error` None when the target answered 2xx."""
        if error is None:
            self._answers(target, now, "answered its probe")
        else:
            self._fails(target, f"probe: {error}", now)

    def on_call_failing(self, target: str, action: str, error: str, now: datetime) -> None:
        """A pause or resume call to `target` has kept failing (it goes on being retried)."""
        self._fails(target, f"{action} call failing: {error}", now)

    def on_call_answered(self, target: str, action: str, now: datetime) -> None:
        """A call to a target that was failing has been acknowledged."""
        self._answers(target, now, f"acknowledged the {action} call")

    def _fails(self, target: str, why: str, now: datetime) -> None:
        if target not in {t.name for t in self.config.breakers}:
            return  # removed from the configuration meanwhile
        why = clip(why, WHY_LIMIT)
        first = target not in self.state.unreachable
        self.state.unreachable[target] = why
        if not first:
            return
        self._event(now, "breaker_unreachable", "alert", f"{target}: {why}")
        if self.open_alert(BREAKER_ALERT) is None:
            alert = self._open_alert(
                now, BREAKER_ALERT, f"Breaker target {target} does not answer: {why}", ALERT_ACTIONS[BREAKER_ALERT]
            )
            alert.notified_at = now
            alert.notifications += 1
        self._notify(
            now,
            BREAKER_ALERT,
            True,
            notices.breaker_unreachable(
                self.config.guardian_id, target=target, why=why, now=now, system_status=self.system_status()
            ),
            {"target": target, "error": why},
        )

    def _answers(self, target: str, now: datetime, how: str) -> None:
        if self.state.unreachable.pop(target, None) is None:
            return
        self._event(now, "breaker_reachable", "none", f"{target} {how}")
        alert = self.open_alert(BREAKER_ALERT)
        if self.state.unreachable or alert is None:
            return
        self._resolve_alert(now, alert, "every breaker target answers")
        self._notify(
            now,
            "breaker_recovered",
            False,
            notices.breakers_answer(
                self.config.guardian_id, targets=[target], now=now, system_status=self.system_status()
            ),
            {"target": target},
        )
