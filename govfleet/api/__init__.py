"""The HTTP API: status surface, guardian endpoints, payments, the /gov page.

`create_app` is loaded on first use: importing a piece of the API (the status service that
`govfleet status` reads through) must not build the whole web application (docs/cli.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from govfleet.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from govfleet.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
