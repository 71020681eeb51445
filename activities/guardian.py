"""The guardian's adapters: the tracker (HTTP), the audit tables (PostgreSQL), the
breaker targets (HTTP). Every write carries an idempotency key, so a retried or
replayed activity never writes a row twice or pauses a target twice.

- `guardian_fetch_reading`: `GET {tracker}/voting/governance`, validated by the pure
  `validate_reading`; any problem is returned as a typed `TrackerFailure` (never
  raised), so a bad reading is one small result in history, not a retry storm.
- `guardian_record`: one transaction per check with the check event and whatever
  crossing, alert, resolution and pause rows it produced (`ON CONFLICT` on their
  idempotency keys); returns the database ids.
- `guardian_call_breaker`: `POST {target}/admin/pause|resume` with the JSON body and
  the `Idempotency-Key` header `<guardian workflow id>:<pause id>`; a non-2xx answer
  raises so that Temporal retries it (it heartbeats while the target takes long to answer); a
  2xx is recorded in `breaker_acks` (best effort).
- `guardian_probe_breaker`: `GET {target}/admin/status`, read-only, when the guardian enters
  warning: does the target answer? What is wrong is returned, never raised.
- `guardian_restore`: the open alerts, active pauses, recent unacknowledged resumes, the open
  forensic audit and unexpired admin nonces of a guardian id, for a guardian started afresh
  (after a terminate).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from govfleet.contracts.guardian import (
    CALL_BREAKER_ACTIVITY,
    FETCH_READING_ACTIVITY,
    PROBE_BREAKER_ACTIVITY,
    RECORD_ACTIVITY,
    RESTORE_ACTIVITY,
    BreakerCall,
    BreakerCallResult,
    BreakerProbe,
    BreakerProbeResult,
    FetchReadingInput,
    FetchReadingResult,
    RecordBatch,
    RecordResult,
    RestoreInput,
    RestoreResult,
)
from govfleet.domain.guardian.readings import InvalidReading, TrackerFailure, validate_reading
from govfleet.domain.secret_ref import resolve_secret
from govfleet.domain.timestamps import iso_utc
from govfleet.logging import get_logger
from govfleet.store import guardian as guardian_store
from workers.resources import Resources

POOL_TIMEOUT_SECONDS = 5.0
HEARTBEAT_EVERY_SECONDS = 0.5  # well within the breaker call's heartbeat timeout (workflows/activity_options.py)
T = TypeVar("T")


async def _heartbeating(call: Awaitable[T]) -> T:
    """Await `call`, heartbeating while it takes long: a worker that dies meanwhile stops the
    heartbeats, and the attempt is retried elsewhere after the heartbeat timeout (a call that
    answers within `HEARTBEAT_EVERY_SECONDS` sends none)."""
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()  # the activity was cancelled: so is the call (a no-op once it is done)


PROBE_TIMEOUT_SECONDS = 5.0
ACK_TIMEOUT_SECONDS = 2.0  # the acknowledgement is best effort: the call itself already landed

log = get_logger("govfleet.guardian")


def _auth_headers(target: str, token_ref: str | None) -> dict[str, str]:
    """`Authorization: Bearer` for a target with a token reference, read from the worker's environment."""
    if not token_ref:
        return {}
    token = resolve_secret(token_ref, os.environ)
    if not token:
        raise ApplicationError(f"breaker target {target}: token {token_ref} is not set in the worker's environment")
    return {"Authorization": f"Bearer {token}"}


def _failure(code: str, message: str) -> FetchReadingResult:
    return FetchReadingResult(failure=TrackerFailure(code=code, message=message))


