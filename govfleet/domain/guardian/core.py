"""`GuardianCore`: the guardian's whole decision logic, as pure code (no I/O, no clock, no
Temporal). See docs/guardian.md for the rules it implements.

It holds the guardian's state (`GuardianState`, carried across continue-as-new), takes a
reading (or a failed one) or an admin action with the time it happened, updates the state and
returns the *effects* the workflow must carry out (`drain()`): audit rows to write, breaker
calls to make, notifications to send, search attributes to upsert.

The parts, each a module of this package: `book` (state, effects and the primitives every step
writes through), `checks` (readings → level, alerts, automatic pauses, the forensic audit an
emergency requires), `admin` (signed pause, resume and forensic-audit completion), `breakers`
(targets that do not answer), `lifecycle` (restore after a terminate, reconfiguration, audit outages),
`queries` (what the workflow answers) and `notices` (the texts of the notifications).

Invariants callers rely on:
- Alerts: one open alert per type. A level alert of type T opens when h drops below T's
  threshold and resolves only after h stayed at or above threshold + hysteresis for
  `clear_after_checks` consecutive valid checks; an invalid reading neither counts nor resets.
  The effective level (reported, and used for the check interval) is the worse of the level of
  h and the level of the most severe open alert.
- Breakers: below the critical threshold the redemption-scope targets are paused, below the
  emergency threshold every target, each pause exactly once. Nothing resumes automatically:
  only a signed admin resume, with holder control at or above the critical threshold at that
  moment (after an emergency pause also a quorum of admins, each signing the DAO's approval).
- Audit writes that fail keep their rows for the next write; the next attempt waits
  `AUDIT_RETRY_SECONDS`; `audit_failures_before_alert` failures in a row send one urgent
  `database_unavailable` notification, the first success after it a `database_recovered`.
- The order of the steps of a check is the order of its audit rows and idempotency-key
  counters: running guardians replay it, so it must not change without a workflow patch.
"""

from __future__ import annotations

from govfleet.domain.guardian.admin import GuardianAdmin
from govfleet.domain.guardian.breakers import GuardianBreakers
from govfleet.domain.guardian.checks import GuardianChecks
from govfleet.domain.guardian.lifecycle import AUDIT_RETRY_SECONDS, GuardianLifecycle
from govfleet.domain.guardian.queries import GuardianQueries

__all__ = ["AUDIT_RETRY_SECONDS", "GuardianCore"]


class GuardianCore(GuardianChecks, GuardianAdmin, GuardianBreakers, GuardianLifecycle, GuardianQueries):
    """The guardian's state machine. Methods take `now` (workflow time) and append to
    the pending effects, which `drain()` hands to the workflow."""
