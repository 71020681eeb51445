"""`/` and the `/gov` status page (not in the OpenAPI document).

The page is served with a Content-Security-Policy of its own (docs/security.md, "Browser
headers"): only its own inline script and style block run (named by their SHA-256, computed from
the file when it is first served), it may fetch only from this origin, and no other site may frame
it. The page sets `style` attributes (the chart's labels), which `style-src-attr` allows; it
builds its DOM with text nodes, never with markup from an answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

_INLINE = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL) for tag in ("script", "style")}


def _sources(html: str, tag: str) -> str:
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in _INLINE[tag].findall(html)
    ]
    return " ".join(hashes) or "'none'"


def page_policy(html: str) -> str:
    """The Content-Security-Policy that lets exactly this page's inline blocks run."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sources(html, 'script')}",
            f"style-src {_sources(html, 'style')}",
            "style-src-attr 'unsafe-inline'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def _gov_page() -> tuple[str, str]:
    html = resources.files("govfleet.api").joinpath("static/gov.html").read_text(encoding="utf-8")
    return html, page_policy(html)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/gov")


@router.get("/gov", response_class=HTMLResponse)
async def gov_page() -> HTMLResponse:
    html, policy = _gov_page()
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", "Content-Security-Policy": policy})
