"""Activities are the adapters (PostgreSQL, HTTP, notifications): the only code that touches the outside."""
