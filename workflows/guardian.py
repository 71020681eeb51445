"""Workflow `GovernanceGuardian`: orchestration only. Every rule lives in the pure
`GuardianCore` (govfleet/domain/guardian/core.py); this workflow feeds it readings and admin
actions in order and carries out the effects it returns. Names and payloads:
govfleet/contracts/guardian.py; the rules: docs/guardian.md.

Loop: wait for the check interval of the current level (a Temporal timer), cut short by
anything in the inbox (signal `reading`, signal or update `pause` / `resume` /
`forensic_audit`, signal `configure`) or a report of the background work; then one local
activity fetches and validates the reading, the core decides, and one local activity writes
the audit rows of that check in one transaction. Routine rows of fast checks (interval below
`audit_flush_seconds`) are written in batches at most that old; anything else (a crossing, an
alert, a pause, an admin action) is written at once, so a 1 s loop stays near 6 history events
per check. A pause or resume is written before its breaker calls go out.

Breaker calls, probes and notifications run in the background (workflows/guardian_dispatch.py):
a failing channel or an unreachable target never blocks or fails the loop. Every state change
happens in the main loop, so handlers never race it; update handlers wait for their command's
result. Payloads are decoded here (workflows/guardian_inbox.py), so an undecodable one is
audited. Continue-as-new happens after `continue_as_new_after_events` history events or when
the server suggests it, once handlers have finished, carrying everything in one
`GuardianInput`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.guardian import GuardianActivities
    from govfleet.contracts.guardian import (
        ALERTS_QUERY,
        CONFIG_QUERY,
        CONFIGURE_SIGNAL,
        EVENTS_QUERY,
        FORENSIC_AUDIT_SIGNAL,
        FORENSIC_AUDIT_UPDATE,
        GOVERNANCE_QUERY,
        GUARDIAN_TASK_TIMEOUT,
        GUARDIAN_WORKFLOW,
        PAUSE_SIGNAL,
        PAUSE_UPDATE,
        READING_SIGNAL,
        RESUME_SIGNAL,
        RESUME_UPDATE,
        RULES_QUERY,
        STATS_QUERY,
        STATUS_QUERY,
        AlertsQueryInput,
        AlertsResult,
        CommandKind,
        EventsQueryInput,
        EventsResult,
        FetchReadingInput,
        ForensicAuditInput,
        ForensicAuditResult,
        GovernanceResult,
        GuardianConfig,
        GuardianInput,
        GuardianStatus,
        PauseInput,
        PauseResult,
        ReadingPayload,
        RecordBatch,
        RestoreInput,
        ResumeInput,
        ResumeResult,
        RulesResult,
        StatsResult,
        StatusQueryInput,
    )
    from govfleet.domain.admin_auth import Scheme
    from govfleet.domain.declared import MEMO_KEY, config_hash, memo_for
    from govfleet.domain.guardian.core import GuardianCore
    from govfleet.domain.guardian.levels import SEVERITY
    from govfleet.domain.guardian.lifecycle import ConfigurationRefused, parse_configuration
    from govfleet.domain.guardian.models import AdminRejected, GuardianState
    from govfleet.domain.guardian.readings import Reading, TrackerFailure, fractional_votes
    from govfleet.temporal import GOVERNANCE_LEVEL, SYSTEM_STATUS
    from workflows.activity_options import guardian_fetch, guardian_record, guardian_record_ahead, guardian_restore
    from workflows.guardian_dispatch import GuardianDispatch, Report
    from workflows.guardian_inbox import ADMIN_ACTIONS, Command, admin_input, carried, decode, legacy_parse, to_carry

MAX_IN_FLIGHT_UPDATES = 8
AUDIT_BATCHES_PATCH = "guardian-audit-batches"  # runs started before it write every check at once
AUDIT_OUTAGE_PATCH = "guardian-audit-outage"  # failed audit writes back off and alert (database_unavailable)
RESTORE_PATCH = "guardian-restore"  # a guardian started afresh reads its recorded state back
CONFIG_MEMO_PATCH = "guardian-config-memo"  # `configure` records its hash in the memo; an equal one is ignored
# Admin signatures are EIP-712 (bound to the DAO, chain and guardian), checked on the shape of any
# JSON body (a malformed signal or update body of any JSON type is audited), and a rejected action
# uses no nonce. Runs from before verify EIP-191 and keep the old rules while replayed.
ADMIN_EIP712_PATCH = "guardian-admin-eip712"
WHOLE_VOTES_PATCH = "guardian-whole-votes"  # a pushed reading with fractional vote counts is invalid
# A pause or resume is written to the database before its breaker calls go out (before: after).
RECORD_BEFORE_DISPATCH_PATCH = "guardian-record-before-dispatch"
# After an emergency pause a resume needs the DAO's approval signed into it (not a flag); genuine
# signatures on a refused resume are spent; a resume clears every open level alert.
RESUME_RULES_PATCH = "guardian-resume-rules"
# `configure` carries the whole configuration with its hash; anything else is refused and audited,
# a configuration never removes every admin, and changes of who can act are notified urgently.
CONFIGURE_GUARD_PATCH = "guardian-configure-guard"
# A signal payload that cannot be decoded is audited (before: the data converter dropped it).
UNDECODABLE_PATCH = "guardian-undecodable-input"
# Breaker targets are probed on entering warning, and a call that keeps failing raises an alert.
BREAKER_HEALTH_PATCH = "guardian-breaker-health"
# The next poll comes an interval after the last poll, whatever arrived meanwhile (before: an interval
# after the last signal or update, so a stream of them postponed the check).
POLL_CADENCE_PATCH = "guardian-poll-cadence"
HARD_HISTORY_LIMIT_MARGIN = 1200  # continue-as-new even with breaker calls in flight past this


@workflow.defn(name=GUARDIAN_WORKFLOW)
class GuardianWorkflow:
    @workflow.init
    def __init__(self, input: GuardianInput) -> None:
        state = input.state or GuardianState(chain=workflow.info().run_id.replace("-", "")[:12])
        self.config = input.config
        self.core = GuardianCore(input.config, state)
        self._fresh = input.state is None
        self._runs = input.runs
        self._inbox: list[Command] = [carried(pc) for pc in input.inbox]
        self._reports: list[Report] = []
        self._carried_breakers = list(input.breaker_queue)
        self._carried_notifications = list(input.notifications)
        self._unrecorded: RecordBatch | None = input.unrecorded
        self._dispatch = GuardianDispatch(self._reports.append)
        self._probes = False  # probe breaker targets on entering warning (BREAKER_HEALTH_PATCH, set in run)
        self._meter = None
        self._checks_seen = state.checks

    # -- run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: GuardianInput) -> None:
        self._dispatch.alert_on_failing_calls = self._probes = workflow.patched(BREAKER_HEALTH_PATCH)
        for call in self._carried_breakers:
            self._dispatch.enqueue_breaker(call)
        for req in self._carried_notifications:
            self._dispatch.notify(req)
        if self._fresh and workflow.patched(RESTORE_PATCH):
            await self._restore()
        poll = self._fresh  # a new guardian checks at once; a continued one keeps its rhythm
        cadence = workflow.patched(POLL_CADENCE_PATCH)
        while True:
            if not poll and not self._inbox and not self._reports:
                wait = self.core.next_poll_in(workflow.now()) if cadence else self.core.interval_seconds()
                if wait <= 0:
                    poll = True
                else:
                    try:
                        await workflow.wait_condition(
                            lambda: bool(self._inbox or self._reports),
                            timeout=timedelta(seconds=wait),
                            timeout_summary="next check",
                        )
                    except TimeoutError:
                        poll = True
            await self._step(poll)
            poll = False
            if self._should_continue_as_new():
                await self._continue_as_new()

    async def _restore(self) -> None:
        """Started afresh (first start, or again after a terminate): take back the open alerts,
        active pauses, unacknowledged resumes, the open forensic audit and used admin nonces
        recorded for this id (docs/guardian.md). Their effects go out with the first check."""
        try:
            snapshot = await workflow.execute_local_activity_method(
                GuardianActivities.restore,
                RestoreInput(guardian_id=self.config.guardian_id, now=workflow.now()),
                **(guardian_restore(self.config.restore_timeout_seconds) | {"summary": "restore state"}),
            )
        except FailureError as exc:
            workflow.logger.error("guardian state not restored: %s", exc.cause or exc)
            self.core.restore_failed(workflow.now(), str(exc.cause or exc))
            return
        self.core.restore(snapshot, workflow.now())

    def _memo(self) -> dict:
        return memo_for(config_hash(self.config), tracker_url=self.config.tracker_url)

    async def _step(self, poll: bool) -> None:
        handled: list[Command] = []
        while self._reports:
            self._take_report(self._reports.pop(0))
        if poll:
            reading, failure = await self._fetch()
            self.core.on_fetch(reading, failure, workflow.now(), "poll")
        while self._inbox:
            cmd = self._inbox.pop(0)
            await self._handle(cmd)
            handled.append(cmd)
        await self._apply(flush=any(c.via == "update" for c in handled))
        for cmd in handled:
            cmd.done = True

    def _take_report(self, report: Report) -> None:
        now = workflow.now()
        if report.kind == "probe":
            self.core.on_probe(report.target, report.error, now)
        elif report.kind == "call_failing":
            self.core.on_call_failing(report.target, report.action, report.error or "", now)
        else:
            self.core.on_call_answered(report.target, report.action, now)

    async def _handle(self, cmd: Command) -> None:
        now = workflow.now()
        try:
            if cmd.undecodable is not None:
                self._refuse_undecodable(cmd, now)
            elif cmd.kind == "reading":
                payload = cmd.payload.model_dump() if isinstance(cmd.payload, ReadingPayload) else cmd.payload
                whole = not fractional_votes(payload) or workflow.patched(WHOLE_VOTES_PATCH)
                self.core.on_push(payload, now, whole_votes=whole)
            elif cmd.kind == "configure":
                self._configure(cmd.payload, now)
            else:
                await self._admin(cmd, now)
        except AdminRejected as exc:
            cmd.error = exc
            workflow.logger.warning("admin %s via %s rejected: %s: %s", cmd.kind, cmd.via, exc.code, exc.message)
        except ConfigurationRefused as exc:
            workflow.logger.warning("configure refused: %s", exc.why)

    def _refuse_undecodable(self, cmd: Command, now) -> None:
        why = cmd.undecodable or "undecodable"
        if cmd.kind == "reading":
            self.core.on_invalid(TrackerFailure(code="not_json", message=why), now, "push")
        elif cmd.kind == "configure":
            self.core.refuse_configuration(now, why)
        else:
            self.core.reject(now, ADMIN_ACTIONS[cmd.kind], "malformed", f"malformed {cmd.kind} body: {why}")

    async def _admin(self, cmd: Command, now) -> None:
        if cmd.kind == "forensic_audit":
            req = admin_input("forensic_audit", cmd.payload)
            if isinstance(req, str):
                self.core.reject(now, "complete_forensic_audit", "malformed", req)
            assert isinstance(req, ForensicAuditInput)
            cmd.result = self.core.complete_forensic_audit(req, now)
            return
        scheme: Scheme = "eip712" if workflow.patched(ADMIN_EIP712_PATCH) else "eip191"
        if scheme == "eip712":
            req = admin_input(cmd.kind, cmd.payload)
        else:
            req = legacy_parse(PauseInput if cmd.kind == "pause" else ResumeInput, cmd.payload)
        if isinstance(req, str):  # a body that did not parse
            self.core.reject(now, cmd.kind, "malformed", req)
        if cmd.kind == "pause":
            assert isinstance(req, PauseInput)
            cmd.result = self.core.pause(req, now, scheme)
            return
        assert isinstance(req, ResumeInput)
        legacy = not workflow.patched(RESUME_RULES_PATCH)
        verified = self.core.authorize_resume(req, now, scheme, legacy=legacy)
        reading, failure = await self._fetch()  # "holder control at or above critical *now*"
        now = workflow.now()
        self.core.on_fetch(reading, failure, now, "resume")
        cmd.result = self.core.resume(req, verified, now, reading, failure, legacy=legacy)

    def _configure(self, payload: Any, now) -> None:
        """repo-spec changed: new rules, tracker and targets from the next check on."""
        if workflow.patched(CONFIGURE_GUARD_PATCH):
            try:
                new = parse_configuration(payload)
            except ConfigurationRefused as exc:
                self.core.refuse_configuration(now, exc.why)  # audited; nothing applied
            guarded = True
        else:
            new = payload if isinstance(payload, GuardianConfig) else GuardianConfig.model_validate(payload)
            guarded = False
        new = new.model_copy(update={"guardian_id": self.config.guardian_id})
        if not workflow.patched(CONFIG_MEMO_PATCH):
            self.core.reconfigure(new, now, guarded=guarded)
            self.config = new
            return
        # An equal configure (two reconcilers at once) changes nothing; the memo is what
        # reconcilers compare with repo-spec (docs/declared-workflows.md).
        if config_hash(new) != config_hash(self.config):
            self.core.reconfigure(new, now, guarded=guarded)
            self.config = new
        if workflow.memo_value(MEMO_KEY, {}) != self._memo()[MEMO_KEY]:
            workflow.upsert_memo(self._memo())

    async def _fetch(self) -> tuple[Reading | None, TrackerFailure | None]:
        cfg = self.config
        try:
            res = await workflow.execute_local_activity_method(
                GuardianActivities.fetch_reading,
                FetchReadingInput(
                    url=cfg.tracker_url,
                    timeout_seconds=cfg.tracker_timeout_seconds,
                    staleness_seconds=cfg.staleness_seconds,
                ),
                # (summary merged in: the options type has a summary key, so a separate
                # keyword could clash as far as the type checker knows)
                **(guardian_fetch(cfg.tracker_timeout_seconds) | {"summary": "fetch reading"}),
            )
        except FailureError as exc:  # a failed local activity raises its own error, not ActivityError
            cause = exc.cause or exc
            return None, TrackerFailure(code="unreachable", message=f"fetch activity failed: {cause}")
        return res.reading, res.failure

    def _may_defer(self, batch: RecordBatch) -> bool:
        flush_after = timedelta(seconds=self.config.audit_flush_seconds)
        if timedelta(seconds=self.core.interval_seconds()) >= flush_after:
            return False
        oldest = min(e.timestamp for e in batch.events)
        return workflow.now() - oldest < flush_after

    def _record_metrics(self, breaker_calls: list) -> None:
        """Prometheus metrics through the worker runtime (not emitted during replay)."""
        if self._meter is None:
            self._meter = workflow.metric_meter().with_additional_attributes({"guardian": self.config.guardian_id})
            self._m_level = self._meter.create_gauge("governance_level", "0 excellent .. 6 emergency; -1 unknown")
            self._m_holder = self._meter.create_gauge_float("governance_holder_control", "last valid holder control %")
            self._m_checks = self._meter.create_counter("governance_checks", "guardian checks made")
            self._m_trips = self._meter.create_counter("governance_breaker_calls", "breaker pause/resume calls issued")
        state = self.core.state
        self._m_level.set(SEVERITY.get(state.level or "", -1))
        if state.reading is not None:
            self._m_holder.set(float(state.reading.holder_control_percentage))
        if state.checks > self._checks_seen:
            self._m_checks.add(state.checks - self._checks_seen)
            self._checks_seen = state.checks
        for call in breaker_calls:
            self._m_trips.add(1, {"target": call.target, "action": call.action})

    async def _apply(self, flush: bool = False) -> None:
        fx = self.core.drain()
        self._record_metrics(fx.breaker_calls)
        record_first = fx.record_before_dispatch() and workflow.patched(RECORD_BEFORE_DISPATCH_PATCH)
        if record_first:
            # One pause per decision (docs/guardian.md, "Restart after terminate"): the pause or
            # resume is in the database before any target hears of it, so a guardian terminated at
            # any instant restores it and calls again under the same key. A write that fails
            # (PostgreSQL down) does not hold the breakers back.
            await self._record(fx.record, flush=True, ahead=True)
        for call in fx.breaker_calls:
            self._dispatch.enqueue_breaker(call)
        for req in fx.notifications:
            self._dispatch.notify(req)
        if self._probes:
            for probe in fx.probes:
                self._dispatch.probe(probe)
        if fx.search_attributes and self.config.upsert_search_attributes:
            updates = []
            if "GovernanceLevel" in fx.search_attributes:
                updates.append(GOVERNANCE_LEVEL.value_set(fx.search_attributes["GovernanceLevel"]))
            updates.append(SYSTEM_STATUS.value_set(fx.search_attributes["SystemStatus"]))
            workflow.upsert_search_attributes(updates)
        if record_first:
            return
        if fx.breaker_calls:
            # Runs from before RECORD_BEFORE_DISPATCH_PATCH: let this workflow task complete so the
            # breaker calls are dispatched now, before the audit write (a local activity holds the
            # task open).
            await workflow.sleep(timedelta(milliseconds=1))
        await self._record(fx.record, flush)

    async def _record(self, rows: RecordBatch, flush: bool, *, ahead: bool = False) -> None:
        """Write `rows` with any kept from before, in one transaction (a local activity). Routine
        rows of fast checks may wait for a batch; while writes fail, the rows wait between short
        attempts so that the checks keep their rhythm. `ahead`: the write that goes before a
        breaker call, one short attempt."""
        batch = rows if self._unrecorded is None else self._unrecorded.merged(rows)
        if batch.empty():
            return
        if batch.routine() and not flush and self._may_defer(batch) and workflow.patched(AUDIT_BATCHES_PATCH):
            # Fast checks: routine rows go in batches (history stays near 6 events per check).
            self._unrecorded = batch
            return
        failing = self.core.state.audit_failures > 0
        if failing and not flush and not self.core.audit_write_due(workflow.now()):
            self._unrecorded = batch
            return
        if failing and ahead and not self.core.audit_write_due(workflow.now()):
            self._unrecorded = batch  # known to be failing: the breakers do not wait for a probe
            return
        options = guardian_record_ahead() if ahead else guardian_record(failing)
        try:
            result = await workflow.execute_local_activity_method(
                GuardianActivities.record,
                batch,
                **(options | {"summary": "record audit"}),
            )
        except FailureError as exc:  # a failed local activity raises its own error, not ActivityError
            # Keep monitoring; the rows (idempotent) go with the next check's write.
            self._unrecorded = batch
            workflow.logger.warning("audit write failed, retrying with the next check: %s", exc.cause or exc)
            if workflow.patched(AUDIT_OUTAGE_PATCH):
                self.core.on_audit_failed(workflow.now(), str(exc.cause or exc))
                for req in self.core.take_notifications():
                    self._dispatch.notify(req)
            return
        self._unrecorded = None
        self.core.assign_ids(result)
        if self.core.state.audit_failures:
            self.core.on_audit_written(workflow.now())
            for req in self.core.take_notifications():
                self._dispatch.notify(req)

    # -- continue-as-new --------------------------------------------------------------

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        length = info.get_current_history_length()
        if not (info.is_continue_as_new_suggested() or length >= self.config.continue_as_new_after_events):
            return False
        # Prefer a moment without breaker calls in flight, within a bounded margin.
        return (
            not self._dispatch.pending_breaker_calls()
            or length >= self.config.continue_as_new_after_events + HARD_HISTORY_LIMIT_MARGIN
        )

    async def _continue_as_new(self) -> None:
        # Let update handlers finish: process whatever they queued, then wait for them.
        while self._inbox or not workflow.all_handlers_finished():
            if self._inbox:
                await self._step(False)
            else:
                await workflow.wait_condition(lambda: bool(self._inbox) or workflow.all_handlers_finished())
        # A new run starts with the memo of the first run's start unless given one: hand on
        # the current configuration's hash.
        memo = self._memo() if workflow.patched(CONFIG_MEMO_PATCH) else None
        workflow.continue_as_new(
            GuardianInput(
                config=self.config,
                state=self.core.state,
                inbox=[to_carry(c) for c in self._inbox],  # (the loop above empties it; a signal could refill it)
                breaker_queue=self._dispatch.pending_breaker_calls(),
                notifications=list(self._dispatch.notifications.values()),
                unrecorded=self._unrecorded,
                runs=self._runs + 1,
            ),
            memo=memo,
            # Explicit (the server would keep the old run's): a guardian started with another
            # timeout takes this one from its next run on (docs/fleet.md).
            task_timeout=GUARDIAN_TASK_TIMEOUT,
        )

    # -- signals and updates ----------------------------------------------------------
    # Every payload is taken raw and decoded by `_arrive`: one that cannot be decoded is audited
    # (a rejection, an invalid reading, a refused configuration) instead of being dropped.

    def _arrive(self, kind: CommandKind, raw: RawValue, via: str) -> Command | None:
        value, undecodable = decode(raw)
        if undecodable is not None and not workflow.patched(UNDECODABLE_PATCH):
            return None  # before the patch the data converter dropped such a payload
        if undecodable is None and not self._decodable_before(kind, value):
            return None
        cmd = Command(kind, value, via, undecodable=undecodable)
        self._inbox.append(cmd)
        return cmd

    def _decodable_before(self, kind: CommandKind, value: Any) -> bool:
        """Whether the data converter of runs from before raw payloads took this payload (it
        dropped what its type hint refused); new runs take every payload and audit it."""
        try:
            if kind == "reading" and not workflow.patched(UNDECODABLE_PATCH):
                ReadingPayload.model_validate(value)
            elif kind == "configure" and not workflow.patched(CONFIGURE_GUARD_PATCH):
                GuardianConfig.model_validate(value)
            elif kind in ("pause", "resume") and not isinstance(value, dict):
                return workflow.patched(ADMIN_EIP712_PATCH)
        except ValidationError:
            return False
        return True

    @workflow.signal(name=READING_SIGNAL)
    def reading_signal(self, payload: RawValue) -> None:
        """A pushed tracker reading (`ReadingPayload`): checked at once, cutting the current sleep
        short. One that is not a valid reading is audited as an invalid reading."""
        self._arrive("reading", payload, "signal")

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause_signal(self, req: RawValue) -> None:
        """Signed manual pause (CLI), body as `PauseInput`. Any rejection, a malformed or
        undecodable body included, leaves one `admin_rejected` event."""
        self._arrive("pause", req, "signal")

    @workflow.signal(name=RESUME_SIGNAL)
    def resume_signal(self, req: RawValue) -> None:
        """Signed resume (CLI), body as `ResumeInput`. Any rejection leaves one `admin_rejected` event."""
        self._arrive("resume", req, "signal")

    @workflow.signal(name=FORENSIC_AUDIT_SIGNAL)
    def forensic_audit_signal(self, req: RawValue) -> None:
        """Signed completion of the forensic audit, body as `ForensicAuditInput`."""
        self._arrive("forensic_audit", req, "signal")

    @workflow.signal(name=CONFIGURE_SIGNAL)
    def configure_signal(self, config: RawValue) -> None:
        """New configuration from repo-spec (`GuardianConfigureInput`, sent by the reconciler when
        its hash differs). Anything else is refused and audited; nothing is applied in part."""
        self._arrive("configure", config, "signal")

    async def _run_update(self, kind: CommandKind, payload: RawValue) -> Any:
        cmd = self._arrive(kind, payload, "update")
        if cmd is None:  # (runs from before raw payloads: the data converter refused it)
            raise ApplicationError("the body cannot be decoded", "malformed", type="AdminRejected", non_retryable=True)
        await workflow.wait_condition(lambda: cmd.done)
        if cmd.error is not None:
            raise ApplicationError(cmd.error.message, cmd.error.code, type="AdminRejected", non_retryable=True)
        return cmd.result

    @workflow.update(name=PAUSE_UPDATE)
    async def pause_update(self, req: RawValue) -> PauseResult:
        """Signed manual pause. Fails with the reason (`AdminRejected`, the code as details) when
        rejected, and audits it."""
        return await self._run_update("pause", req)

    @pause_update.validator
    def _validate_pause(self, req: RawValue) -> None:
        self._validate_admin_request()

    @workflow.update(name=RESUME_UPDATE)
    async def resume_update(self, req: RawValue) -> ResumeResult:
        """Signed resume. Fails with the reason when rejected (and audits it)."""
        return await self._run_update("resume", req)

    @resume_update.validator
    def _validate_resume(self, req: RawValue) -> None:
        self._validate_admin_request()

    @workflow.update(name=FORENSIC_AUDIT_UPDATE)
    async def forensic_audit_update(self, req: RawValue) -> ForensicAuditResult:
        """Signed completion of the forensic audit. Fails with the reason when rejected (audited)."""
        return await self._run_update("forensic_audit", req)

    @forensic_audit_update.validator
    def _validate_forensic_audit(self, req: RawValue) -> None:
        self._validate_admin_request()

    def _validate_admin_request(self) -> None:
        # Capacity only: every body problem and every signature is checked (and a rejection
        # audited) in order by the main loop, so that signal, update and HTTP answer alike.
        if sum(1 for c in self._inbox if c.via == "update") >= MAX_IN_FLIGHT_UPDATES:
            raise ValueError("too many admin actions in flight; retry in a moment")

    # -- queries ----------------------------------------------------------------------

    @workflow.query(name=CONFIG_QUERY)
    def config_query(self, input: StatusQueryInput | None = None) -> GuardianConfig:
        return self.config

    @workflow.query(name=STATUS_QUERY)
    def status(self, input: StatusQueryInput | None = None) -> GuardianStatus:
        return self.core.status()

    @workflow.query(name=GOVERNANCE_QUERY)
    def governance(self, input: StatusQueryInput | None = None) -> GovernanceResult:
        return self.core.governance()

    @workflow.query(name=ALERTS_QUERY)
    def alerts(self, input: AlertsQueryInput | None = None) -> AlertsResult:
        return self.core.alerts((input or AlertsQueryInput()).limit)

    @workflow.query(name=EVENTS_QUERY)
    def events(self, input: EventsQueryInput | None = None) -> EventsResult:
        return self.core.events((input or EventsQueryInput()).limit)

    @workflow.query(name=RULES_QUERY)
    def rules(self, input: StatusQueryInput | None = None) -> RulesResult:
        return self.core.rules_view()

    @workflow.query(name=STATS_QUERY)
    def stats(self, input: StatusQueryInput | None = None) -> StatsResult:
        unrecorded = self._unrecorded
        return StatsResult(
            checks=self.core.state.checks,
            runs=self._runs,
            history_length=workflow.info().get_current_history_length(),
            pending_breaker_calls=len(self._dispatch.pending_breaker_calls()),
            pending_notifications=len(self._dispatch.notifications),
            unrecorded_rows=0 if unrecorded is None else len(unrecorded.events) + len(unrecorded.alerts_opened),
            used_nonces=len(self.core.state.used_nonces),
            audit_failures=self.core.state.audit_failures,
            state_bytes=len(self.core.state.model_dump_json()),
        )