class GuardianActivities:
    def __init__(self, resources: Resources):
        self._r = resources

    @activity.defn(name=FETCH_READING_ACTIVITY)
    async def fetch_reading(self, req: FetchReadingInput) -> FetchReadingResult:
        url = req.url.rstrip("/") + "/voting/governance"
        try:
            resp = await self._r.http.get(url, timeout=req.timeout_seconds)
        except httpx.TimeoutException:
            return _failure("unreachable", f"GET {url} timed out after {req.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return _failure("unreachable", f"GET {url} failed: {type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            return _failure("http_error", f"GET {url} answered {resp.status_code}: {resp.text[:200]}")
        try:
            raw = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return _failure("not_json", f"GET {url} answered a body that is not JSON: {resp.text[:120]!r}")
        try:
            reading = validate_reading(raw, now=datetime.now(UTC), staleness_seconds=req.staleness_seconds)
        except InvalidReading as exc:
            return _failure(exc.code, exc.message)
        return FetchReadingResult(reading=reading)

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, batch: RecordBatch) -> RecordResult:
        return await guardian_store.record_batch(self._r.pool, batch, timeout=POOL_TIMEOUT_SECONDS)

    @activity.defn(name=RESTORE_ACTIVITY)
    async def restore(self, req: RestoreInput) -> RestoreResult:
        return await guardian_store.restore_snapshot(
            self._r.pool, req.guardian_id, req.now, timeout=POOL_TIMEOUT_SECONDS
        )

    @activity.defn(name=PROBE_BREAKER_ACTIVITY)
    async def probe_breaker(self, probe: BreakerProbe) -> BreakerProbeResult:
        """`GET {target}/admin/status`: does the target answer (2xx)? Read-only; what is wrong is
        returned, not raised (docs/guardian.md, "Breakers")."""
        url = probe.url.rstrip("/") + "/admin/status"
        try:
            headers = _auth_headers(probe.target, probe.token_ref)
            resp = await self._r.http.get(url, headers=headers, timeout=PROBE_TIMEOUT_SECONDS)
        except ApplicationError as exc:
            return BreakerProbeResult(target=probe.target, error=exc.message)
        except httpx.HTTPError as exc:
            return BreakerProbeResult(target=probe.target, error=f"GET {url} failed: {type(exc).__name__}: {exc}"[:300])
        if not 200 <= resp.status_code < 300:
            return BreakerProbeResult(target=probe.target, error=f"GET {url} answered {resp.status_code}")
        return BreakerProbeResult(target=probe.target)

    @activity.defn(name=CALL_BREAKER_ACTIVITY)
    async def call_breaker(self, call: BreakerCall) -> BreakerCallResult:
        url = call.url.rstrip("/") + f"/admin/{call.action}"
        headers = {"Idempotency-Key": call.idempotency_key, **_auth_headers(call.target, call.token_ref)}
        body = {
            "idempotency_key": call.idempotency_key,
            "action": call.action,
            "service": call.target,
            "scope": call.scope,
            "reason": call.reason,
            "guardian_id": call.guardian_id,
            "holder_control": call.holder_control,
            "requested_at": iso_utc(call.requested_at),
        }
        try:
            resp = await _heartbeating(self._r.http.post(url, json=body, headers=headers, timeout=10.0))
        except httpx.HTTPError as exc:
            raise ApplicationError(f"POST {url} ({call.target}) failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= resp.status_code < 300:
            raise ApplicationError(f"POST {url} ({call.target}) answered {resp.status_code}: {resp.text[:200]}")
        duplicate = None
        try:
            data = resp.json()
            if isinstance(data, dict) and isinstance(data.get("duplicate"), bool):
                duplicate = data["duplicate"]
        except ValueError:
            pass
        activity.logger.info("breaker %s %s acknowledged (key %s)", call.target, call.action, call.idempotency_key)
        try:
            await guardian_store.record_breaker_ack(
                self._r.pool, call.idempotency_key, call.target, call.action, timeout=ACK_TIMEOUT_SECONDS
            )
        except Exception as exc:  # never repeat a call that landed for want of its receipt
            log.warning("breaker acknowledgement not recorded", key=call.idempotency_key, error=str(exc)[:200])
        return BreakerCallResult(
            target=call.target, action=call.action, status_code=resp.status_code, duplicate=duplicate
        )
