"""What keeps forged admin requests cheap (see docs/admin-actions.md, "Over HTTP"):

- a per-client-address rate limit on *rejected* admin requests (a token bucket: `burst`
  rejections at once, then `per_second`). An address over its limit gets 429 with `Retry-After`
  for every request that does not verify; a request whose signatures verify always goes
  through, so a flood from an address (or from the proxy in front of everyone) never locks a
  real admin out;
- the rejections audited in aggregate: one counter per (guardian, source address, minute,
  action, code), written to the database every few seconds by the API (table
  `admin_rejections`), never one row per request;
- the nonces of actions the guardian accepted, so that a replayed body is refused here instead
  of reaching the guardian again; a nonce is held while its action is in flight.

Every structure is bounded: at most `max_sources` addresses are tracked (the least recently
seen are forgotten first), and at most `max_pending` counters wait for the next write (the
rest are counted under the source `*`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from govfleet.store.guardian import AdminRejections as Rejections

WINDOW_SECONDS = 60  # one audit row per source, action and code per minute
SAMPLE_CHARS = 200  # of the first rejection message of a window
OTHER_SOURCE = "*"


class AdminGate:
    def __init__(
        self,
        *,
        burst: int = 10,
        per_second: float = 1.0,
        max_sources: int = 10_000,
        max_pending: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_sources = max_sources
        self.max_pending = max_pending
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # source -> (tokens, at)
        self._pending: dict[tuple[str, str, datetime, str, str], Rejections] = {}
        self._used: dict[str, datetime] = {}  # nonce -> expiry, of actions the guardian accepted
        self._in_flight: set[str] = set()

    # -- rate limit ---------------------------------------------------------------------

    def _tokens(self, source: str) -> float:
        tokens, at = self._buckets.get(source, (float(self.burst), self._monotonic()))
        return min(float(self.burst), tokens + (self._monotonic() - at) * self.per_second)

    def retry_after(self, source: str) -> int | None:
        """Seconds until `source` may be refused with a 4xx again; None while it is within its limit."""
        tokens = self._tokens(source)
        if tokens >= 1:
            return None
        return max(1, math.ceil((1 - tokens) / self.per_second))

    def _charge(self, source: str) -> None:
        tokens = self._tokens(source)
        self._buckets[source] = (max(0.0, tokens - 1), self._monotonic())
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)

    # -- aggregated audit ---------------------------------------------------------------

    def reject(
        self, *, guardian_id: str, source: str, action: str, code: str, message: str, now: datetime, limited: bool
    ) -> None:
        """Count one rejected request (and charge its source's bucket)."""
        self._charge(source)
        now = now.astimezone(UTC)
        window = datetime.fromtimestamp(now.timestamp() // WINDOW_SECONDS * WINDOW_SECONDS, UTC)
        key = (guardian_id, source, window, action, code)
        if key not in self._pending and len(self._pending) >= self.max_pending:
            key = (guardian_id, OTHER_SOURCE, window, action, code)
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
            )
        else:
            row.count += 1
            row.limited += int(limited)
            row.last_at = now

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
