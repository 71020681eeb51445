"""The HTTP API (FastAPI): `create_app` assembles the routers (one per OpenAPI tag, in
`govfleet/api/routers/`), the error handlers and the OpenAPI document. Routes validate and
delegate: workflows are reached through `govfleet/api/gateway.py`, the database through
`govfleet/store`, the status contract through `StatusService`. Every error has one body format
(`govfleet/api/errors.py`); access rules are in `govfleet/api/context.py`; the limits every
request passes first (body size, query values) wrap the app from outside (`govfleet/api/edge.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI
from temporalio.client import Client

from govfleet import db
from govfleet.api.admin_gate import AdminGate
from govfleet.api.context import DB_READ_SECONDS, ApiContext
from govfleet.api.edge import MAX_BODY_BYTES, EdgeLimits
from govfleet.api.errors import install_error_handlers
from govfleet.api.models import ForensicAuditIn, PauseIn, ReadingIn, ResumeIn
from govfleet.api.routers import governance, guardian, pages, payments
from govfleet.api.service import Clock, StatusService, utc_now
from govfleet.settings import Config, load_config
from govfleet.store import guardian as guardian_store

log = structlog.get_logger("govfleet.api")
REJECTIONS_FLUSH_SECONDS = 5.0  # counted admin rejections are written this often

API_DESCRIPTION = """\
The status surface of governance-fleet: the system tenant's governance status
(`governance.status.v1`), its daily activity, the guardian's endpoints, tracker readings push,
and purchase confirmation.

**Errors** all share one body: `{"error": {"code", "message", "details"}}`.

**Access**: read endpoints are public unless the server sets `API_READ_TOKEN`; then send
`Authorization: Bearer <token>`. Pause and resume always need an EIP-712 admin signature
(`govfleet sign`). Readings push needs `Authorization: Bearer <GUARDIAN_PUSH_TOKEN>`.

**Limits**: a request body is at most 64 KiB (413), JSON bodies must be sent as
`application/json` (415), nested at most 32 levels, without duplicate keys, NUL characters or
lone surrogates; a query value must not hold control characters (422).
"""


def create_app(
    config: Config | None = None,
    *,
    client: Client | None = None,
    database_url: str | None = None,
    pool: db.DbPool | None = None,
    clock: Clock = utc_now,
    cache_ttl: float = 30.0,
    query_timeout: float = 3.0,
    db_timeout: float = DB_READ_SECONDS,
    pool_size: int = 10,
    admin_gate: AdminGate | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> EdgeLimits:
    """The API, wrapped in its edge limits. Without arguments everything comes from
    `load_config()` (TEMPORAL_ADDRESS and DATABASE_URL must be set); tests and `govfleet up` pass
    what they already hold."""

    async def flush_rejections(pool: db.DbPool, gate: AdminGate) -> None:
        rows = gate.take()
        try:
            await guardian_store.add_admin_rejections(pool, rows, timeout=query_timeout)
        except Exception as exc:  # kept, and written with the next ones
            gate.put_back(rows)
            log.warning("counted admin rejections not written yet", error=str(exc).splitlines()[0], rows=len(rows))

    async def flush_loop(pool: db.DbPool, gate: AdminGate) -> None:
        while True:
            await asyncio.sleep(REJECTIONS_FLUSH_SECONDS)
            await flush_rejections(pool, gate)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        cfg = config or load_config()
        closers: list[Callable] = []
        temporal = client
        if temporal is None:
            from govfleet.temporal import configured_address, connect

            address = cfg.settings.TEMPORAL_ADDRESS or configured_address()
            if not address:
                raise db.StartupError("TEMPORAL_ADDRESS is not set; the API needs the Temporal server the workers use")
            temporal = await connect(address, cfg.settings.TEMPORAL_NAMESPACE)
        p = pool
        if p is None:
            url = database_url or cfg.settings.DATABASE_URL
            if not url:
                raise db.StartupError("DATABASE_URL is not set; the API needs the fleet's database")
            p = await db.create_pool(url, max_size=pool_size)
            closers.append(p.close)
        http = httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0))
        closers.append(http.aclose)
        status = StatusService(cfg, temporal, p, clock=clock, cache_ttl=cache_ttl, query_timeout=query_timeout)
        closers.append(status.close)
        gate = admin_gate or AdminGate(sources_per_minute=cfg.settings.ADMIN_REJECTIONS_SOURCES_PER_MINUTE)
        app.state.ctx = ApiContext(
            config=cfg,
            client=temporal,
            pool=p,
            http=http,
            status=status,
            clock=clock,
            query_timeout=query_timeout,
            admin_gate=gate,
            db_timeout=db_timeout,
        )
        flusher = asyncio.create_task(flush_loop(p, gate), name="admin-rejections")
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await flush_rejections(p, gate)
            for close in reversed(closers):
                await close()

    app = FastAPI(
        title="governance-fleet API",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # No Swagger UI or ReDoc pages: they load scripts from a CDN into the origin that serves the
        # signed admin endpoints (docs/security.md, "Browser headers"). /openapi.json stays.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "governance", "description": "System-tenant governance status"},
            {"name": "guardian", "description": "The governance guardian"},
            {"name": "payments", "description": "Credit purchases"},
        ],
    )
    install_error_handlers(app)
    for router in (pages.router, governance.router, guardian.router, payments.router):
        app.include_router(router)
    generate = app.openapi

    def openapi() -> dict:
        schema = app.openapi_schema
        if schema is None:
            schema = generate()  # FastAPI keeps it in app.openapi_schema
            ctx = getattr(app.state, "ctx", None)
            if ctx is not None and not ctx.config.settings.API_READ_TOKEN:
                _drop_security(schema, "ReadToken")  # reads are public on this server
            # Bodies parsed by hand (strict JSON, answered in our error format) are documented here.
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (ReadingIn, PauseIn, ResumeIn, ForensicAuditIn):
                schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        return schema

    app.openapi = openapi
    return EdgeLimits(app, max_body_bytes=max_body_bytes)


def _drop_security(schema: dict, scheme: str) -> None:
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            if isinstance(op, dict) and "security" in op:
                op["security"] = [r for r in op["security"] if scheme not in r]
                if not op["security"]:
                    del op["security"]
