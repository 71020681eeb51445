"""`/` and the `/gov` status page (not in the OpenAPI document)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/gov")


@router.get("/gov", response_class=HTMLResponse)
async def gov_page() -> HTMLResponse:
    html = resources.files("govfleet.api").joinpath("static/gov.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
