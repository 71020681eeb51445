"""What every route needs: the per-app context (configuration, Temporal client, database pool,
HTTP client, status service, clock) and the access rules.

Access:
- read endpoints are public unless `API_READ_TOKEN` is set; then they need
  `Authorization: Bearer <token>` (`/health`, `/gov` and `/openapi.json` stay public);
- `POST /guardian/pause` and `/guardian/resume` always need a valid EIP-712 admin signature,
  verified here before anything reaches the guardian workflow (which verifies again); rejected
  requests are rate-limited per client address and counted (`govfleet/api/admin_gate.py`);
- `POST /guardian/readings` needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`;
- no endpoint takes a user id for system-tenant data.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from govfleet.api.admin_gate import AdminGate
from govfleet.api.errors import ApiError
from govfleet.api.fleet_state import FleetStateCache
from govfleet.api.service import Clock, StatusService
from govfleet.db import DbPool
from govfleet.domain.secret_ref import resolve_secret
from govfleet.settings import Config

SOURCE_HEADER = "X-Govfleet-Source"
# A route's database read (pool checkout included) is cut after this long: a 503, never a wait
# for the pool's own 30 s (govfleet/api/reads.py).
DB_READ_SECONDS = 2.0


@dataclass
class ApiContext:
    config: Config
    client: Client | None
    pool: DbPool
    http: httpx.AsyncClient
    status: StatusService
    clock: Clock
    query_timeout: float
    admin_gate: AdminGate = field(default_factory=AdminGate)
    fleet: FleetStateCache = field(default_factory=FleetStateCache)  # notifications, warnings (fleet_state.py)
    db_timeout: float = DB_READ_SECONDS
    _tracker_probes: dict[str, tuple[float, bool]] = field(default_factory=dict)  # url -> (monotonic time, ok)
    _activity: dict = field(default_factory=dict)  # (days, last day) -> (monotonic time, ActivityOut)

    @property
    def guardian_id(self) -> str:
        """The guardian the single-guardian endpoints address: the first one declared."""
        return self.config.spec.primary_guardian_id


def api_context(request: Request) -> ApiContext:
    return request.app.state.ctx


def client_address(request: Request) -> str:
    """The address the request came from (the TCP peer: forwarded-for headers are not trusted)."""
    return request.client.host if request.client else "unknown"


_read_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ReadToken",
    description="`API_READ_TOKEN`: required on read endpoints only when the server sets it",
)
_push_bearer = HTTPBearer(
    auto_error=False, scheme_name="PushToken", description="`GUARDIAN_PUSH_TOKEN`: required to push tracker readings"
)


def _token_matches(given: HTTPAuthorizationCredentials | None, expected: str) -> bool:
    return (
        given is not None
        and given.scheme.lower() == "bearer"
        and hmac.compare_digest(given.credentials.encode(), expected.encode())
    )


async def require_read_access(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_read_bearer)
) -> None:
    token = api_context(request).config.settings.API_READ_TOKEN
    if token and not _token_matches(credentials, token):
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint needs `Authorization: Bearer <API_READ_TOKEN>`",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_push_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_push_bearer)
) -> None:
    cfg = api_context(request).config
    token = cfg.settings.GUARDIAN_PUSH_TOKEN or resolve_secret(cfg.spec.guardian.tracker.push_token, os.environ)
    if not token:
        raise ApiError(403, "push_disabled", "readings push is disabled on this server: set GUARDIAN_PUSH_TOKEN")
    if not _token_matches(credentials, token):
        raise ApiError(
            401,
            "unauthorized",
            "readings push needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`",
            headers={"WWW-Authenticate": "Bearer"},
        )


READ = [Depends(require_read_access)]  # the dependencies of every read endpoint
