"""What keeps refused admin requests cheap, whatever signed them (see docs/admin-actions.md,
"Over HTTP", and docs/security.md, "Admin actions"):

- a rate limit on *refused* admin requests (a token bucket: `burst` refusals at once, then
  `per_second`), kept per client address and, for a request whose signatures verify, per signer
  too. A refusal from an address or by a signer over its limit is answered 429 with
  `Retry-After`; a request whose action is carried out is never limited, so a flood (from one
  address, from the proxy in front of everyone, or replaying one admin's body) never locks a real
  admin out;
- the refusals audited in aggregate: one counter per (guardian, source address, minute, action,
  code), written to the database every few seconds by the API (table `admin_rejections`), never one
  row per request. Per guardian and minute, the first `sources_per_minute` addresses get rows of
  their own; the others are counted together under the source `*`, with how many distinct
  addresses that row counts (`sources`);
- the refusals the guardian gave, kept until their signatures expire, keyed by the request
  (action, guardian, reason and signature tokens): the same request again is answered here,
  with the same status and body, without reaching the guardian;
- the nonces of actions the guardian accepted, so that a replayed body is refused here instead
  of reaching the guardian again; a nonce is held while its action is in flight.

Every structure is bounded: at most `max_sources` buckets (the least recently used are forgotten
first), at most `max_pending` counters waiting for the next write (the rest are counted under `*`),
at most `max_refusals` remembered refusals, and per minute at most `sources_per_minute` admitted
addresses per guardian and `max_sources` addresses told apart in the `*` rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from govfleet.store.guardian import AdminRejections as Rejections

WINDOW_SECONDS = 60  # one audit row per source, action and code per minute
SAMPLE_CHARS = 200  # of the first rejection message of a window
OTHER_SOURCE = "*"  # the row of the addresses past `sources_per_minute` (and past `max_pending`)
SOURCES_PER_MINUTE = 20


@dataclass(frozen=True)
class Refusal:
    """A refusal the guardian gave, as it was answered, and who signed the refused request."""

    status: int
    code: str
    message: str
    details: Any
    signers: tuple[str, ...]
    expires_at: datetime  # the earliest expiry of its signatures: after it, the request is refused as expired


def refusal_key(action: str, guardian_id: str, fields: dict[str, Any]) -> str:
    """What identifies a request: its action, guardian and every field the signatures cover or
    that the guardian reads (reason, tokens, the governance approval)."""
    canonical = json.dumps([action, guardian_id, fields], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def signer_key(signer: str) -> str:
    return f"signer {signer}"


class AdminGate:
    def __init__(
        self,
        *,
        burst: int = 10,
        per_second: float = 1.0,
        max_sources: int = 10_000,
        max_pending: int = 10_000,
        max_refusals: int = 10_000,
        sources_per_minute: int = SOURCES_PER_MINUTE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_sources = max_sources
        self.max_pending = max_pending
        self.max_refusals = max_refusals
        self.sources_per_minute = sources_per_minute
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._pending: dict[tuple[str, str, datetime, str, str], Rejections] = {}
        self._window: datetime | None = None  # the minute the two sets below are about
        self._admitted: dict[str, set[str]] = {}  # guardian -> addresses with rows of their own
        self._folded: set[tuple[str, str, str, str]] = set()  # (guardian, action, code, address) under `*`
        self._refusals: OrderedDict[str, Refusal] = OrderedDict()
        self._used: dict[str, datetime] = {}  # nonce -> expiry, of actions the guardian accepted
        self._in_flight: set[str] = set()

    # -- rate limit ---------------------------------------------------------------------

    def _tokens(self, key: str) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), self._monotonic()))
        return min(float(self.burst), tokens + (self._monotonic() - at) * self.per_second)

    def retry_after(self, *keys: str) -> int | None:
        """Seconds until every one of `keys` (a source address, `signer_key(...)`) may be refused
        with a 4xx again; None while all are within their limits."""
        waits = [(1 - tokens) / self.per_second for tokens in map(self._tokens, keys) if tokens < 1]
        return max(1, math.ceil(max(waits))) if waits else None

    def limited_key(self, *keys: str) -> str | None:
        """The first of `keys` over its limit, if any (to say who is limited)."""
        return next((k for k in keys if self._tokens(k) < 1), None)

    def _charge(self, keys: Iterable[str]) -> None:
        for key in keys:
            tokens = self._tokens(key)
            self._buckets[key] = (max(0.0, tokens - 1), self._monotonic())
            self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)

    # -- aggregated audit ---------------------------------------------------------------

    def _shown_source(self, guardian_id: str, source: str, window: datetime) -> str:
        """`source`, or `*` when this minute already has `sources_per_minute` addresses."""
        if self._window is None or window > self._window:
            self._window, self._admitted, self._folded = window, {}, set()
        admitted = self._admitted.setdefault(guardian_id, set())
        if source in admitted:
            return source
        if len(admitted) < self.sources_per_minute:
            admitted.add(source)
            return source
        return OTHER_SOURCE

    def reject(
        self,
        *,
        guardian_id: str,
        source: str,
        action: str,
        code: str,
        message: str,
        now: datetime,
        limited: bool,
        signers: Iterable[str] = (),
    ) -> None:
        """Count one refused request (and charge its source's and signers' buckets)."""
        self._charge([source, *map(signer_key, signers)])
        now = now.astimezone(UTC)
        window = datetime.fromtimestamp(now.timestamp() // WINDOW_SECONDS * WINDOW_SECONDS, UTC)
        shown = self._shown_source(guardian_id, source, window)
        key = (guardian_id, shown, window, action, code)
        if key not in self._pending and len(self._pending) >= self.max_pending:
            key = (guardian_id, OTHER_SOURCE, window, action, code)
        new_address = 1
        if key[1] == OTHER_SOURCE:  # counted once per address, action and code in a minute
            folded = (guardian_id, action, code, source)
            new_address = int(folded not in self._folded and len(self._folded) < self.max_sources)
            if new_address:
                self._folded.add(folded)
        row = self._pending.get(key)
        if row is None:
            self._pending[key] = Rejections(
                guardian_id=guardian_id,
                source=key[1],
                window_start=window,
                action=action,
                code=code,
                count=1,
                limited=int(limited),
                first_at=now,
                last_at=now,
                sample=message[:SAMPLE_CHARS],
                sources=new_address,
            )
        else:
            row.count += 1
            row.limited += int(limited)
            row.last_at = now
            if key[1] == OTHER_SOURCE:
                row.sources += new_address

    def take(self) -> list[Rejections]:
        """The counters gathered since the last call (to be written)."""
        rows, self._pending = list(self._pending.values()), {}
        return rows

    def put_back(self, rows: Iterable[Rejections]) -> None:
        """Counters whose write failed: merged back, to be written with the next ones."""
        for row in rows:
            key = (row.guardian_id, row.source, row.window_start, row.action, row.code)
            mine = self._pending.get(key)
            if mine is None:
                if len(self._pending) < self.max_pending:
                    self._pending[key] = row
                continue
            mine.count += row.count
            mine.limited += row.limited
            mine.first_at = min(mine.first_at, row.first_at)
            mine.sample = row.sample
            if row.source == OTHER_SOURCE:
                mine.sources += row.sources

    # -- refusals the guardian gave -----------------------------------------------------

    def refusal_for(self, key: str, now: datetime) -> Refusal | None:
        """The guardian's refusal of this very request, while its signatures are valid."""
        refusal = self._refusals.get(key)
        if refusal is not None and refusal.expires_at <= now:
            del self._refusals[key]
            return None
        return refusal

    def remember_refusal(self, key: str, refusal: Refusal, now: datetime) -> None:
        self._refusals[key] = refusal
        self._refusals.move_to_end(key)
        if len(self._refusals) > self.max_refusals:
            for old in [k for k, r in self._refusals.items() if r.expires_at <= now]:
                del self._refusals[old]
        while len(self._refusals) > self.max_refusals:
            self._refusals.popitem(last=False)

    # -- nonces -------------------------------------------------------------------------

    def replayed(self, nonces: Iterable[str], now: datetime) -> str | None:
        """The first nonce already used by an accepted action, or in flight right now."""
        self._used = {n: e for n, e in self._used.items() if e > now}
        for n in nonces:
            if n in self._used or n in self._in_flight:
                return n
        return None

    def hold(self, nonces: Iterable[str]) -> None:
        self._in_flight.update(nonces)

    def release(self, nonces: dict[str, datetime], *, used: bool) -> None:
        """The action carrying `nonces` ({nonce: expiry}) is over; `used` when it was accepted."""
        self._in_flight.difference_update(nonces)
        if used:
            self._used.update(nonces)
