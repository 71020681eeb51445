"""The guardian's surroundings, scripted, for the workflow tier: tracker, audit tables, breaker
targets, notification channels and the restore read (`Outside`), and the `guardian` fixture
(in conftest.py) that starts a guardian among them."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from activities.guardian import (
    CALL_BREAKER_ACTIVITY,
    FETCH_READING_ACTIVITY,
    PROBE_BREAKER_ACTIVITY,
    RECORD_ACTIVITY,
    RESTORE_ACTIVITY,
    BreakerCallResult,
    BreakerProbe,
    BreakerProbeResult,
)
from govfleet.contracts.notifications import SEND_NOTIFICATION_ACTIVITY
from govfleet.domain.guardian.models import (
    BreakerCall,
    GuardianConfig,
    RecordBatch,
    RecordResult,
    RestoreInput,
    RestoreResult,
)
from govfleet.domain.guardian.readings import FetchReadingInput, FetchReadingResult, Reading
from govfleet.domain.notifications import NotificationRequest
from govfleet.repo_spec import BreakerTarget
from tests.workflows.doubles import Calls
from workflows.guardian import GuardianWorkflow

TARGETS = [
    BreakerTarget(name="redemption-algorithm", url="http://redemptions.test", scope="redemptions"),
    BreakerTarget(name="sol-treasury-core", url="http://treasury.test", scope="everything"),
]


def reading(h: float) -> Reading:
    total = 10_000
    return Reading(
        holder_control_percentage=h,
        total_votes=total,
        holder_votes=round(h * 100),
        seller_votes=total - round(h * 100),
        last_updated=datetime.now(UTC),
    )


class Outside:
    """Tracker, audit tables, breaker targets and notification channels, scripted."""

    def __init__(self, value: float = 70.0):
        self.calls = Calls()
        self.value: float | None = value  # None: the tracker cannot be reached
        self.database_down = False
        self.written: list[RecordBatch] = []
        self.breaker_calls: list[tuple[BreakerCall, bool]] = []  # (call, database down at the time)
        self.notifications: dict[str, NotificationRequest] = {}  # by idempotency key (at least once)
        self.recorded = RestoreResult()  # what the database holds for a guardian started afresh
        self.down: set[str] = set()  # breaker targets whose probe fails
        self._ids = 0

    @activity.defn(name=RESTORE_ACTIVITY)
    async def restore(self, req: RestoreInput) -> RestoreResult:
        self.calls.add(RESTORE_ACTIVITY, req)
        if self.database_down:
            raise ApplicationError("PoolTimeout: couldn't get a connection after 5.00 sec")
        return self.recorded

    @activity.defn(name=FETCH_READING_ACTIVITY)
    async def fetch_reading(self, req: FetchReadingInput) -> FetchReadingResult:
        self.calls.add(FETCH_READING_ACTIVITY, req)
        if self.value is None:
            raise ApplicationError(f"GET {req.url}/voting/governance failed: ConnectError")
        return FetchReadingResult(reading=reading(self.value))

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, batch: RecordBatch) -> RecordResult:
        self.calls.add(RECORD_ACTIVITY, batch)
        if self.database_down:
            raise ApplicationError("PoolTimeout: couldn't get a connection after 5.00 sec")
        self.written.append(batch)
        ids = {}
        for e in batch.events:
            self._ids += 1
            ids[e.key] = self._ids
        return RecordResult(event_ids=ids)

    @activity.defn(name=CALL_BREAKER_ACTIVITY)
    async def call_breaker(self, call: BreakerCall) -> BreakerCallResult:
        self.calls.add(CALL_BREAKER_ACTIVITY, call)
        self.breaker_calls.append((call, self.database_down))
        return BreakerCallResult(target=call.target, action=call.action, status_code=200)

    @activity.defn(name=SEND_NOTIFICATION_ACTIVITY)
    async def send_notification(self, req: NotificationRequest) -> None:
        self.notifications.setdefault(req.idempotency_key, req)

    @activity.defn(name=PROBE_BREAKER_ACTIVITY)
    async def probe_breaker(self, probe: BreakerProbe) -> BreakerProbeResult:
        self.calls.add(PROBE_BREAKER_ACTIVITY, probe)
        return BreakerProbeResult(target=probe.target, error="target down" if probe.target in self.down else None)

    def activities(self) -> list:
        return [
            self.fetch_reading,
            self.record,
            self.call_breaker,
            self.probe_breaker,
            self.send_notification,
            self.restore,
        ]

    # -- what was written --------------------------------------------------------------

    def events(self, event_type: str | None = None) -> list:
        return [e for b in self.written for e in b.events if event_type is None or e.event_type == event_type]

    def kinds(self) -> list[str]:
        return [n.kind for n in self.notifications.values()]


def config(guardian_id: str, **overrides) -> GuardianConfig:
    data = dict(
        guardian_id=guardian_id,
        tracker_url="http://tracker.test",
        breakers=TARGETS,
        upsert_search_attributes=False,
        audit_failures_before_alert=2,
    )
    data.update(overrides)
    return GuardianConfig(**data)


async def stats(handle):
    return await handle.query(GuardianWorkflow.stats)


async def running(handle) -> bool:
    return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
