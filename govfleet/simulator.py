"""Tracker simulator: a real HTTP server on loopback that plays the voting-weight tracker
and the breaker targets, for the demo (`govfleet tracker-sim`, `govfleet up`), the tests
and the benchmarks.

Serves
- `GET /voting/governance`: the tracker's reading (`holder_control_percentage`,
  `total_votes`, `holder_votes`, `seller_votes`, `last_updated`) following a scenario;
- `GET /admin/status`: the breaker targets' read-only probe (`POST /sim/fail` with action
  `status` makes it fail);
- `POST /admin/pause`, `POST /admin/resume`: breaker targets (every target of the
  repo-spec may point here; the body's `service` names the target). Every call is
  recorded; a repeated idempotency key is acknowledged as a duplicate and not applied
  again. A call without `idempotency_key` is refused (400).
- a control API: `GET /sim/state`, `GET /sim/calls`, `POST /sim/reading`
  (`{"holder_control_percentage": 48.0}` or `{"values": [...], "per_request": true}`),
  `POST /sim/scenario` (`{"scenario": "rapid-drop", "per_request": false}`),
  `POST /sim/fail` (`{"action": "pause", "times": 2, "status": 503}`), `POST /sim/reset`.

Scenarios (`SCENARIOS`): steady, gradual-decline (70 -> 52 -> 48.5, each band of the decision
table long enough to be seen: `gradual_decline`), rapid-drop (70 then 48),
recovery (48 -> 70), oscillate (crossing the caution, warning and critical thresholds
repeatedly) and garbage (every reading invalid in a different way). Scripted values may also
be `"timeout"`: that reading is answered only after `slow_seconds` (default 5 s), longer than
any sensible tracker timeout, so the caller gives up first. A scenario advances one
step every `step_seconds` of wall-clock time, or, with `per_request`, one step per reading
served (deterministic for tests under time skipping); the last value is held.

For failover tests and benchmarks, `reading_delay_seconds` and `breaker_delay_seconds` keep a
check or a breaker call in flight for a while (a breaker call is applied on arrival, as a real
target would, and only answered late), and `reading_arrivals` notes when readings were asked for.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from govfleet.api.server import RunningApi, start_api
from govfleet.domain.guardian.levels import GuardianRules
from govfleet.domain.timestamps import iso_utc

TOTAL_VOTES = 10_000


DEFAULT_STEP_SECONDS = 8.0
# How much longer than a check interval a band of the demo's decline lasts: room for a check
# that runs late on a busy machine.
DEMO_MARGIN_SECONDS = 15.0
BAND_SPACING = Decimal("0.5")  # holder-control points between two values within a band


def _band(upper: Decimal, lower: Decimal, seconds: float, step_seconds: float) -> list[float]:
    """Values in [lower, upper), 0.5 apart from just below `upper`, each held for as many steps
    as it takes for the band to last at least `seconds`."""
    values = [upper - BAND_SPACING * i for i in range(1, int((upper - lower) / BAND_SPACING) + 1)]
    values = [v for v in values if v >= lower] or [lower]
    hold = max(1, math.ceil(math.ceil(seconds / step_seconds) / len(values)))
    return [float(v) for v in values for _ in range(hold)]


def gradual_decline(
    rules: GuardianRules | None = None,
    step_seconds: float = DEFAULT_STEP_SECONDS,
    margin_seconds: float = DEMO_MARGIN_SECONDS,
) -> list[float]:
    """The demo's decline, one value per step: 70 down to the caution threshold a point a step,
    then the caution, warning and critical bands, then below the emergency threshold (held).

    A guardian checks at the interval of its current level, so it sees a band only if the band
    lasts longer than that interval: the caution band lasts the normal interval plus
    `margin_seconds`, the warning band the caution interval plus the margin, the critical band
    the critical interval plus the margin. Whatever moment in its interval the decline starts
    at, a guardian with these rules walks normal -> caution -> warning -> critical -> emergency
    (docs/guardian.md, "The tracker simulator")."""
    r = rules or GuardianRules()
    above = [float(v) for v in range(70, math.ceil(r.caution_threshold) - 1, -1) if v >= r.caution_threshold]
    return [
        *above,
        *_band(r.caution_threshold, r.warning_threshold, r.monitoring_interval_normal + margin_seconds, step_seconds),
        *_band(r.warning_threshold, r.critical_threshold, r.monitoring_interval_caution + margin_seconds, step_seconds),
        *_band(
            r.critical_threshold, r.emergency_threshold, r.monitoring_interval_critical + margin_seconds, step_seconds
        ),
        float(r.emergency_threshold - BAND_SPACING),
    ]


def _recovery() -> list[float]:
    values = [48.0 + 0.5 * i for i in range(0, 17)]  # 48.0 .. 56.0
    return [*values, 58.0, 60.0, 62.0, 65.0, 68.0, 70.0]


SCENARIOS: dict[str, list[Any]] = {
    "steady": [70.5],
    "gradual-decline": gradual_decline(),  # for the default rules; `scenario_values` fits it to others
    "rapid-drop": [70.0, 70.0, 70.0, 48.0],
    "recovery": _recovery(),
    "oscillate": [60.0, 56.0, 54.0, 52.5, 51.5, 50.5, 51.5, 52.5, 54.0, 56.0],
    "garbage": ["out_of_range", "votes_mismatch", "stale", "not_json", "http_500", "missing_field", "string_value"],
}
CYCLIC = {"oscillate", "garbage"}
TIMEOUT = "timeout"  # a scripted value: the reading is answered only after `slow_seconds`


def scenario_values(name: str, rules: GuardianRules | None = None, step_seconds: float = DEFAULT_STEP_SECONDS) -> list:
    """A scenario's values; gradual-decline fitted to the guardian's rules and the step."""
    if name == "gradual-decline":
        return gradual_decline(rules, step_seconds)
    return list(SCENARIOS[name])


def reading_body(h: float, *, now: datetime | None = None) -> dict[str, Any]:
    """A consistent tracker reading for holder control `h` (two decimals)."""
    holder = round(h * TOTAL_VOTES / 100)
    now = now or datetime.now(UTC)
    return {
        "holder_control_percentage": holder * 100 / TOTAL_VOTES,
        "total_votes": TOTAL_VOTES,
        "holder_votes": holder,
        "seller_votes": TOTAL_VOTES - holder,
        "last_updated": iso_utc(now),
    }


def garbage_response(kind: str, now: datetime | None = None) -> tuple[int, bytes]:
    """An invalid tracker answer of the given kind: (HTTP status, body)."""
    now = now or datetime.now(UTC)
    good = reading_body(55.0, now=now)
    if kind == "out_of_range":
        body: Any = {**good, "holder_control_percentage": 140.0}
    elif kind == "votes_mismatch":
        body = {**good, "seller_votes": good["seller_votes"] + 1234}
    elif kind == "stale":
        body = reading_body(55.0, now=now - timedelta(hours=1))
    elif kind == "not_json":
        return 200, b"<html>tracker maintenance</html>"
    elif kind == "http_500":
        return 500, b'{"error": "internal"}'
    elif kind == "missing_field":
        body = {k: v for k, v in good.items() if k != "holder_votes"}
    elif kind == "string_value":
        body = {**good, "holder_control_percentage": "55.0"}
    elif kind == "nan":
        return 200, json.dumps({**good, "holder_control_percentage": math.nan}).encode()
    else:
        raise ValueError(f"unknown garbage kind {kind!r}")
    return 200, json.dumps(body).encode()


@dataclass
class BreakerCallRecord:
    action: str
    service: str | None
    idempotency_key: str | None
    body: dict
    headers: dict
    received_at: float  # time.monotonic()
    duplicate: bool
    status: int


@dataclass
class TrackerSimulator:
    """The simulator's state; `app` is its ASGI application."""

    scenario: str = "steady"
    step_seconds: float = DEFAULT_STEP_SECONDS
    per_request: bool = False
    clock: Callable[[], float] = time.monotonic
    values: list[Any] = field(default_factory=list)
    cyclic: bool = False
    started: float = 0.0
    served: int = 0
    probes: int = 0  # GET /admin/status answered or failed
    calls: list[BreakerCallRecord] = field(default_factory=list)
    applied: dict[tuple[str, str, str], BreakerCallRecord] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)  # action -> statuses to answer first
    slow_seconds: float = 5.0  # how long a scripted "timeout" reading takes to answer
    # A check or a breaker call in flight for a while (failover tests): readings are answered
    # this much later; breaker calls are applied on arrival and answered this much later.
    reading_delay_seconds: float = 0.0
    breaker_delay_seconds: float = 0.0
    # When each reading was asked for (time.monotonic()), the most recent ones.
    reading_arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    # The guardian's rules, which gradual-decline is fitted to (`scenario_values`); None: the defaults.
    rules: GuardianRules | None = None
    _changed: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.set_scenario(self.scenario, per_request=self.per_request, step_seconds=self.step_seconds)

    # -- control ----------------------------------------------------------------------

    def set_scenario(self, name: str, *, per_request: bool | None = None, step_seconds: float | None = None) -> None:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})")
        self.scenario = name
        values = scenario_values(name, self.rules, step_seconds or self.step_seconds)
        self._script(values, cyclic=name in CYCLIC, per_request=per_request, step_seconds=step_seconds)

    def set_values(
        self, values: list[Any], *, per_request: bool = True, cyclic: bool = False, step_seconds: float | None = None
    ) -> None:
        """Script the readings: numbers are holder control, strings are garbage kinds."""
        if not values:
            raise ValueError("values must not be empty")
        for v in values:
            if isinstance(v, str):
                if v != TIMEOUT:
                    garbage_response(v)  # validates the kind
            elif not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ValueError(f"value {v!r} is neither a holder-control number nor a garbage kind")
        self.scenario = "custom"
        self._script(list(values), cyclic=cyclic, per_request=per_request, step_seconds=step_seconds)

    def set_reading(self, h: float) -> None:
        """Hold one holder-control value from now on."""
        self.set_values([float(h)], per_request=True)

    def _script(self, values: list[Any], *, cyclic: bool, per_request: bool | None, step_seconds: float | None) -> None:
        self.values = values
        self.cyclic = cyclic
        if per_request is not None:
            self.per_request = per_request
        if step_seconds is not None:
            if step_seconds <= 0:
                raise ValueError("step_seconds must be positive")
            self.step_seconds = step_seconds
        self.started = self.clock()
        self.served = 0

    def fail_next(self, action: str, times: int, status: int = 503) -> None:
        if action not in ("pause", "resume"):
            raise ValueError(f"action must be pause or resume, got {action!r}")
        self.failures[action] = [status] * times

    def reset(self) -> None:
        self.calls.clear()
        self.applied.clear()
        self.failures.clear()
        self.set_scenario("steady", per_request=False)

    def current_step(self) -> int:
        if self.per_request:
            return self.served
        return int((self.clock() - self.started) // self.step_seconds)

    def current_value(self) -> Any:
        i = self.current_step()
        if self.cyclic:
            return self.values[i % len(self.values)]
        return self.values[min(i, len(self.values) - 1)]

    def next_response(self) -> tuple[int, bytes]:
        value = self.current_value()
        self.served += 1
        if isinstance(value, str):
            return garbage_response(value)
        return 200, json.dumps(reading_body(float(value))).encode()

    def pauses(self, service: str | None = None) -> list[BreakerCallRecord]:
        """Applied (first, successful) pause calls, optionally for one service."""
        return [c for c in self.applied.values() if c.action == "pause" and (service is None or c.service == service)]

    def resumes(self, service: str | None = None) -> list[BreakerCallRecord]:
        return [c for c in self.applied.values() if c.action == "resume" and (service is None or c.service == service)]

    def state(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "per_request": self.per_request,
            "step_seconds": self.step_seconds,
            "step": self.current_step(),
            "current": self.current_value(),
            "served": self.served,
            "paused_services": sorted(
                {c.service or "" for c in self.pauses()} - {c.service or "" for c in self.resumes()}
            ),
        }

    def calls_view(self) -> list[dict[str, Any]]:
        return [
            {
                "action": c.action,
                "service": c.service,
                "idempotency_key": c.idempotency_key,
                "status": c.status,
                "duplicate": c.duplicate,
                "body": c.body,
            }
            for c in self.calls
        ]

    async def wait_for(self, predicate: Callable[[TrackerSimulator], bool], timeout: float) -> bool:
        """Wait until `predicate(self)` holds (checked after every breaker call)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except TimeoutError:
                return predicate(self)
        return True

    # -- HTTP -------------------------------------------------------------------------

    def first_reading_after(self, t: float) -> float | None:
        """When the first reading asked for after `t` (time.monotonic()) arrived, if any."""
        return next((a for a in self.reading_arrivals if a > t), None)

    async def _governance(self, request: Request) -> Response:
        self.reading_arrivals.append(time.monotonic())
        if self.reading_delay_seconds:
            await asyncio.sleep(self.reading_delay_seconds)
        if self.current_value() == TIMEOUT:
            self.served += 1
            await asyncio.sleep(self.slow_seconds)  # the caller's timeout is shorter
            return JSONResponse({"error": "answered too late"}, status_code=504)
        status, body = self.next_response()
        return Response(body, status_code=status, media_type="application/json")

    async def _breaker(self, request: Request) -> Response:
        action = request.url.path.rsplit("/", 1)[-1]
        received = time.monotonic()
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError
        except (ValueError, json.JSONDecodeError):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        key = body.get("idempotency_key") or request.headers.get("idempotency-key")
        service = body.get("service")
        queued = self.failures.get(action)
        if queued:
            status = queued.pop(0)
            self._record(BreakerCallRecord(action, service, key, body, dict(request.headers), received, False, status))
            return JSONResponse({"error": "injected failure"}, status_code=status)
        if not key:
            self._record(BreakerCallRecord(action, service, key, body, dict(request.headers), received, False, 400))
            return JSONResponse({"error": "idempotency_key is required"}, status_code=400)
        ident = (action, service or "", key)
        duplicate = ident in self.applied
        rec = BreakerCallRecord(action, service, key, body, dict(request.headers), received, duplicate, 200)
        if not duplicate:
            self.applied[ident] = rec
        self._record(rec)
        if self.breaker_delay_seconds:
            await asyncio.sleep(self.breaker_delay_seconds)
        return JSONResponse({"ok": True, "action": action, "service": service, "duplicate": duplicate})

    async def _breaker_status(self, request: Request) -> Response:
        """The read-only probe the guardian makes on entering warning (docs/guardian.md, "Breakers")."""
        self.probes += 1
        queued = self.failures.get("status")
        if queued:
            return JSONResponse({"error": "injected failure"}, status_code=queued.pop(0))
        return JSONResponse({"ok": True})

    def _record(self, rec: BreakerCallRecord) -> None:
        self.calls.append(rec)
        if self._changed is not None:
            self._changed.set()

    async def _state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def _calls(self, request: Request) -> Response:
        return JSONResponse({"calls": self.calls_view()})

    async def _control(self, request: Request) -> Response:
        what = request.url.path.rsplit("/", 1)[-1]
        try:
            body = await request.json() if what != "reset" else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            if what == "reading":
                if "values" in body:
                    self.set_values(
                        list(body["values"]),
                        per_request=bool(body.get("per_request", True)),
                        cyclic=bool(body.get("cyclic", False)),
                        step_seconds=body.get("step_seconds"),
                    )
                elif "holder_control_percentage" in body:
                    h = body["holder_control_percentage"]
                    if isinstance(h, bool) or not isinstance(h, (int, float)):
                        raise ValueError("holder_control_percentage must be a number")
                    self.set_reading(float(h))
                else:
                    raise ValueError("give holder_control_percentage or values")
            elif what == "scenario":
                self.set_scenario(
                    str(body.get("scenario")),
                    per_request=body.get("per_request"),
                    step_seconds=body.get("step_seconds"),
                )
            elif what == "fail":
                self.fail_next(str(body.get("action")), int(body.get("times", 1)), int(body.get("status", 503)))
            elif what == "reset":
                self.reset()
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc) or "invalid body"}, status_code=400)
        return JSONResponse(self.state())

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/voting/governance", self._governance, methods=["GET"]),
                Route("/admin/status", self._breaker_status, methods=["GET"]),
                Route("/admin/pause", self._breaker, methods=["POST"]),
                Route("/admin/resume", self._breaker, methods=["POST"]),
                Route("/sim/state", self._state, methods=["GET"]),
                Route("/sim/calls", self._calls, methods=["GET"]),
                Route("/sim/reading", self._control, methods=["POST"]),
                Route("/sim/scenario", self._control, methods=["POST"]),
                Route("/sim/fail", self._control, methods=["POST"]),
                Route("/sim/reset", self._control, methods=["POST"]),
            ]
        )


@dataclass
class RunningSimulator:
    sim: TrackerSimulator
    served: RunningApi

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def port(self) -> int:
        return self.served.port

    async def stop(self) -> None:
        await self.served.stop()


async def start_simulator(
    sim: TrackerSimulator | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Serve `sim` on host:port (port 0: a free port) in this event loop."""
    sim = sim or TrackerSimulator()
    served = await start_api(sim.app, host, port)
    return RunningSimulator(sim=sim, served=served)
