"""One error body for every error the API returns, validation errors included:

    {"error": {"code": "validation_error", "message": "query.limit: ...", "details": [...]}}

`code` is a stable machine-readable word; `message` is one sentence naming what was wrong;
`details` is optional structured context (for validation errors, one entry per problem).

An error body never echoes more than a small slice of the input: the message is cut at
`MAX_MESSAGE` characters, every string in `details` at `MAX_TEXT`, and a list at `MAX_ITEMS`
entries (a last entry says how many were left out). So a body of 10,000 unknown keys gets a
few hundred bytes of answer, not 10,000 problems.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("govfleet.api")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable error code, e.g. `validation_error`, `unauthorized`")
    message: str = Field(description="what was wrong, in one sentence")
    details: Any = Field(None, description="structured context (validation problems, rejection type)")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


MAX_MESSAGE = 500
MAX_TEXT = 200
MAX_ITEMS = 10


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def capped(value: Any, depth: int = 0) -> Any:
    """`value` with strings, lists and mappings cut to the limits above (and nesting to 4 levels)."""
    if isinstance(value, str):
        return _cut(value, MAX_TEXT)
    if depth >= 4 and isinstance(value, (list, tuple, dict)):
        return "…"
    if isinstance(value, (list, tuple)):
        out = [capped(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out.append(f"… and {len(value) - MAX_ITEMS} more")
        return out
    if isinstance(value, dict):
        items = list(value.items())
        out = {_cut(str(k), MAX_TEXT): capped(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"{len(items) - MAX_ITEMS} more"
        return out
    return value


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": _cut(message, MAX_MESSAGE), "details": capped(details)}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _loc(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


def problem_text(msg: str) -> str:
    """A pydantic error message without pydantic's "Value error, " / "Assertion failed, " prefix."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _validation_details(exc: RequestValidationError) -> list[dict]:
    return [
        {"field": _loc(e.get("loc", ())), "problem": problem_text(str(e.get("msg", "invalid"))), "type": e.get("type")}
        for e in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "request", "problem": "invalid"}
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        message = f"{first['field'] or 'request'}: {first['problem']}{more}"
        return error_response(422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text: a validation error like any other.
            return error_response(
                422,
                "validation_error",
                "body: not valid JSON",
                [{"field": "body", "problem": "not valid JSON", "type": "json_invalid"}],
            )
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        if exc.status_code == 405 and message == "Method Not Allowed":
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` entries documenting the error body for these statuses."""
    descriptions = {
        400: "The body is not JSON, or is nested too deeply",
        401: "Missing or wrong bearer token",
        403: "Forbidden: the authorization was rejected (the body says why)",
        404: "Not found",
        409: "Conflict",
        413: "The request body is over the size limit",
        415: "The body is not sent as application/json",
        422: "Invalid input: the body names each field that was wrong",
        429: "Too many rejected requests from this address: retry after `Retry-After` seconds",
        500: "Internal error",
        503: "A dependency (Temporal, the database, the guardian) is unavailable",
    }
    return {s: {"model": ErrorBody, "description": descriptions.get(s, "Error")} for s in statuses}
