"""One router per OpenAPI tag (governance, guardian, payments), plus the page routes."""
