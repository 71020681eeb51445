"""Secrets in configuration are `${ENV_VAR}` references, never literal values; they are
resolved from the environment of the process that uses them, when it uses them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator

SECRET_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


def _secret(value: Any) -> str:
    if not isinstance(value, str) or not SECRET_REF.match(value):
        raise ValueError(f"{value!r} must be a ${{ENV_VAR}} reference, never a literal secret")
    return value


# A `${ENV_VAR}` reference. Literal secrets are refused at load time.
SecretRef = Annotated[str, BeforeValidator(_secret)]


def resolve_secret(ref: str | None, environ: Mapping[str, str]) -> str | None:
    """The value of a `${ENV_VAR}` reference, or None when it is unset or empty."""
    if not ref:
        return None
    m = SECRET_REF.match(ref)
    return (environ.get(m.group(1)) or None) if m else None
