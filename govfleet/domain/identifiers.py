"""Identifiers that arrive from outside (user ids, payment ids, query values naming a type, ...).

An identifier is 1 to 200 *visible ASCII* characters: ``!`` (0x21) to ``~`` (0x7E). No space, no
control character, nothing outside ASCII. That rules out every invisible or look-alike form of
an id (``bo\\u200bb``, a Cyrillic ``а`` for ``a``, a trailing newline, NUL) instead of trying to
normalise them: two ids are the same id exactly when their bytes are equal. See
docs/security.md, "Identifiers".

Pure: :func:`check_identifier` raises ``ValueError`` naming the first offending character and its
position; :data:`Identifier` is the same rule as a pydantic type (its JSON schema carries the
pattern and the length bounds, so the OpenAPI document states it too).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

IDENTIFIER_MAX_LENGTH = 200
IDENTIFIER_PATTERN = r"^[!-~]+$"  # visible ASCII, for JSON schemas
_VISIBLE = re.compile(r"[!-~]+")
_INVISIBLE = re.compile(r"[^!-~]")


def describe_char(ch: str) -> str:
    """``U+200B`` style, with the character itself when it is printable."""
    code = f"U+{ord(ch):04X}"
    return f"{code} {ch!r}" if ch.isprintable() and not ch.isspace() else code


def check_identifier(value: object, name: str = "identifier", max_length: int = IDENTIFIER_MAX_LENGTH) -> str:
    """``value`` if it is an identifier, else ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{name} is {len(value)} characters long, at most {max_length} allowed")
    if not _VISIBLE.fullmatch(value):
        bad = _INVISIBLE.search(value)
        assert bad is not None
        raise ValueError(
            f"{name} holds {describe_char(bad.group())} at position {bad.start()}: only visible ASCII "
            "characters (! to ~, no spaces) are allowed"
        )
    return value


def _identifier(value: str) -> str:
    return check_identifier(value)


Identifier = Annotated[
    str,
    # The pattern is stated in the schema only: the validator gives the clearer message.
    Field(min_length=1, max_length=IDENTIFIER_MAX_LENGTH, json_schema_extra={"pattern": IDENTIFIER_PATTERN}),
    AfterValidator(_identifier),
]
"""A pydantic field type: the identifier rule, also stated in the JSON schema."""
