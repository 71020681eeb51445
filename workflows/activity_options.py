"""Timeouts and retry policies of every activity call, as named presets.

Each preset keeps the values its call has always used: changing one changes how a workflow
behaves under failure (how long a check may wait for the tracker, how often a breaker call is
retried, when a heartbeat gives up), so it is a behaviour change, reviewed as one.
Summaries stay at the call site (they name the call).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig, LocalActivityConfig

from govfleet.contracts.payment import NON_RETRYABLE_TYPES

# --- retry policies --------------------------------------------------------------------

# Database work that must happen: retried until the schedule-to-close timeout.
DB_RETRY_UNTIL_DEADLINE = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)
# Database reads and writes of a heartbeat: a few attempts, then the heartbeat says what failed.
DB_RETRY_FEW = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
)
# Best-effort side steps (sink, notifications, status): three attempts.
SIDE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)
BEST_EFFORT_RETRY = RetryPolicy(maximum_attempts=2)

# --- guardian --------------------------------------------------------------------------

# Breaker calls: retried without limit (a target that is down must still be paused), in order.
# The call heartbeats while it waits for the target, so an attempt on a worker that died is
# retried on another within the heartbeat timeout instead of the start-to-close timeout.
BREAKER_HEARTBEAT_TIMEOUT = timedelta(seconds=2)
BREAKER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=60)
)
GUARDIAN_BREAKER_CALL = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=15),
    heartbeat_timeout=BREAKER_HEARTBEAT_TIMEOUT,
    retry_policy=BREAKER_RETRY,
)
# The first try of a breaker call: retried for this long, then the guardian alerts that the target
# does not answer and goes on calling it without limit (docs/guardian.md, "Breakers").
BREAKER_ALERT_AFTER = timedelta(seconds=60)
GUARDIAN_BREAKER_CALL_FIRST = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=15),
    schedule_to_close_timeout=BREAKER_ALERT_AFTER,
    heartbeat_timeout=BREAKER_HEARTBEAT_TIMEOUT,
    retry_policy=BREAKER_RETRY,
)
# A read-only probe of a breaker target when the guardian enters warning: two quick tries.
GUARDIAN_BREAKER_PROBE = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=1)),
)
GUARDIAN_NOTIFICATION = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=60)
    ),
)
AUDIT_PROBE_SECONDS = 3  # while audit writes fail, one attempt of at most this long per retry


def guardian_fetch(tracker_timeout_seconds: float) -> LocalActivityConfig:
    """One attempt: a failed reading is a result of the check, the next check tries again."""
    return LocalActivityConfig(
        start_to_close_timeout=timedelta(seconds=tracker_timeout_seconds + 3),
        retry_policy=RetryPolicy(maximum_attempts=1),
    )


def guardian_restore(timeout_seconds: float) -> LocalActivityConfig:
    """A guardian started afresh reads its recorded state back, retried for `timeout_seconds`;
    then it monitors without it (and says so) rather than not at all."""
    # Attempts counted from the backoff (0.5 s doubling to 5 s): the local activity's own
    # schedule-to-close does not stop its in-worker retries.
    attempts, waited, delay = 1, 0.0, 0.5
    while waited + delay < timeout_seconds:
        attempts, waited, delay = attempts + 1, waited + delay, min(delay * 2, 5.0)
    return LocalActivityConfig(
        start_to_close_timeout=timedelta(seconds=min(10.0, timeout_seconds)),
        schedule_to_close_timeout=timedelta(seconds=timeout_seconds),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(milliseconds=500),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=5),
            maximum_attempts=attempts,
        ),
    )


def guardian_record(failing: bool) -> LocalActivityConfig:
    """The audit write of a check: two tries, or one short probe while writes keep failing."""
    return LocalActivityConfig(
        start_to_close_timeout=timedelta(seconds=AUDIT_PROBE_SECONDS if failing else 10),
        retry_policy=RetryPolicy(maximum_attempts=1 if failing else 2, initial_interval=timedelta(milliseconds=500)),
    )


RECORD_AHEAD_SECONDS = 2  # the write before a breaker call: one attempt, then the call goes out anyway


def guardian_record_ahead() -> LocalActivityConfig:
    """The audit write that goes before a pause's or resume's breaker calls: one short attempt, so
    that PostgreSQL being down delays a pause by at most this long (docs/guardian.md)."""
    return LocalActivityConfig(
        start_to_close_timeout=timedelta(seconds=RECORD_AHEAD_SECONDS),
        retry_policy=RetryPolicy(maximum_attempts=1),
    )


# --- heartbeat -------------------------------------------------------------------------

HEARTBEAT_DB = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=20),
    schedule_to_close_timeout=timedelta(minutes=1),
    retry_policy=DB_RETRY_FEW,
)
HEARTBEAT_SINK = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=15),
    schedule_to_close_timeout=timedelta(minutes=1),
    retry_policy=SIDE_RETRY,
)
HEARTBEAT_NOTIFICATION = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=20),
    schedule_to_close_timeout=timedelta(seconds=45),
    retry_policy=SIDE_RETRY,
)
# Re-sending pending urgent notices: one attempt (each notice waits for its own next try, and the
# next heartbeat comes anyway); a few notices, each channel bounded by its own timeout.
HEARTBEAT_RESEND = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=120),
    retry_policy=RetryPolicy(maximum_attempts=1),
)
HEARTBEAT_STATUS = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(seconds=20),
    retry_policy=SIDE_RETRY,
)

# --- governance run --------------------------------------------------------------------

RUN_DB = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=DB_RETRY_UNTIL_DEADLINE,
)
RUN_STATUS = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(seconds=20),
    retry_policy=BEST_EFFORT_RETRY,
)
# Telling the admins a run was refused: best effort within the run (a pending urgent notice is
# re-sent by the heartbeat).
RUN_NOTIFICATION = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=20),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=SIDE_RETRY,
)
ENTRYPOINT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
)


def run_entrypoint(timeout: timedelta) -> ActivityConfig:
    """An entrypoint: its own start-to-close timeout, three attempts."""
    return ActivityConfig(start_to_close_timeout=timeout, retry_policy=ENTRYPOINT_RETRY)


# --- payment ---------------------------------------------------------------------------

# The confirmation transaction, as a local activity: retried without limit (200 ms doubling to
# 10 s) except for the refusals; each attempt at most 60 s.
PAYMENT_CONFIRM = LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=list(NON_RETRYABLE_TYPES),
    ),
)
PAYMENT_STATUS = LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=2)),
)

# --- status ----------------------------------------------------------------------------

STATUS_READ = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=3
    ),
)


# --- watchdog --------------------------------------------------------------------------

# One look: its describes and the heartbeat read are bounded; a failed look waits for the next one.
WATCHDOG_INSPECT = LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=15), retry_policy=RetryPolicy(maximum_attempts=1)
)
# Incident rows: retried for a while (the database may be what is down), then logged.
WATCHDOG_RECORD = ActivityConfig(
    start_to_close_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(minutes=15),
    retry_policy=DB_RETRY_UNTIL_DEADLINE,
)
# Its notifications are retried like the guardian's.
WATCHDOG_NOTIFICATION = GUARDIAN_NOTIFICATION
