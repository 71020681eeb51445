"""The HTTP API: status surface, guardian endpoints, payments, the /gov page."""

from govfleet.api.app import create_app

__all__ = ["create_app"]
